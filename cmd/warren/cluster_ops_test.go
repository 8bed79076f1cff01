package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// scrape reads inst's /metrics into series text -> value, e.g.
// `rabbitmq_queue_messages_ready{queue="q",vhost="/"}` -> 2.
func scrape(t testing.TB, inst *instance) map[string]float64 {
	t.Helper()
	code, data, _ := newMgmtClient(t, inst).as("", "").do("GET", "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, data)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// hasQueueSeries reports whether any rabbitmq_queue_* series names queue.
func hasQueueSeries(m map[string]float64, queue string) bool {
	for k := range m {
		if strings.HasPrefix(k, "rabbitmq_queue_") && strings.Contains(k, `queue="`+queue+`"`) {
			return true
		}
	}
	return false
}

// wantSeries checks that node's scrape has every series of want with its
// value.
func wantSeries(t testing.TB, node string, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s /metrics %s = %v (present %v), want %v", node, k, g, ok, v)
		}
	}
}

// waitAllRunning waits until every node sees every node running (a node
// asks another for figures only once it has heard its heartbeat).
func waitAllRunning(t testing.TB, insts []*instance) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		all := true
		for _, inst := range insts {
			for _, n := range inst.router.Nodes() {
				all = all && n.Running
			}
			all = all && len(inst.router.Nodes()) == len(insts)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes do not all see each other running")
		}
	}
}

