package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// nodeURLs is the AMQP URL of each node of a test cluster while its
// nodes restart (a restarted node listens on a new port); "" while one
// is down. Clients ask it for their node, or for the next one up.
type nodeURLs struct {
	mu   sync.Mutex
	urls []string
}

func (u *nodeURLs) set(i int, url string) {
	u.mu.Lock()
	u.urls[i] = url
	u.mu.Unlock()
}

// pick is node i's URL, or the next running node's while i is down.
func (u *nodeURLs) pick(i int) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.urls {
		if url := u.urls[(i+k)%len(u.urls)]; url != "" {
			return url
		}
	}
	return ""
}

// reconnecting runs session on node i's URL (or the next node up while
// i is down) again and again until ctx ends.
func reconnecting(ctx context.Context, u *nodeURLs, i int, session func(url string)) {
	for ctx.Err() == nil {
		if url := u.pick(i); url != "" {
			session(url)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// longestGap samples how many messages l has confirmed every 20 ms
// until ctx ends and returns the longest time the count did not grow,
// and when that gap began.
func (l *confirmLog) longestGap(ctx context.Context) (time.Duration, time.Time) {
	var longest time.Duration
	var from time.Time
	last, lastAt := -1, time.Now()
	for {
		l.mu.Lock()
		n := len(l.confirmed)
		l.mu.Unlock()
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		} else if gap := now.Sub(lastAt); gap > longest {
			longest, from = gap, lastAt
		}
		select {
		case <-ctx.Done():
			return longest, from
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *confirmLog) count() (confirmed, nacked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.confirmed), l.nacked
}

// consumeLog counts a manual-ack consumer's deliveries by body; a
// session lasts until its connection or its consumer goes, and
// reconnecting starts the next.
type consumeLog struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *consumeLog) session(ctx context.Context, url, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil || ch.Qos(100, 0, false) != nil {
		return
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-msgs:
			if !ok {
				return // connection lost or basic.cancel (the home moved)
			}
			c.mu.Lock()
			c.got[string(d.Body)]++
			c.mu.Unlock()
			d.Ack(false)
		}
	}
}

// missing is the confirmed messages c has not received, and how many
// deliveries beyond the first c saw of any message.
func (c *consumeLog) missing(confirmed map[string]bool) (missing []string, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range confirmed {
		if c.got[b] == 0 {
			missing = append(missing, b)
		}
	}
	for _, n := range c.got {
		duplicates += n - 1
	}
	return missing, duplicates
}

// restartNode stops n with SIGTERM (a graceful stop: its leaderships
// step down first) or SIGKILL and starts it again on its data directory
// with args; it returns once the node says it is ready.
func restartNode(t *testing.T, n *clusterNode, sig syscall.Signal, args []string) {
	t.Helper()
	n.cmd.Process.Signal(sig)
	n.cmd.Wait()
	var ready <-chan [2]string
	n.cmd, ready = spawnProcess(t, n.dir, n.logs, args...)
	waitReady(t, n, ready)
}

// TestClusterRollingRestartUnderLoad: a quorum queue and a classic
// durable queue (homed on n1), a confirm-mode publisher on n2 and a
// manual-ack consumer on n3 for each, running throughout while every
// node is restarted in turn with SIGTERM. Every confirmed message of
// both queues is consumed (duplicates allowed); a publish to the classic
// queue while its home is down may be nacked after 10 s of retries.
func TestClusterRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	nodes, addrs := startThree(t)
	peers := strings.Join(addrs, ",")
	conn, ch := dialURL(t, nodes[0].amqp)
	if _, err := ch.QueueDeclare("roll-qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("roll-classic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	urls := &nodeURLs{urls: []string{nodes[0].amqp, nodes[1].amqp, nodes[2].amqp}}
	ctx, stopPublishing := context.WithCancel(context.Background())
	defer stopPublishing()
	cctx, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	queues := []string{"roll-qq", "roll-classic"}
	pubs := map[string]*confirmLog{}
	subs := map[string]*consumeLog{}
	gaps := map[string]time.Duration{}
	gapFrom := map[string]time.Time{}
	start := time.Now()
	var wg, gapWG sync.WaitGroup
	var gapMu sync.Mutex
	for _, q := range queues {
		pubs[q], subs[q] = &confirmLog{confirmed: map[string]bool{}}, &consumeLog{got: map[string]int{}}
		wg.Go(func() { reconnecting(ctx, urls, 1, func(url string) { pubs[q].session(ctx, url, q) }) })
		wg.Go(func() { reconnecting(cctx, urls, 2, func(url string) { subs[q].session(cctx, url, q) }) })
		gapWG.Go(func() {
			g, from := pubs[q].longestGap(ctx)
			gapMu.Lock()
			gaps[q], gapFrom[q] = g, from
			gapMu.Unlock()
		})
	}
	// progress waits until both publishers have had more confirms.
	progress := func(what string) {
		t.Helper()
		before := map[string]int{}
		for _, q := range queues {
			before[q], _ = pubs[q].count()
		}
		deadline := time.Now().Add(60 * time.Second)
		for _, q := range queues {
			for n, _ := pubs[q].count(); n < before[q]+200; n, _ = pubs[q].count() {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s has %d confirms, no progress since %d", what, q, n, before[q])
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	progress("before the restarts")
	names := []string{"n1", "n2", "n3"}
	for i, n := range nodes {
		leader := queueLeader(nodes[(i+1)%3], "roll-qq")
		stopAt := time.Since(start)
		urls.set(i, "")
		restartNode(t, n, syscall.SIGTERM, clusterArgs(n.name, addrs[i], peers, "s3cret"))
		urls.set(i, n.amqp)
		for _, o := range nodes {
			waitNodes(t, o, "all three running after "+n.name+"'s restart", allRunning(names...))
		}
		progress("after " + n.name + "'s restart")
		qc, qn := pubs["roll-qq"].count()
		cc, cn := pubs["roll-classic"].count()
		t.Logf("restarted %s at %v (roll-qq was led by %s): quorum queue %d confirmed %d nacked, classic queue %d confirmed %d nacked", n.name, stopAt.Round(time.Millisecond), leader, qc, qn, cc, cn)
	}
	stopPublishing()
	gapWG.Wait()

	// The consumers drain both queues: every confirmed message arrives.
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range queues {
		for {
			pubs[q].mu.Lock()
			missing, _ := subs[q].missing(pubs[q].confirmed)
			pubs[q].mu.Unlock()
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				if len(missing) > 10 {
					missing = missing[:10]
				}
				t.Errorf("%s: confirmed messages never consumed, e.g. %v", q, missing)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stopConsuming()
	wg.Wait()
	// An append taken by a leader that then stepped down is never
	// committed: its publisher gets a nack at the ack timeout (30 s).
	for _, n := range nodes {
		if c := strings.Count(n.logs.String(), "append timed out"); c > 0 {
			t.Logf("%s: %d appends timed out", n.name, c)
		}
		// Forwards nacked for want of an answer (mapping/link.go watch).
		for line := range strings.Lines(n.logs.String()) {
			if strings.Contains(line, "publish forwards nacked") {
				t.Logf("%s: %s", n.name, strings.TrimSpace(line))
			}
		}
	}
	for _, q := range queues {
		pubs[q].mu.Lock()
		_, dups := subs[q].missing(pubs[q].confirmed)
		t.Logf("%s: %d confirmed, %d nacked, %d consumed (distinct), %d duplicate deliveries, longest gap without a confirm %v (from %v)",
			q, len(pubs[q].confirmed), pubs[q].nacked, len(subs[q].got), dups, gaps[q].Round(time.Millisecond), gapFrom[q].Sub(start).Round(time.Millisecond))
		pubs[q].mu.Unlock()
	}
}

// routeProxies stands a TCP proxy in front of each node's route
// listener: the nodes list the proxies in --cluster-peers and advertise
// them (--cluster-advertise), so every route between two nodes goes
// through the proxy of the node it was dialled to. Cutting a node closes
// its routes (those dialled to it and those it dialled, recognised by
// the server_name of the INFO it sends first) and refuses new ones
// until it is healed.
type routeProxies struct {
	mu    sync.Mutex
	cut   map[string]bool
	conns map[*proxiedRoute]bool
	seen  map[string]int // routes through a proxy, by the node at either end
	lns   []net.Listener
}

type proxiedRoute struct {
	to, from string // node names: dialled, dialler ("" until known)
	in, out  net.Conn
}

// serverNameRE finds the dialler's name in the INFO it sends after its
// CONNECT.
var serverNameRE = regexp.MustCompile(`"server_name":"([^"]+)"`)

func newRouteProxies(t *testing.T) *routeProxies {
	p := &routeProxies{cut: map[string]bool{}, conns: map[*proxiedRoute]bool{}, seen: map[string]int{}}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, ln := range p.lns {
			ln.Close()
		}
		for r := range p.conns {
			r.in.Close()
			r.out.Close()
		}
	})
	return p
}

// front listens on a loopback port for node name's routes, which
// listen on target, and returns the proxy's address.
func (p *routeProxies) front(t *testing.T, name, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(name, target, in)
		}
	}()
	return ln.Addr().String()
}

func (p *routeProxies) serve(to, target string, in net.Conn) {
	p.mu.Lock()
	refused := p.cut[to]
	p.mu.Unlock()
	if refused {
		in.Close()
		return
	}
	out, err := net.Dial("tcp", target)
	if err != nil {
		in.Close()
		return
	}
	r := &proxiedRoute{to: to, in: in, out: out}
	p.mu.Lock()
	p.conns[r] = true
	p.mu.Unlock()
	defer func() {
		in.Close()
		out.Close()
		p.mu.Lock()
		delete(p.conns, r)
		p.mu.Unlock()
	}()
	go io.Copy(in, out)
	// Hold the dialler's bytes until its INFO names it (it sends it once
	// it has the dialled node's INFO, which flows at once).
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := in.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if m := serverNameRE.FindSubmatch(buf); m != nil {
			p.mu.Lock()
			r.from = string(m[1])
			refused := p.cut[r.from] || p.cut[r.to]
			if !refused {
				p.seen[r.to]++
				p.seen[r.from]++
			}
			p.mu.Unlock()
			if refused {
				return
			}
			break
		}
		if err != nil || len(buf) > 1<<20 {
			return
		}
	}
	if _, err := out.Write(buf); err != nil {
		return
	}
	io.Copy(out, in)
}

// isolate cuts node name off from the others; heal lets it back.
func (p *routeProxies) isolate(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[name] = true
	for r := range p.conns {
		if r.to == name || r.from == name {
			r.in.Close()
			r.out.Close()
		}
	}
}

func (p *routeProxies) heal(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cut, name)
}

