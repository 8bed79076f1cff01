package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/mapping/jsstore/clustertest"
)

// clusterNode is one Warren process of a test cluster.
type clusterNode struct {
	name, dir  string
	cmd        *exec.Cmd
	amqp, http string
	logs       *lockedBuffer
}

// loopbackAddrs reserves n loopback ports for cluster routes (the
// nodes must know each other's addresses before they start).
func loopbackAddrs(t testing.TB, n int) []string { return clustertest.Ports(t, n) }

func clusterArgs(name, addr, peers, secret string, extra ...string) []string {
	return append([]string{"--node-name", name, "--cluster-addr", addr, "--cluster-peers", peers, "--cluster-secret", secret}, extra...)
}

// startCluster spawns the nodes at once (none is ready before a quorum
// runs) and waits until each says it is ready.
func startCluster(t *testing.T, nodes []*clusterNode, addrs []string, peers string) {
	t.Helper()
	ready := make([]<-chan [2]string, len(nodes))
	for i, n := range nodes {
		n.cmd, ready[i] = spawnProcess(t, n.dir, n.logs, clusterArgs(n.name, addrs[i], peers, "s3cret")...)
	}
	for i, n := range nodes {
		waitReady(t, n, ready[i])
	}
}

func waitReady(t *testing.T, n *clusterNode, ready <-chan [2]string) {
	t.Helper()
	select {
	case a := <-ready:
		n.amqp, n.http = a[0], a[1]
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not become ready within 60 s; its log:\n%s", n.name, n.logs.String())
	}
}

// apiNodes is GET /api/nodes on base, nil with an error when the node
// does not answer.
func apiNodes(base string) ([]map[string]any, error) {
	req, _ := http.NewRequest("GET", base+"/api/nodes", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []map[string]any
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/nodes: %s", resp.Status)
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// nodeStates maps node name to "running"/"stopped" from /api/nodes.
func nodeStates(nodes []map[string]any) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		state := "stopped"
		if n["running"] == true {
			state = "running"
		}
		out[fmt.Sprint(n["name"])] = state
	}
	return out
}

// waitNodes polls /api/nodes on n until want holds, or fails after a
// generous deadline (failure detection is seconds; the deadline only
// stops a hung test).
func waitNodes(t *testing.T, n *clusterNode, what string, want func(map[string]string) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last []map[string]any
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = apiNodes(n.http)
		if lastErr == nil && want(nodeStates(last)) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: /api/nodes never showed %s; last: %v %v", n.name, what, nodeStates(last), lastErr)
	return nil
}

func allRunning(names ...string) func(map[string]string) bool {
	return func(m map[string]string) bool {
		if len(m) != len(names) {
			return false
		}
		for _, n := range names {
			if m[n] != "running" {
				return false
			}
		}
		return true
	}
}

// publishOne declares the durable queue and publishes one persistent
// message to it, confirmed.
func publishOne(t *testing.T, url, queue, body string) {
	t.Helper()
	declareDurable(t, url, queue)
	conn, ch := dialURL(t, url)
	defer conn.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish to %s: confirmed %v, %v", queue, ok, err)
	}
}

// getAll takes every message off queue and returns the bodies.
func getAll(t *testing.T, url, queue string) []string {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	var out []string
	for {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(m.Body))
	}
}