// TestClusterMetricsPerNode: each node's /metrics is its own view, as
// RabbitMQ's per-node endpoint. A queue homed on n1 with a publisher and
// a consumer on n2 shows its real figures in n1's scrape and no series
// at all in n2's (which holds only a copy); identity names the node;
// the cluster gauges count both nodes and each node's home queues and
// copies; the link counters count n2's forwards and n1's remote
// consumer. /api/queues on n2 lists n1's queue once, with n1's figures.
func TestClusterMetricsPerNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	insts := linkCluster(t, 2)
	waitAllRunning(t, insts)
	homeQueue(t, insts, 0, "ops-on-n1")
	homeQueue(t, insts, 1, "ops-on-n2")

	conn2, ch2 := dialURL(t, amqpURL(insts[1]))
	defer conn2.Close()
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch2.NotifyPublish(make(chan amqp.Confirmation, 16))
	for i := range 3 {
		if err := ch2.Publish("", "ops-on-n1", false, false, amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d nacked", i)
		}
	}
	_, cch := dialURL(t, amqpURL(insts[1]))
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("ops-on-n1", "ops-c", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := nextDelivery(t, ds); string(d.Body) != "m0" {
		t.Fatalf("first delivery %q", d.Body)
	}

	// The home's view: wait until n1 has the delivery booked as unacked
	// (the consumer's credit crosses the link after the delivery).
	var m1 map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; {
		m1 = scrape(t, insts[0])
		if m1[`rabbitmq_queue_messages_unacked{queue="ops-on-n1",vhost="/"}`] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want1 := map[string]float64{
		`rabbitmq_queue_messages_ready{queue="ops-on-n1",vhost="/"}`:           2,
		`rabbitmq_queue_messages_unacked{queue="ops-on-n1",vhost="/"}`:         1,
		`rabbitmq_queue_messages{queue="ops-on-n1",vhost="/"}`:                 3,
		`rabbitmq_queue_consumers{queue="ops-on-n1",vhost="/"}`:                1,
		`rabbitmq_queue_messages_published_total{queue="ops-on-n1",vhost="/"}`: 3,
		`rabbitmq_queues`: 1,
		`rabbitmq_identity_info{rabbitmq_cluster="warren",rabbitmq_cluster_permanent_id="warren",rabbitmq_node="n1"}`: 1,
		`warren_cluster_nodes{state="running"}`: 2,
		`warren_cluster_nodes{state="stopped"}`: 0,
		`warren_cluster_queues{role="home"}`:    1,
		`warren_cluster_queues{role="copy"}`:    1,
		`warren_link_forwards_served_total`:     3,
		`warren_link_forwards_sent_total`:       0,
		`warren_link_remote_consumers`:          1,
	}
	wantSeries(t, "n1", m1, want1)
	if hasQueueSeries(m1, "ops-on-n2") {
		t.Errorf("n1 reports per-queue series of ops-on-n2, a queue homed on n2")
	}

	m2 := scrape(t, insts[1])
	want2 := map[string]float64{
		`rabbitmq_queue_messages_ready{queue="ops-on-n2",vhost="/"}`: 0,
		`rabbitmq_queues`: 1,
		`rabbitmq_identity_info{rabbitmq_cluster="warren",rabbitmq_cluster_permanent_id="warren",rabbitmq_node="n2"}`: 1,
		`warren_cluster_nodes{state="running"}`: 2,
		`warren_cluster_queues{role="home"}`:    1,
		`warren_cluster_queues{role="copy"}`:    1,
		`warren_link_forwards_sent_total`:       3,
		`warren_link_forwards_answered_total`:   3,
		`warren_link_forwards_failed_total`:     0,
		`warren_link_forwards_served_total`:     0,
		`warren_link_remote_consumers`:          0,
		`rabbitmq_consumers`:                    1, // the consumer's client is on n2
	}
	wantSeries(t, "n2", m2, want2)
	if hasQueueSeries(m2, "ops-on-n1") {
		t.Errorf("n2 reports per-queue series of ops-on-n1, a queue homed on n1 (a copy must not report)")
	}

	// The management API on n2: every queue once, n1's figures for n1's.
	var qs []map[string]any
	newMgmtClient(t, insts[1]).want(http.StatusOK, "GET", "/api/queues/%2F", nil, &qs)
	seen := map[string]int{}
	for _, q := range qs {
		name, _ := q["name"].(string)
		seen[name]++
		if name == "ops-on-n1" {
			if q["node"] != "n1" || q["type"] != "classic" || q["messages"] != 3.0 || q["messages_ready"] != 2.0 || q["consumers"] != 1.0 {
				t.Errorf("n2 lists ops-on-n1 as %v", q)
			}
		}
	}
	if seen["ops-on-n1"] != 1 || seen["ops-on-n2"] != 1 || len(qs) != 2 {
		t.Errorf("n2 /api/queues lists %v", seen)
	}

	// warren ctl list_queues with rabbitmqctl's cluster columns, on n2: a
	// classic queue has node and type, and empty leader, members and
	// online (as rabbitmqctl prints them); a quorum queue all of them.
	if _, err := ch2.QueueDeclare("ops-qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out, errOut := ctlRun(t, "http://"+insts[1].HTTPAddr(), "list_queues", "name", "type", "node", "leader", "members", "online")
		if code != 0 {
			t.Fatalf("ctl list_queues: exit %d: %s", code, errOut)
		}
		rows = strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) == 4 && strings.Count(rows[3], "n1") == 2 && strings.Count(rows[3], "n2") == 2 || time.Now().After(deadline) {
			break // the quorum queue has a leader and both members online
		}
	}
	if len(rows) != 4 || strings.Join(strings.Fields(rows[0]), " ") != "name type node leader members online" ||
		strings.Join(strings.Fields(rows[1]), " ") != "ops-on-n1 classic n1" ||
		strings.Join(strings.Fields(rows[2]), " ") != "ops-on-n2 classic n2" {
		t.Fatalf("ctl list_queues on n2:\n%s", strings.Join(rows, "\n"))
	}
	f := strings.Fields(rows[3]) // ops-qq quorum L L [L, M] [O, O]: members leader first
	if len(f) != 8 || f[0] != "ops-qq" || f[1] != "quorum" || f[2] != f[3] || f[4] != "["+f[2]+"," {
		t.Errorf("ctl list_queues on n2, the quorum queue: %q", rows[3])
	}
}