func (p *routeProxies) routesOf(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[name]
}

// publishConfirmed publishes the bodies persistent with confirms on
// url's node and returns those confirmed.
func publishConfirmed(t *testing.T, url, queue string, bodies []string) []string {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var dcs []*amqp.DeferredConfirmation
	for _, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(b)})
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	var out []string
	for i, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); err != nil {
			t.Fatalf("publish %s: %v", bodies[i], err)
		} else if ok {
			out = append(out, bodies[i])
		}
	}
	return out
}

func numbered(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return out
}

// TestClusterPartitionedNodeRefusesWrites: n3, which leads a quorum
// queue, is cut off from n1 and n2 (a proxy in front of each node's
// routes closes n3's). On n3's side, publishes to the quorum queue are
// not confirmed and a durable declare is refused; on the majority's
// side the queue gets a new leader and serves publishes, confirms and
// consumers. Once healed, every confirmed message is in the queue (or
// was consumed) at least once.
func TestClusterPartitionedNodeRefusesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	real := loopbackAddrs(t, 3)
	proxies := newRouteProxies(t)
	var nodes []*clusterNode
	var fronts []string
	for i := range 3 {
		n := &clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), logs: &lockedBuffer{}}
		nodes = append(nodes, n)
		fronts = append(fronts, proxies.front(t, n.name, real[i]))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's log:\n%s", n.name, n.logs.String())
			}
		}
	})
	peers := strings.Join(fronts, ",")
	ready := make([]<-chan [2]string, 3)
	for i, n := range nodes {
		n.cmd, ready[i] = spawnProcess(t, n.dir, n.logs, clusterArgs(n.name, real[i], peers, "s3cret", "--cluster-advertise", fronts[i])...)
	}
	for i, n := range nodes {
		waitReady(t, n, ready[i])
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	names := []string{"n1", "n2", "n3"}
	for _, n := range nodes {
		waitNodes(t, n, "all three running", allRunning(names...))
		if proxies.routesOf(n.name) == 0 {
			t.Fatalf("no route of %s went through the proxies", n.name)
		}
	}

	// The quorum queue, declared on n3: n3 leads it (client-local).
	conn3, ch3 := dialURL(t, n3.amqp)
	if _, err := ch3.QueueDeclare("part-qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	conn3.Close()
	deadline := time.Now().Add(30 * time.Second)
	for queueLeader(n1, "part-qq") != "n3" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("before the partition part-qq is led by %q", queueLeader(n1, "part-qq"))
	confirmed := publishConfirmed(t, n1.amqp, "part-qq", numbered("before", 100))

	proxies.isolate("n3")
	cut := time.Now()
	for _, n := range nodes[:2] {
		waitNodes(t, n, "n3 stopped", func(m map[string]string) bool {
			return m["n1"] == "running" && m["n2"] == "running" && m["n3"] == "stopped"
		})
	}

	// The minority side: a publish to the quorum queue through n3 is not
	// confirmed (nacked, or no answer), a durable declare is refused
	// (541 with the reason, which closes its connection: each has its
	// own).
	type outcome struct {
		ok    bool
		err   error
		after time.Duration // since the cut
	}
	minority := make(chan outcome, 1)
	pubConn, ch := dialURL(t, n3.amqp)
	defer pubConn.Close()
	go func() {
		err := ch.Confirm(false)
		if err != nil {
			minority <- outcome{err: err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "part-qq", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("minority")})
		if err != nil {
			minority <- outcome{err: err}
			return
		}
		ok, err := dc.WaitContext(ctx)
		minority <- outcome{ok, err, time.Since(cut)}
	}()
	declared := make(chan outcome, 1)
	declConn, declCh := dialURL(t, n3.amqp)
	defer declConn.Close()
	go func() {
		_, err := declCh.QueueDeclare("part-new", true, false, false, false, nil)
		declared <- outcome{err: err, after: time.Since(cut)}
	}()

	// The majority side: a new leader, and the queue serves.
	var leader string
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if leader = queueLeader(n1, "part-qq"); leader == "n1" || leader == "n2" {
			break
		}
	}
	if leader != "n1" && leader != "n2" {
		t.Fatalf("the majority elected no leader for part-qq (n1 says %q)", leader)
	}
	during := publishConfirmed(t, n1.amqp, "part-qq", numbered("during", 100))
	if len(during) != 100 {
		t.Errorf("the majority confirmed %d of 100 publishes", len(during))
	}
	confirmed = append(confirmed, during...)
	got := map[string]int{}
	c2, ch2 := dialURL(t, n2.amqp)
	msgs := consume(t, ch2, "part-qq", false)
	for range 50 {
		d := recv(t, "consumer on n2 during the partition", msgs)
		got[string(d.Body)]++
		d.Ack(false)
	}
	c2.Close()

	select {
	case o := <-minority:
		if o.ok {
			t.Errorf("a publish through the cut-off n3 was confirmed")
		}
		t.Logf("publish through the cut-off n3: confirmed %v, %v (%v after the cut)", o.ok, o.err, o.after.Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Errorf("the publish through n3 never ended")
	}
	select {
	case o := <-declared:
		if o.err == nil {
			t.Errorf("a durable declare on the cut-off n3 succeeded")
		} else if !strings.Contains(o.err.Error(), "node n3 hears no other node and has no route to any") {
			// Refused with the reason once n3 hears nobody, not after
			// the store's timeout with "context deadline exceeded".
			t.Errorf("durable declare on the cut-off n3: %v, want the cut-off reason", o.err)
		}
		t.Logf("durable declare on the cut-off n3: %v (%v after the cut)", o.err, o.after.Round(time.Millisecond))
		// n3 says so in /api/nodes and cluster_status.
		ns, err := apiNodes(n3.http)
		for _, nd := range ns {
			if nd["name"] == "n3" && (nd["cut_off"] != true || !strings.Contains(fmt.Sprint(nd["cut_off_reason"]), "hears no other node and has no route to any")) {
				t.Errorf("n3's own /api/nodes entry while cut off: %v", nd)
			}
		}
		if err != nil || len(ns) == 0 {
			t.Errorf("/api/nodes on n3: %v %v", ns, err)
		}
		if code, out, _ := ctlRun(t, n3.http, "cluster_status"); code != 0 || !strings.Contains(out, "Cut off: jsstore: cut off from the cluster") {
			t.Errorf("cluster_status on the cut-off n3:\n%s", out)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("the durable declare on n3 never answered")
	}

	proxies.heal("n3")
	healed := time.Now()
	for _, n := range nodes {
		waitNodes(t, n, "all three running after the heal", allRunning(names...))
	}
	t.Logf("every node reports all three running %v after the heal", time.Since(healed).Round(time.Millisecond))
	// Healing disturbs the queue's group once more: n3 comes back with
	// a higher Raft term (it kept calling elections alone), so the
	// majority's leader steps down and the group elects again. Wait
	// until every node names the same leader, then publish through n3;
	// a publish caught in that election is nacked (never lost), and
	// published again.
	var settled string
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		l1, l2, l3 := queueLeader(n1, "part-qq"), queueLeader(n2, "part-qq"), queueLeader(n3, "part-qq")
		if l1 != "" && l1 == l2 && l2 == l3 {
			settled = l1
			break
		}
	}
	if settled == "" {
		t.Fatal("after the heal the nodes never agreed on a leader for part-qq")
	}
	afterNacks := 0
	for todo := numbered("after", 100); len(todo) > 0; {
		ok := publishConfirmed(t, n3.amqp, "part-qq", todo)
		confirmed = append(confirmed, ok...)
		if len(ok) == 0 && afterNacks > 0 {
			t.Fatalf("n3 confirms nothing after the heal (%d nacked)", afterNacks)
		}
		afterNacks += len(todo) - len(ok)
		todo = slices.DeleteFunc(todo, func(b string) bool { return slices.Contains(ok, b) })
	}
	t.Logf("after the heal part-qq is led by %s; n3 confirmed 100 publishes, %d nacked and published again", settled, afterNacks)
	// Read the rest from n3 until the queue is quiet.
	conn3b, ch3b := dialURL(t, n3.amqp)
	defer conn3b.Close()
	msgs = consume(t, ch3b, "part-qq", true)
	for quiet := false; !quiet; {
		select {
		case d := <-msgs:
			got[string(d.Body)]++
		case <-time.After(5 * time.Second):
			quiet = true
		}
	}
	var lost []string
	dups := 0
	for _, b := range confirmed {
		if got[b] == 0 {
			lost = append(lost, b)
		}
	}
	for _, n := range got {
		dups += n - 1
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d confirmed messages lost, e.g. %v", len(lost), len(confirmed), lost[:min(10, len(lost))])
		for _, n := range nodes {
			var q map[string]any
			(&mgmtClient{t: t, base: n.http, user: "guest", pass: "guest"}).want(http.StatusOK, "GET", "/api/queues/%2F/part-qq", nil, &q)
			t.Logf("%s: part-qq node %v leader %v messages %v ready %v unacked %v consumers %v", n.name, q["node"], q["leader"], q["messages"], q["messages_ready"], q["messages_unacknowledged"], q["consumers"])
		}
	}
	t.Logf("%d confirmed, %d read back (distinct), %d duplicates, %d unconfirmed from the minority read back", len(confirmed), len(got), dups, got["minority"])
}

// TestClusterClassicQueueHomeKilled: a classic durable queue lives on
// n1, which is killed (kill -9). As with RabbitMQ: the consumer on n3 is
// cancelled (basic.cancel) once n1 is known to be down and gets nothing
// more; a client on n2 that publishes to the queue gets a nack once the
// forward has been retried for 10 s; a passive declare, a declare, a
// basic.get, a basic.consume, a queue.delete and a queue.purge on n3 get
// 404 naming the home node (and delete nothing). Once
// n1 is back, a new consumer on n3 gets every message it had not acked,
// the ones it held unacked at the kill redelivered with the flag.
func TestClusterClassicQueueHomeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	nodes, addrs := startThree(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	declareDurable(t, n1.amqp, "home-classic")
	bodies := numbered("m", 20)
	if got := publishConfirmed(t, n2.amqp, "home-classic", bodies); len(got) != len(bodies) {
		t.Fatalf("%d of %d confirmed", len(got), len(bodies))
	}

	// The consumer on n3 holds 5 unacked deliveries and has acked 2.
	cc, cch := dialURL(t, n3.amqp)
	defer cc.Close()
	if err := cch.Qos(5, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, cch, "home-classic", false)
	acked := map[string]bool{}
	unacked := map[string]bool{}
	for i := range 7 {
		d := recv(t, "consumer on n3", msgs)
		if i < 2 {
			d.Ack(false) // the next two deliveries arrive once these are applied
			acked[string(d.Body)] = true
		} else {
			unacked[string(d.Body)] = true
		}
	}

	cancels := cch.NotifyCancel(make(chan string, 1))
	n1.cmd.Process.Kill()
	n1.cmd.Wait()
	killed := time.Now()

	// A publish through n2 is nacked after the forward's retries.
	pc, pch := dialURL(t, n2.amqp)
	defer pc.Close()
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", "home-classic", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("while-down")})
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	answered := make(chan bool, 1)
	go func() {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			t.Errorf("the publish while n1 is down got no answer: %v", err)
		}
		answered <- ok
	}()
	// Meanwhile the consumer on n3 is cancelled, and gets nothing.
	select {
	case tag := <-cancels:
		t.Logf("consumer %s on n3 cancelled %v after the kill", tag, time.Since(killed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer on n3 was not cancelled within 30 s of its queue's home being killed")
	}
	for d := range msgs { // closed by the cancel
		t.Errorf("the consumer on n3 got %q while the queue's home is down", d.Body)
	}
	select {
	case ok := <-answered:
		if ok {
			t.Errorf("a publish to the queue of a dead home was confirmed")
		}
		t.Logf("publish through n2 while n1 is down: nacked after %v", time.Since(published).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("the publish through n2 got no answer within 60 s")
	}
	// n2 and n3 see n1 stopped; a passive declare, a redeclare, a
	// basic.get, a basic.consume, a delete and a purge on n3 get
	// RabbitMQ's answer for a queue whose home node is down: 404, naming
	// the node.
	for _, n := range nodes[1:] {
		waitNodes(t, n, "n1 stopped", func(m map[string]string) bool {
			return m["n1"] == "stopped" && m["n2"] == "running" && m["n3"] == "running"
		})
	}
	passive, _ := dialURL(t, n3.amqp)
	defer passive.Close()
	for what, op := range map[string]func(*amqp.Channel) error{
		"passive declare": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive("home-classic", true, false, false, false, nil)
			return err
		},
		"declare": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("home-classic", true, false, false, false, nil)
			return err
		},
		"basic.get": func(ch *amqp.Channel) error {
			_, _, err := ch.Get("home-classic", false)
			return err
		},
		"basic.consume": func(ch *amqp.Channel) error {
			_, err := ch.Consume("home-classic", "", false, false, false, false, nil)
			return err
		},
		"queue.delete": func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete("home-classic", false, false, false)
			return err
		},
		"queue.purge": func(ch *amqp.Channel) error {
			_, err := ch.QueuePurge("home-classic", false)
			return err
		},
	} {
		ch, err := passive.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = op(ch)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.NotFound || !strings.Contains(ae.Reason, "home node 'n1' of durable queue 'home-classic' in vhost '/' is down or inaccessible") {
			t.Errorf("%s on n3 while n1 is down: %v, want 404 naming n1", what, err)
		}
	}

	// n1 comes back: a new consumer on n3 (on the channel that held the
	// cancelled one) gets the rest, its unacked deliveries again with the
	// redelivered flag. n3 may not have heard n1 yet: 404 until it has.
	var ready <-chan [2]string
	n1.cmd, ready = spawnProcess(t, n1.dir, n1.logs, clusterArgs("n1", addrs[0], strings.Join(addrs, ","), "s3cret")...)
	waitReady(t, n1, ready)
	t.Logf("n1 ready again %v after the kill", time.Since(killed).Round(time.Millisecond))
	for deadline := time.Now().Add(20 * time.Second); ; {
		msgs, err = cch.Consume("home-classic", "", false, false, false, false, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consume on n3 after n1's restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		if cch, err = cc.Channel(); err != nil {
			t.Fatal(err)
		}
		if err := cch.Qos(5, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	back := 0
	for len(got) < len(bodies)-len(acked) {
		d := recv(t, "consumer on n3 after n1's restart", msgs)
		b := string(d.Body)
		if unacked[b] && !d.Redelivered {
			t.Errorf("%s, unacked at the kill, came back without the redelivered flag", b)
		}
		if acked[b] {
			back++ // acked less than a removal batch before the kill
		} else {
			got[b] = true
		}
		d.Ack(false)
	}
	for _, b := range bodies {
		if !acked[b] && !got[b] {
			t.Errorf("%s never delivered after n1's restart", b)
		}
	}
	// The queue serves publishes from n2 again.
	publishConfirmed(t, n2.amqp, "home-classic", []string{"after"})
	if d := recv(t, "consumer on n3", msgs); string(d.Body) != "after" && string(d.Body) != "while-down" {
		t.Errorf("after the restart the consumer on n3 got %q", d.Body)
	}
	t.Logf("after the restart: %d messages delivered to n3, %d of them redelivered unacked ones, %d acked ones back", len(got), len(unacked), back)
}

// pikaCancelledConsumer consumes a queue with pika until the broker
// cancels it, then consumes it again (a new channel each time the broker
// refuses) until one message arrives, printing what happens.
const pikaCancelledConsumer = `import sys, time, pika
from pika.exceptions import ChannelClosedByBroker
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
queue = sys.argv[2]
ch = conn.channel()
ch.add_on_cancel_callback(lambda frame: print("cancelled", frame.method.consumer_tag, flush=True))
ch.basic_consume(queue, lambda c, m, p, b: print("unexpected", b.decode(), flush=True))
print("consuming", flush=True)
ch.start_consuming()  # returns once the broker has cancelled the consumer
print("no consumer left", flush=True)
while True:
    try:
        got = []
        def on_message(c, m, p, b):
            got.append(b.decode())
            c.basic_ack(m.delivery_tag)
        ch.basic_consume(queue, on_message)
        break
    except ChannelClosedByBroker as e:
        print("refused", e.reply_code, e.reply_text, flush=True)
        time.sleep(0.3)
        ch = conn.channel()
print("consuming again", flush=True)
while not got:
    conn.process_data_events(time_limit=1)
print("got", got[0], flush=True)
conn.close()
`

// TestClusterPikaConsumerCancelledWhenHomeStops: pika, as RabbitMQ
// users run it, against a classic durable queue homed on n1 from n3.
// n1 stops (SIGTERM): pika's on_cancel callback runs (basic.cancel) and
// start_consuming returns; a basic_consume while n1 is down is refused
// with 404 naming the home node; once n1 is back a new consumer gets the
// message published meanwhile on n2.
func TestClusterPikaConsumerCancelledWhenHomeStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	needPika(t)
	nodes, addrs := startThree(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	declareDurable(t, n1.amqp, "pika-home")
	p := startPython(t, "pika consumer on n3", []string{"-c", pikaCancelledConsumer, n3.amqp, "pika-home"})
	waitLine(t, p, "consuming", lineTimeout)

	n1.cmd.Process.Signal(syscall.SIGTERM)
	n1.cmd.Wait()
	stopped := time.Now()
	waitLine(t, p, "cancelled", 30*time.Second)
	t.Logf("pika's on_cancel ran %v after n1 stopped", time.Since(stopped).Round(time.Millisecond))
	waitLine(t, p, "no consumer left", lineTimeout)
	refused := waitLine(t, p, "refused", 30*time.Second)
	if !strings.Contains(refused, "404 NOT_FOUND - home node 'n1' of durable queue 'pika-home' in vhost '/' is down or inaccessible") {
		t.Fatalf("basic_consume while n1 is down: %q, want 404 naming n1", refused)
	}

	var ready <-chan [2]string
	n1.cmd, ready = spawnProcess(t, n1.dir, n1.logs, clusterArgs("n1", addrs[0], strings.Join(addrs, ","), "s3cret")...)
	waitReady(t, n1, ready)
	waitLine(t, p, "consuming again", 30*time.Second)
	publishConfirmed(t, n2.amqp, "pika-home", []string{"after-restart"})
	waitLine(t, p, "got after-restart", lineTimeout)
	p.wait(t, lineTimeout)
	if n := p.count("unexpected"); n != 0 {
		t.Fatalf("pika got %d deliveries before the stop, from an empty queue", n)
	}
}