// TestClusterFormsAndReportsNodes: three Warren processes on loopback
// form one cluster. Every node lists all three as running in /api/nodes
// and `warren ctl cluster_status`; each serves the durable queue it
// declared; a node with the wrong secret is refused and
// says so; a node killed with SIGKILL is reported stopped by the
// others, and rejoins with its queue when it restarts.
func TestClusterFormsAndReportsNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	addrs := loopbackAddrs(t, 4)
	peers := strings.Join(addrs[:3], ",")
	var nodes []*clusterNode
	for i := range 3 {
		nodes = append(nodes, &clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), logs: &lockedBuffer{}})
	}
	defer func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's log:\n%s", n.name, n.logs.String())
			}
		}
	}()
	startCluster(t, nodes, addrs, peers)
	names := []string{"n1", "n2", "n3"}
	for _, n := range nodes {
		got := waitNodes(t, n, "n1, n2 and n3 running", allRunning(names...))
		for _, nd := range got {
			if nd["type"] != "disc" || nd["mem_used"] == nil || nd["uptime"] == nil || nd["route_connected"] != true {
				t.Errorf("%s lists %v", n.name, nd)
			}
		}
		var ov map[string]any
		(&mgmtClient{t: t, base: n.http, user: "guest", pass: "guest"}).want(http.StatusOK, "GET", "/api/overview", nil, &ov)
		if ov["node"] != n.name || ov["cluster_name"] != "warren" {
			t.Errorf("%s: /api/overview node %v cluster_name %v", n.name, ov["node"], ov["cluster_name"])
		}
	}

	// Each node serves the queue it declared (its home; reaching
	// another node's queue is forwarded, see docs/cluster.md).
	for _, n := range nodes {
		publishOne(t, n.amqp, "cluster-q-"+n.name, "from "+n.name)
	}
	for _, n := range nodes {
		if got := getAll(t, n.amqp, "cluster-q-"+n.name); !slices.Equal(got, []string{"from " + n.name}) {
			t.Errorf("%s's cluster-q-%s holds %q", n.name, n.name, got)
		}
	}

	code, out, errs := ctlRun(t, nodes[1].http, "cluster_status")
	if code != 0 || !strings.Contains(out, "Cluster name: warren") || !strings.Contains(out, "Running Nodes\n\nn1\nn2\nn3\n") {
		t.Errorf("cluster_status on n2: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = ctlRun(t, nodes[0].http, "--formatter", "json", "cluster_status")
	var cs struct {
		Running []string `json:"running_nodes"`
		Disk    []string `json:"disk_nodes"`
	}
	if err := json.Unmarshal([]byte(out), &cs); code != 0 || err != nil || !slices.Equal(cs.Running, names) || !slices.Equal(cs.Disk, names) {
		t.Errorf("cluster_status --formatter json on n1: exit %d %v\n%s", code, err, out)
	}

	// A node with the wrong secret: its routes are refused, it never
	// sees a meta leader, and it stops with an error that says so.
	bin, _ := warrenBinary()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad, err := exec.CommandContext(ctx, bin, append([]string{"--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
		clusterArgs("intruder", addrs[3], strings.Join(addrs, ","), "wrong", "--cluster-form-timeout", "3s")...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "no JetStream meta leader") || !strings.Contains(string(bad), "Authorization Violation") {
		t.Errorf("node with the wrong secret: %v\n%s", err, bad)
	}
	nodes1 := waitNodes(t, nodes[0], "the three nodes", allRunning(names...))
	for _, nd := range nodes1 {
		if nd["name"] == "n1" && !(nd["routes_refused"].(float64) > 0) {
			t.Errorf("n1 reports no refused route: %v", nd)
		}
		if nd["name"] == "n1" && nd["cut_off"] != false {
			t.Errorf("n1, which hears n2 and n3, reports cut_off %v", nd["cut_off"])
		}
	}
	code, out, _ = ctlRun(t, nodes[0].http, "cluster_status")
	if code != 0 || !strings.Contains(out, "Refused routes: ") {
		t.Errorf("cluster_status on n1 does not report the refused routes:\n%s", out)
	}

	// kill -9 n3: the others report it stopped.
	publishOne(t, nodes[2].amqp, "cluster-q-n3", "kept by n3")
	nodes[2].cmd.Process.Kill()
	nodes[2].cmd.Wait()
	stopped := func(m map[string]string) bool {
		return m["n1"] == "running" && m["n2"] == "running" && m["n3"] == "stopped" && len(m) == 3
	}
	for _, n := range nodes[:2] {
		waitNodes(t, n, "n3 stopped", stopped)
	}
	code, out, _ = ctlRun(t, nodes[0].http, "cluster_status")
	if code != 0 || !strings.Contains(out, "Running Nodes\n\nn1\nn2\n\n") {
		t.Errorf("cluster_status on n1 with n3 down:\n%s", out)
	}

	// Restart n3 on its data directory: it rejoins, with its queue.
	n3 := nodes[2]
	var ready <-chan [2]string
	n3.cmd, ready = spawnProcess(t, n3.dir, n3.logs, clusterArgs("n3", addrs[2], peers, "s3cret")...)
	waitReady(t, n3, ready)
	for _, n := range nodes {
		waitNodes(t, n, "n1, n2 and n3 running again", allRunning(names...))
	}
	if got := getAll(t, n3.amqp, "cluster-q-n3"); !slices.Equal(got, []string{"kept by n3"}) {
		t.Errorf("n3's cluster-q-n3 after the restart holds %q", got)
	}
}

// loopbackClusterConfigs is n in-process nodes n1..nN on loopback ports
// and temporary data directories.
func loopbackClusterConfigs(t testing.TB, n int) []Config {
	addrs := loopbackAddrs(t, n)
	var cfgs []Config
	for i := range n {
		cfg := defaultConfig()
		cfg.AMQPAddr, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
		cfg.NodeName, cfg.ClusterAddr, cfg.ClusterPeers, cfg.ClusterSecret = fmt.Sprintf("n%d", i+1), addrs[i], strings.Join(addrs, ","), "s3cret"
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// startInProcessCluster starts one instance per config at once, shuts
// them down when the test ends, and waits until the first sees them all
// running.
func startInProcessCluster(t testing.TB, cfgs []Config, logger *slog.Logger) []*instance {
	t.Helper()
	insts := make([]*instance, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Go(func() { insts[i], errs[i] = startInstance(cfgs[i], logger) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, inst := range insts {
			if inst != nil {
				ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
				inst.Shutdown(ctx)
				cancel()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", cfgs[i].NodeName, err)
		}
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		running := 0
		for _, n := range insts[0].router.Nodes() {
			if n.Running {
				running++
			}
		}
		if running == len(cfgs) {
			return insts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s sees %d nodes running: %+v", cfgs[0].NodeName, running, insts[0].router.Nodes())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkClusterNodePublish: persistent 1 KiB messages with confirms
// (256 in flight, --sync always) into a classic durable queue of a single
// node, into one of one node of an in-process three-node cluster, and
// into a quorum queue (a replicated R3 stream, led by the node the client
// uses) of that cluster, in the same run; and, with
// WARREN_TEST_RABBITMQ_URL set, into a quorum queue of that RabbitMQ (one
// node: its Raft log is fsynced, but not replicated). A cluster node's
// classic queue is an R1 stream on the node itself, so the first two
// should be close; the quorum queue pays for replication (each confirm
// waits for a majority of the three nodes' Raft logs).
func BenchmarkClusterNodePublish(b *testing.B) {
	body := make([]byte, 1024)
	run := func(b *testing.B, url, queue string, args amqp.Table) {
		conn, ch := dialURL(b, url)
		if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
			b.Fatal(err)
		}
		conn.Close()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		fill := seqFill{url: url, queue: queue, mode: amqp.Persistent, size: len(body), publishers: 1, window: 256}
		if err := fill.run(b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	}
	quorum := amqp.Table{"x-queue-type": "quorum"}
	b.Run("single", func(b *testing.B) { run(b, amqpURL(startWarren(b, "")), "bench-q", nil) })
	cluster := func(b *testing.B, args amqp.Table) {
		insts := startInProcessCluster(b, loopbackClusterConfigs(b, 3), slog.New(slog.NewTextHandler(io.Discard, nil)))
		run(b, amqpURL(insts[0]), "bench-q", args)
	}
	b.Run("cluster-node", func(b *testing.B) { cluster(b, nil) })
	b.Run("cluster-quorum", func(b *testing.B) { cluster(b, quorum) })
	b.Run("rabbitmq-quorum", func(b *testing.B) {
		url := os.Getenv("WARREN_TEST_RABBITMQ_URL")
		if url == "" {
			b.Skip("set WARREN_TEST_RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5673/) to compare with RabbitMQ's quorum queue")
		}
		const queue = "warren-bench-quorum"
		b.Cleanup(func() {
			if conn, err := amqp.Dial(url); err == nil {
				if ch, err := conn.Channel(); err == nil {
					ch.QueueDelete(queue, false, false, false)
				}
				conn.Close()
			}
		})
		run(b, url, queue, quorum)
	})
}

// TestClusterRoutesOverTLS: with route certificates configured, three
// in-process nodes form a cluster over TLS routes (the route listener
// demands TLS), and a node whose certificate comes from another CA is
// refused and says so.
func TestClusterRoutesOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	pki := newTestPKI(t, "routes")
	addrs := loopbackAddrs(t, 4)
	peers := strings.Join(addrs[:3], ",")
	nodeConfig := func(name, addr, peers string, pki *testPKI) Config {
		cert := pki.issueFor(name, name, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
		cfg := defaultConfig()
		cfg.AMQPAddr, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
		cfg.NodeName, cfg.ClusterAddr, cfg.ClusterPeers, cfg.ClusterSecret = name, addr, peers, "s3cret"
		cfg.ClusterTLSCert, cfg.ClusterTLSKey, cfg.ClusterTLSCA = cert.CertFile, cert.KeyFile, pki.CAFile
		return cfg
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	var cfgs []Config
	for i := range 3 {
		cfgs = append(cfgs, nodeConfig(fmt.Sprintf("n%d", i+1), addrs[i], peers, pki))
	}
	insts := startInProcessCluster(t, cfgs, logger)
	// The management UI's overview lists the three nodes.
	t.Run("ui", func(t *testing.T) {
		chromiumPath(t) // skips without a browser
		base := "http://" + insts[1].HTTPAddr()
		p := newUIPage(t, base)
		p.do("open the UI", chromedp.Navigate(base+"/"))
		p.login("guest", "guest")
		p.contains("#node-node", "n2")
		p.contains("#overview-nodes table", "n1", "n2", "n3", "leader")
		if n := p.count("#overview-nodes tbody tr"); n != 3 {
			t.Errorf("the nodes table has %d rows, want 3", n)
		}
		// The queue list shows each queue's node (home) and, for a
		// quorum queue, its other members.
		conn, ch := dialURL(t, amqpURL(insts[0]))
		defer conn.Close()
		if _, err := ch.QueueDeclare("ui-on-n1", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("ui-qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			t.Fatal(err)
		}
		p.do("open the queues", chromedp.Navigate(base+"/#/queues"))
		p.text(`tr[data-queue="ui-on-n1"] td[data-label="Node"]`, "node n1", func(s string) bool { return s == "n1" })
		p.text(`tr[data-queue="ui-qq"] td[data-label="Node"]`, "a leader and +2 members", func(s string) bool {
			return strings.HasSuffix(s, " +2") && slices.Contains([]string{"n1", "n2", "n3"}, strings.TrimSuffix(s, " +2"))
		})
	})

	// The route listener speaks TLS only, and only to a certificate of
	// the cluster's CA.
	routeHello := func(cfg *tls.Config) (string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addrs[0], cfg)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		return bufio.NewReader(conn).ReadString('\n')
	}
	member := pki.issueFor("member", "member", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if hello, err := routeHello(pki.clientTLS(&member)); err != nil || !strings.HasPrefix(hello, "INFO ") {
		t.Errorf("a route with the cluster's certificate: %q %v", hello, err)
	}
	if hello, err := routeHello(pki.clientTLS(nil)); err == nil {
		t.Errorf("a route without a certificate was answered: %q", hello)
	}

	other := newTestPKI(t, "other")
	bad := nodeConfig("stranger", addrs[3], strings.Join(addrs, ","), other)
	bad.ClusterFormTimeout = 3 * time.Second
	if inst, err := startInstance(bad, logger); err == nil {
		inst.Shutdown(context.Background())
		t.Fatal("a node with a certificate of another CA joined")
	} else if !strings.Contains(err.Error(), "no JetStream meta leader") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a node with a certificate of another CA: %v", err)
	}
}

// TestClusterConfig: the cluster settings from a config file, the
// environment and flags (in that order of precedence), and the
// combinations that cannot work.
func TestClusterConfig(t *testing.T) {
	pki := newTestPKI(t, "conf-routes")
	cert := pki.issueFor("n1", "n1", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	file := writeConf(t, `warren.cluster.node_name = n1
warren.cluster.addr = 10.0.0.1:25690
warren.cluster.advertise = 203.0.113.1:35690
warren.cluster.peers.1 = 10.0.0.2:25690
warren.cluster.peers.2 = 10.0.0.3:25690
warren.cluster.secret = from-file
warren.cluster.form_timeout = 90
warren.cluster.ssl.certfile = `+cert.CertFile+`
warren.cluster.ssl.keyfile = `+cert.KeyFile+`
warren.cluster.ssl.cacertfile = `+pki.CAFile+`
`)
	t.Setenv("WARREN_CLUSTER_SECRET", "from-env")
	cfg, err := parseServeFlags([]string{"--config", file, "--node-name", "n1-flag"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 || cfg.NodeName != "n1-flag" || cfg.ClusterAddr != "10.0.0.1:25690" || cfg.ClusterAdvertise != "203.0.113.1:35690" || cfg.ClusterPeers != "10.0.0.2:25690,10.0.0.3:25690" ||
		cfg.ClusterSecret != "from-env" || cfg.ClusterFormTimeout != 90*time.Second || cfg.ClusterTLSCA != pki.CAFile {
		t.Fatalf("config %+v", cfg)
	}
	cc, err := clusterConfig(cfg)
	if err != nil || cc.NodeName != "n1-flag" || cc.Advertise != "203.0.113.1:35690" || len(cc.Peers) != 2 || cc.TLS == nil || cc.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("clusterConfig: %+v %v", cc, err)
	}
	// Every setting from the environment alone.
	for k, v := range map[string]string{"WARREN_NODE_NAME": "n2", "WARREN_CLUSTER_ADDR": "10.0.0.2:25690", "WARREN_CLUSTER_ADVERTISE": "203.0.113.2:35690", "WARREN_CLUSTER_PEERS": "10.0.0.1:25690,10.0.0.3:25690",
		"WARREN_CLUSTER_FORM_TIMEOUT": "2m", "WARREN_CLUSTER_TLS_CERT": cert.CertFile, "WARREN_CLUSTER_TLS_KEY": cert.KeyFile, "WARREN_CLUSTER_TLS_CA": pki.CAFile} {
		t.Setenv(k, v)
	}
	cfg, err = parseServeFlags(nil, io.Discard)
	if err != nil || cfg.NodeName != "n2" || cfg.ClusterAddr != "10.0.0.2:25690" || cfg.ClusterAdvertise != "203.0.113.2:35690" || cfg.ClusterPeers != "10.0.0.1:25690,10.0.0.3:25690" ||
		cfg.ClusterSecret != "from-env" || cfg.ClusterFormTimeout != 2*time.Minute || cfg.ClusterTLSCert != cert.CertFile || cfg.ClusterTLSKey != cert.KeyFile {
		t.Fatalf("from the environment: %+v %v", cfg, err)
	}
	for _, k := range []string{"WARREN_NODE_NAME", "WARREN_CLUSTER_ADDR", "WARREN_CLUSTER_ADVERTISE", "WARREN_CLUSTER_PEERS", "WARREN_CLUSTER_SECRET", "WARREN_CLUSTER_FORM_TIMEOUT", "WARREN_CLUSTER_TLS_CERT", "WARREN_CLUSTER_TLS_KEY", "WARREN_CLUSTER_TLS_CA"} {
		t.Setenv(k, "")
	}
	if cfg, err := parseServeFlags(nil, io.Discard); err != nil || cfg.clustered() {
		t.Fatalf("no cluster settings: clustered %v, %v", cfg.clustered(), err)
	}

	base := []string{"--node-name", "n1", "--cluster-addr", "127.0.0.1:25690", "--cluster-peers", "127.0.0.1:25691", "--cluster-secret", "s"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{base[:6], "needs --node-name, --cluster-addr, --cluster-peers and --cluster-secret"},
		{[]string{"--cluster-secret", "s"}, "need --node-name"},
		{append(slices.Clone(base[2:]), "--node-name", "rabbit@host"), `node name "rabbit@host"`},
		{append(slices.Clone(base[:2]), "--cluster-addr", "25690", "--cluster-peers", "127.0.0.1:25691", "--cluster-secret", "s"), `cluster address "25690"`},
		{append(slices.Clone(base[:4]), "--cluster-peers", "127.0.0.1:25691,h:0", "--cluster-secret", "s"), `cluster peer "h:0"`},
		{append(slices.Clone(base), "--cluster-tls-cert", cert.CertFile), "go together"},
		{append(slices.Clone(base), "--cluster-tls-cert", cert.CertFile, "--cluster-tls-key", cert.KeyFile, "--cluster-tls-ca", cert.KeyFile), "holds no PEM certificate"},
		{append(slices.Clone(base), "--cluster-form-timeout", "-1s"), "want a positive duration"},
		{append(slices.Clone(base), "--cluster-advertise", "proxy"), `cluster advertise address "proxy"`},
		{[]string{"--cluster-advertise", "127.0.0.1:1"}, "need --node-name"},
	} {
		if _, err := parseServeFlags(c.args, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
	bad := writeConf(t, "warren.cluster.peers.1 = nohost\n")
	if _, err := parseServeFlags([]string{"--config", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "want host:port") {
		t.Errorf("a bad peer in the file: %v", err)
	}
}