// BenchmarkListRemoteQueues lists 200 queues homed on n1: from n1 (the
// baseline), and from n2, whose figures come from n1 in one batched
// request ("batched", what /api/queues does) or one request per queue
// in turn ("per-queue", what it did before), and over HTTP from both.
func BenchmarkListRemoteQueues(b *testing.B) {
	insts := linkCluster(b, 2)
	waitAllRunning(b, insts)
	conn, ch := dialURL(b, amqpURL(insts[0]))
	defer conn.Close()
	const n = 200
	for i := range n {
		if _, err := ch.QueueDeclare(fmt.Sprintf("ops-list-%03d", i), false, false, false, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	vh1, err := insts[0].router.VHost("/")
	if err != nil {
		b.Fatal(err)
	}
	vh2, err := insts[1].router.VHost("/")
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Publish("", "ops-list-000", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		qs := vh2.Queues()
		if len(qs) == n && qs[0].Ready == 1 {
			break // n2 holds them all, and has n1's figures
		}
		if time.Now().After(deadline) {
			b.Fatalf("n2 lists %d queues, the first %+v", len(qs), qs[0])
		}
	}
	b.Run("home-n1", func(b *testing.B) {
		for b.Loop() {
			vh1.Queues()
		}
	})
	b.Run("batched-n2", func(b *testing.B) {
		for b.Loop() {
			vh2.Queues()
		}
	})
	b.Run("per-queue-n2", func(b *testing.B) {
		names := vh2.HomedQueues() // none: all are n1's
		if len(names) != 0 {
			b.Fatalf("n2 dispatches %d of them", len(names))
		}
		for b.Loop() {
			for i := range n {
				if _, err := vh2.Queue(fmt.Sprintf("ops-list-%03d", i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for i, inst := range insts {
		b.Run(fmt.Sprintf("http-n%d", i+1), func(b *testing.B) {
			api := newMgmtClient(b, inst)
			for b.Loop() {
				var qs []map[string]any
				api.want(http.StatusOK, "GET", "/api/queues/%2F", nil, &qs)
				if len(qs) != n {
					b.Fatalf("listed %d", len(qs))
				}
			}
		})
	}
}

// TestClusterMgmtQueueNode: PUT /api/queues with "node" (as RabbitMQ's
// API takes it) creates the queue on that node whichever node serves the
// request; a node that is not in the cluster is refused with 409, and an
// existing queue is not moved.
func TestClusterMgmtQueueNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	insts := linkCluster(t, 2)
	waitAllRunning(t, insts)
	api := newMgmtClient(t, insts[0])
	api.want(http.StatusCreated, "PUT", "/api/queues/%2F/placed-on-n2", map[string]any{"durable": true, "node": "n2"}, nil)
	var q map[string]any
	for _, inst := range insts {
		newMgmtClient(t, inst).want(http.StatusOK, "GET", "/api/queues/%2F/placed-on-n2", nil, &q)
		if q["node"] != "n2" || q["durable"] != true {
			t.Errorf("%s shows placed-on-n2 as %v, want node n2", inst.router.NodeName(), q)
		}
	}
	reason := api.wantError(http.StatusConflict, "precondition_failed", "PUT", "/api/queues/%2F/placed-nowhere", map[string]any{"durable": true, "node": "n9"})
	if !strings.Contains(reason, "n9") {
		t.Errorf("refusal %q does not name the node", reason)
	}
	api.want(http.StatusNotFound, "GET", "/api/queues/%2F/placed-nowhere", nil, nil)
	// Redeclared with another node: answered, not moved.
	api.want(http.StatusNoContent, "PUT", "/api/queues/%2F/placed-on-n2", map[string]any{"durable": true, "node": "n1"}, nil)
	newMgmtClient(t, insts[1]).want(http.StatusOK, "GET", "/api/queues/%2F/placed-on-n2", nil, &q)
	if q["node"] != "n2" {
		t.Errorf("after a redeclare naming n1: node %v, want n2", q["node"])
	}
	// Used through n1 by an AMQP client: published on n1, stored on n2.
	publishConfirmed(t, amqpURL(insts[0]), "placed-on-n2", []string{"a", "b"})
	newMgmtClient(t, insts[1]).want(http.StatusOK, "GET", "/api/queues/%2F/placed-on-n2", nil, &q)
	if q["messages"] != 2.0 {
		t.Errorf("placed-on-n2 holds %v messages on n2, want 2", q["messages"])
	}
}
