package mapping_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/jsstore/clustertest"
)

// openClusterRouters opens n routers forming one NATS cluster (all at
// once: a node alone has no quorum); they close at the end of the test.
func openClusterRouters(t testing.TB, n int) []*mapping.Router {
	t.Helper()
	rs, _ := openClusterConfigs(t, n)
	return rs
}

// openClusterConfigs is openClusterRouters that also returns each
// node's configuration (to open it again).
func openClusterConfigs(t testing.TB, n int) ([]*mapping.Router, []mapping.Config) {
	t.Helper()
	return openClusterWith(t, n, nil)
}

// openClusterWith is openClusterConfigs with each node's configuration
// changed by edit (when not nil) before it opens.
func openClusterWith(t testing.TB, n int, edit func(*mapping.Config)) ([]*mapping.Router, []mapping.Config) {
	t.Helper()
	if testing.Short() {
		t.Skip("forms a cluster")
	}
	addrs := clustertest.Ports(t, n)
	rs := make([]*mapping.Router, n)
	cfgs := make([]mapping.Config, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfgs[i] = mapping.Config{DataDir: t.TempDir(), Logger: quietLogger(), Cluster: &mapping.ClusterConfig{
			NodeName: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Peers: addrs, Secret: "s3cret", FormTimeout: 20 * time.Second,
		}}
		if edit != nil {
			edit(&cfgs[i])
		}
		wg.Go(func() { rs[i], errs[i] = mapping.Open(cfgs[i]) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, r := range rs {
			if r != nil {
				r.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node n%d: %v", i+1, err)
		}
	}
	// Every node must hear every other before a test relies on them.
	for _, r := range rs {
		eventually(t, 15*time.Second, func() bool {
			running := 0
			for _, nd := range r.Nodes() {
				if nd.Running {
					running++
				}
			}
			return running == n
		})
	}
	return rs, cfgs
}

// homedOn declares queue s on home and its copy on every other router.
func homedOn(t *testing.T, rs []*mapping.Router, home int, s mapping.QueueSpec) {
	t.Helper()
	connect(t, rs[home]).declareQueue(t, s)
	for i, r := range rs {
		if i != home {
			if err := r.AdoptQueueForTest("/", s, fmt.Sprintf("n%d", home+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLinkPublishForwardedToTheHome: publishes on n2 into a queue homed
// on n1, confirmed once stored there, reach a consumer on n1 in order;
// a durable queue's persistent messages are in n1's log.
func TestLinkPublishForwardedToTheHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-fwd", Durable: true})
	pub := connect(t, rs[1])
	for i := range 20 {
		if !pub.publishConfirmed(t, "", "link-fwd", fmt.Sprintf("m%d", i), persistent) {
			t.Fatalf("publish %d via n2 nacked", i)
		}
	}
	home := connect(t, rs[0])
	if n := home.count(t, "link-fwd"); n != 20 {
		t.Fatalf("home counts %d messages, want 20", n)
	}
	home.consume(t, "link-fwd", "c1", true)
	ds := home.sink.waitLen(t, 20)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	wantStrings(t, "bodies on n1", bodies(ds), want)
	// The copy on n2 keeps no message.
	if in, paged := mapping.WindowLen(rs[1], "/", "link-fwd"); in+paged != 0 {
		t.Fatalf("copy on n2 holds %d messages", in+paged)
	}
}

// TestLinkRejectPublishDecidedAtHome: x-max-length with reject-publish
// is applied by the home: the publisher on n2 gets the refusal.
func TestLinkRejectPublishDecidedAtHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-full", Args: mapping.Table{"x-max-length": int64(1), "x-overflow": "reject-publish"}})
	pub := connect(t, rs[1])
	if !pub.publishConfirmed(t, "", "link-full", "a", mapping.Properties{}) {
		t.Fatal("first publish nacked")
	}
	out := make(chan mapping.Outcome, 1)
	pub.ch.Publish(&mapping.Message{RoutingKey: "link-full", Body: []byte("b")}, func(o mapping.Outcome) { out <- o })
	select {
	case o := <-out:
		if o.Refused != mapping.RefusedQueueFull {
			t.Fatalf("second publish outcome %+v, want queue_full", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
	}
	wantStrings(t, "queue on n1", connect(t, rs[0]).drain(t, "link-full"), []string{"a"})
}

// TestLinkConsumeThroughTheHome: a consumer on n2 of a queue homed on n1
// gets messages published on either node within its prefetch; acks,
// nack with requeue (redelivered) and cancel go back to the home.
func TestLinkConsumeThroughTheHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-cons"})
	c := connect(t, rs[1])
	c.ch.SetPrefetch(2, false)
	var readyTag string
	if err := c.ch.Consume("link-cons", "remote", false, false, nil, func(tag string) { readyTag = tag }); err != nil {
		t.Fatal(err)
	}
	if readyTag != "remote" {
		t.Fatalf("ready tag %q", readyTag)
	}
	home := connect(t, rs[0])
	for i := range 3 {
		home.publish(t, "", "link-cons", fmt.Sprintf("h%d", i), mapping.Properties{})
	}
	ds := c.sink.waitLen(t, 2)
	c.sink.quiet(t, 2)
	wantStrings(t, "first two", bodies(ds), []string{"h0", "h1"})
	if ds[0].Tag != 1 || ds[1].Tag != 2 || ds[0].ConsumerTag != "remote" {
		t.Fatalf("deliveries %+v", ds)
	}
	if info, err := home.ch.DeclareQueue(mapping.QueueSpec{Name: "link-cons"}, true); err != nil || info.Messages != 1 || info.Consumers != 1 {
		t.Fatalf("home passive declare = %+v, %v; want 1 ready, 1 consumer", info, err)
	}
	// Ack the first: the third comes.
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 3)
	if string(ds[2].Message.Body) != "h2" || ds[2].Tag != 3 {
		t.Fatalf("third delivery %+v", ds[2])
	}
	// Nack with requeue: redelivered, with a new tag.
	if err := c.ch.Nack(2, false, true); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 4)
	if string(ds[3].Message.Body) != "h1" || !ds[3].Redelivered || ds[3].Tag != 4 {
		t.Fatalf("redelivery %+v", ds[3])
	}
	// Ack multiple settles 3 and 4; then a publish from n2 arrives.
	if err := c.ch.Ack(4, true); err != nil {
		t.Fatal(err)
	}
	c.publish(t, "", "link-cons", "n2", mapping.Properties{})
	ds = c.sink.waitLen(t, 5)
	if string(ds[4].Message.Body) != "n2" {
		t.Fatalf("fifth delivery %+v", ds[4])
	}
	c.ch.Cancel("remote")
	eventually(t, 5*time.Second, func() bool {
		info, err := home.ch.DeclareQueue(mapping.QueueSpec{Name: "link-cons"}, true)
		return err == nil && info.Consumers == 0
	})
	// Unacked deliveries stay on the channel after cancel; closing it
	// requeues them at the home.
	c.ch.Close()
	eventually(t, 5*time.Second, func() bool { return home.count(t, "link-cons") == 1 })
	wantStrings(t, "requeued on close", home.drain(t, "link-cons"), []string{"n2"})
}

// TestLinkRoundRobinAcrossNodes: a consumer on each node shares the queue.
func TestLinkRoundRobinAcrossNodes(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-rr"})
	local, remote := connect(t, rs[0]), connect(t, rs[1])
	local.consume(t, "link-rr", "l", true)
	remote.consume(t, "link-rr", "r", true)
	for i := range 10 {
		remote.publish(t, "", "link-rr", fmt.Sprintf("m%d", i), mapping.Properties{})
	}
	eventually(t, 5*time.Second, func() bool { return local.sink.len()+remote.sink.len() == 10 })
	if local.sink.len() != 5 || remote.sink.len() != 5 {
		t.Fatalf("split %d/%d, want 5/5", local.sink.len(), remote.sink.len())
	}
}

// TestLinkQueueOpsThroughTheHome: basic.get, passive declare counts,
// purge and delete (if-empty) on n2 act on the queue homed on n1.
func TestLinkQueueOpsThroughTheHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-ops"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	for i := range 4 {
		home.publish(t, "", "link-ops", fmt.Sprintf("m%d", i), mapping.Properties{})
	}
	if n := c.count(t, "link-ops"); n != 4 {
		t.Fatalf("passive declare on n2 counts %d, want 4", n)
	}
	if info := c.declareQueue(t, mapping.QueueSpec{Name: "link-ops"}); info.Messages != 4 {
		t.Fatalf("redeclare on n2 counts %d, want 4", info.Messages)
	}
	d, rem, ok := c.get(t, "link-ops", false)
	if !ok || string(d.Message.Body) != "m0" || rem != 3 || d.Tag != 1 {
		t.Fatalf("get = %+v, %d, %v", d, rem, ok)
	}
	if err := c.ch.Nack(d.Tag, false, true); err != nil {
		t.Fatal(err)
	}
	d, _, ok = c.get(t, "link-ops", false)
	if !ok || string(d.Message.Body) != "m0" || !d.Redelivered {
		t.Fatalf("get after requeue = %+v", d)
	}
	if err := c.ch.Ack(d.Tag, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return home.count(t, "link-ops") == 3 })
	if _, err := c.ch.DeleteQueue("link-ops", false, true); !strings.Contains(fmt.Sprint(err), "not empty") {
		t.Fatalf("delete if-empty via n2: %v", err)
	}
	n, err := c.ch.PurgeQueue("link-ops")
	if err != nil || n != 3 {
		t.Fatalf("purge via n2 = %d, %v", n, err)
	}
	if n := home.count(t, "link-ops"); n != 0 {
		t.Fatalf("home counts %d after purge", n)
	}
	if _, err := c.ch.DeleteQueue("link-ops", false, true); err != nil {
		t.Fatal(err)
	}
	_, err = home.ch.DeclareQueue(mapping.QueueSpec{Name: "link-ops"}, true)
	wantErr(t, "passive declare on the home after delete via n2", err, mapping.ErrNotFound)
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "link-ops"}, true)
	wantErr(t, "passive declare on n2 after delete", err, mapping.ErrNotFound)
}

// TestLinkStatsFromTheHome: the management figures of a copy are the
// home's.
func TestLinkStatsFromTheHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-stats"})
	home := connect(t, rs[0])
	home.publish(t, "", "link-stats", "a", mapping.Properties{})
	home.publish(t, "", "link-stats", "b", mapping.Properties{})
	home.consume(t, "link-stats", "c", false)
	home.sink.waitLen(t, 2)
	home.publish(t, "", "link-stats", "c", mapping.Properties{})
	vh, err := rs[1].VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool {
		s, err := vh.Queue("link-stats")
		return err == nil && s.Unacked == 3 && s.Consumers == 1 && s.Published == 3
	})
}

// TestLinkRemoteConsumerNodeStops: a consumer on n2 holds unacked
// messages when n2 stops; n1 closes its shadow after the heartbeat
// timeout and redelivers them to a consumer on n1.
func TestLinkRemoteConsumerNodeStops(t *testing.T) {
	rs := openClusterRouters(t, 3)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-death"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.consume(t, "link-death", "c2", false)
	for i := range 3 {
		home.publish(t, "", "link-death", fmt.Sprintf("m%d", i), mapping.Properties{})
	}
	c.sink.waitLen(t, 3)
	if rs[0].ShadowCountForTest() != 1 {
		t.Fatalf("home keeps %d shadows", rs[0].ShadowCountForTest())
	}
	rs[1].Close()
	home.consume(t, "link-death", "c1", false)
	// After the heartbeat timeout (5 s) and a watch round.
	eventually(t, 20*time.Second, func() bool { return home.sink.len() >= 3 })
	ds := home.sink.all()
	wantStrings(t, "redelivered on n1", bodies(ds), []string{"m0", "m1", "m2"})
	for _, d := range ds {
		if !d.Redelivered {
			t.Fatalf("delivery %+v not marked redelivered", d)
		}
	}
	if rs[0].ShadowCountForTest() != 0 {
		t.Fatalf("home keeps %d shadows", rs[0].ShadowCountForTest())
	}
}

// TestLinkDirectReplyToAcrossNodes: the caller on n2 consumes
// amq.rabbitmq.reply-to; the worker on n1 replies to the key it got.
func TestLinkDirectReplyToAcrossNodes(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-rpc"})
	worker, caller := connect(t, rs[0]), connect(t, rs[1])
	worker.consume(t, "link-rpc", "w", true)
	caller.consume(t, mapping.DirectReplyTo, "replies", true)
	caller.publish(t, "", "link-rpc", "ping", mapping.Properties{Flags: mapping.FlagReplyTo, ReplyTo: mapping.DirectReplyTo})
	req := worker.sink.waitLen(t, 1)[0]
	key := req.Message.Properties.ReplyTo
	if !strings.HasPrefix(key, mapping.DirectReplyTo+".") {
		t.Fatalf("reply-to %q", key)
	}
	if _, err := worker.ch.DeclareQueue(mapping.QueueSpec{Name: key}, true); err != nil {
		t.Fatalf("passive declare of the reply key on n1: %v", err)
	}
	_, err := worker.ch.DeclareQueue(mapping.QueueSpec{Name: key + "x"}, true)
	wantErr(t, "passive declare of an unknown key of n2 on n1", err, mapping.ErrNotFound)
	if !worker.publish(t, "", key, "pong", mapping.Properties{}) {
		t.Fatal("reply not routed")
	}
	got := caller.sink.waitLen(t, 1)
	if string(got[0].Message.Body) != "pong" || got[0].ConsumerTag != "replies" {
		t.Fatalf("reply %+v", got[0])
	}
}

// TestLinkSlowClientHoldsTheHome: a client whose front is full stops
// the home after a window of uncredited bytes; Resume lets the rest come.
func TestLinkSlowClientHoldsTheHome(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-slow"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.sink.setFull(true)
	c.consume(t, "link-slow", "slow", true)
	body := strings.Repeat("x", 64<<10)
	for range 48 { // 3 MiB
		home.publish(t, "", "link-slow", body, mapping.Properties{})
	}
	eventually(t, 5*time.Second, func() bool { return c.sink.len() > 0 })
	time.Sleep(200 * time.Millisecond)
	got := c.sink.len()
	if got > 18 { // the 1 MiB window and the message that crossed it
		t.Fatalf("a full client received %d messages of 64 KiB", got)
	}
	if n := home.count(t, "link-slow"); n != 48-got {
		t.Fatalf("home holds %d, want %d", n, 48-got)
	}
	c.sink.setFull(false)
	c.ch.Resume()
	c.sink.waitLen(t, 48)
}

// TestLinkExclusiveConsumerAcrossNodes: exclusive use is decided by the
// home, for consumers of either node.
func TestLinkExclusiveConsumerAcrossNodes(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-excl"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	if err := c.ch.Consume("link-excl", "x2", false, true, nil, func(string) {}); err != nil {
		t.Fatal(err)
	}
	err := home.ch.Consume("link-excl", "x1", false, false, nil, func(string) {})
	wantErr(t, "consume on the home beside an exclusive consumer on n2", err, mapping.ErrAccessRefused)
	c.ch.Cancel("x2")
	eventually(t, 5*time.Second, func() bool {
		return home.ch.Consume("link-excl", "x1", false, true, nil, func(string) {}) == nil
	})
	c2 := connect(t, rs[1])
	err = c2.ch.Consume("link-excl", "x3", false, false, nil, func(string) { t.Error("consume-ok for a refused consumer") })
	wantErr(t, "consume on n2 beside an exclusive consumer on n1", err, mapping.ErrAccessRefused)
}

// TestLinkSingleActiveConsumerAcrossNodes: with x-single-active-consumer
// the first consumer (on n2) gets everything; when it is cancelled the
// next one (on n1) takes over with the unacked message redelivered.
func TestLinkSingleActiveConsumerAcrossNodes(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-sac", Args: mapping.Table{"x-single-active-consumer": true}})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.consume(t, "link-sac", "first", false)
	home.consume(t, "link-sac", "second", false)
	for i := range 4 {
		home.publish(t, "", "link-sac", fmt.Sprintf("m%d", i), mapping.Properties{})
	}
	c.sink.waitLen(t, 4)
	home.sink.quiet(t, 0)
	if err := c.ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	c.ch.Close()
	ds := home.sink.waitLen(t, 1)
	if string(ds[0].Message.Body) != "m3" || !ds[0].Redelivered {
		t.Fatalf("second consumer got %+v", ds[0])
	}
}

// TestLinkQueueDeletedCancelsRemoteConsumer: deleting the queue on its
// home cancels the consumer on n2 (basic.cancel from the server).
func TestLinkQueueDeletedCancelsRemoteConsumer(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-del"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.consume(t, "link-del", "gone", false)
	if _, err := home.ch.DeleteQueue("link-del", false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(c.sink.cancels()) == 1 })
	wantStrings(t, "cancelled", c.sink.cancels(), []string{"gone"})
	wantStrings(t, "why", c.sink.cancelReasons(), []string{"queue 'link-del' in vhost '/' was deleted"})
}

// TestLinkHomeMoves: the queue's home moves from n1 to n3 (as a quorum
// queue's does); the consumer on n2 is attached to n3, its unacked
// deliveries from n1 leave the books (their acks are ignored), and new
// publishes on n2 reach it through n3.
func TestLinkHomeMoves(t *testing.T) {
	rs := openClusterRouters(t, 3)
	s := mapping.QueueSpec{Name: "link-move"}
	connect(t, rs[0]).declareQueue(t, s)
	// n3 is the next home (as when quorum loads it from the stream).
	if err := rs[2].AdoptQueueForTest("/", s, "n3"); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].AdoptQueueForTest("/", s, "n1"); err != nil {
		t.Fatal(err)
	}
	c := connect(t, rs[1])
	c.consume(t, "link-move", "mv", false)
	c.publish(t, "", "link-move", "before", mapping.Properties{})
	c.sink.waitLen(t, 1)
	rs[1].MoveHomeForTest("/", "link-move", "n3")
	if !c.publishConfirmed(t, "", "link-move", "after", mapping.Properties{}) {
		t.Fatal("publish after the move nacked")
	}
	ds := c.sink.waitLen(t, 2) // attached to n3 within a watch round
	if string(ds[1].Message.Body) != "after" || ds[1].Tag != 2 {
		t.Fatalf("after the move: %+v", ds[1])
	}
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatalf("ack of a delivery from the old home: %v", err)
	}
	if err := c.ch.Ack(2, false); err != nil {
		t.Fatal(err)
	}
	n3 := connect(t, rs[2])
	eventually(t, 5*time.Second, func() bool {
		info, err := n3.ch.DeclareQueue(s, true)
		return err == nil && info.Messages == 0 && info.Consumers == 1
	})
	if in, _ := mapping.WindowLen(rs[2], "/", "link-move"); in != 0 {
		t.Fatalf("n3 holds %d ready", in)
	}
}

// TestLinkCancelLosesNoNoAckMessage: a no-ack consumer on n2 cancelled
// while the home is delivering to it: every message is either delivered
// to n2 before Cancel returns, or still in the queue.
func TestLinkCancelLosesNoNoAckMessage(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-cancel"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.consume(t, "link-cancel", "na", true)
	const total = 2000
	go func() {
		for i := range total {
			home.ch.Publish(&mapping.Message{RoutingKey: "link-cancel", Body: fmt.Appendf(nil, "m%d", i)}, nil)
		}
	}()
	eventually(t, 5*time.Second, func() bool { return c.sink.len() > 100 })
	c.ch.Cancel("na")
	got := c.sink.len()
	eventually(t, 5*time.Second, func() bool { return home.count(t, "link-cancel")+got == total })
	c.sink.quiet(t, got)
}

// TestLinkHomeRestarts: the home of a durable classic queue restarts.
// As RabbitMQ does when a queue's node stops, the consumer on n2 is
// cancelled (at once: the stopping home's last heartbeat says it
// stops), and a consume or a delete on n2 while the home is down is
// refused with 404; acks for the cancelled
// consumer's deliveries are accepted and ignored. Once the home is back,
// a new consumer on n2 gets the two messages again, redelivered.
func TestLinkHomeRestarts(t *testing.T) {
	rs, cfgs := openClusterConfigs(t, 3)
	s := mapping.QueueSpec{Name: "link-restart", Durable: true}
	homedOn(t, rs, 0, s)
	c := connect(t, rs[1])
	c.consume(t, "link-restart", "rc", false)
	for _, b := range []string{"m0", "m1"} {
		if !c.publishConfirmed(t, "", "link-restart", b, persistent) {
			t.Fatalf("publish %s nacked", b)
		}
	}
	c.sink.waitLen(t, 2)
	stopped := time.Now()
	rs[0].Close()
	// Told by the stopping home's last heartbeat (TestLinkForwardToAStoppedHome
	// shows it is not the 5 s heartbeat rule that acts).
	eventually(t, 20*time.Second, func() bool { return len(c.sink.cancels()) == 1 })
	wantStrings(t, "cancelled", c.sink.cancels(), []string{"rc"})
	wantStrings(t, "why", c.sink.cancelReasons(), []string{"home node 'n1' of queue 'link-restart' in vhost '/' stopped"})
	t.Logf("cancelled %v after the home's stop began", time.Since(stopped).Round(time.Millisecond))
	if err := c.ch.Ack(2, true); err != nil {
		t.Fatalf("acks of the cancelled consumer's deliveries: %v", err)
	}
	// Once n2 knows n1 is down (from the same last heartbeat).
	eventually(t, 20*time.Second, func() bool {
		err := c.ch.Consume("link-restart", "again", false, false, nil, func(string) {})
		if err == nil {
			t.Fatal("consume accepted while the home is down")
		}
		return errors.Is(err, mapping.ErrNotFound) && strings.Contains(err.Error(), "home node 'n1' of durable queue 'link-restart'")
	})
	// A delete is refused the same way (RabbitMQ's 404): the queue and
	// its messages are still there once n1 is back.
	if _, err := c.ch.DeleteQueue("link-restart", false, false); !errors.Is(err, mapping.ErrNotFound) || !strings.Contains(err.Error(), "is down or inaccessible") {
		t.Fatalf("delete while the home is down: %v, want the home-down 404", err)
	}
	r, err := mapping.Open(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	eventually(t, 20*time.Second, func() bool {
		return c.ch.Consume("link-restart", "back", false, false, nil, func(string) {}) == nil
	})
	ds := c.sink.waitLen(t, 4)
	wantStrings(t, "deliveries", bodies(ds), []string{"m0", "m1", "m0", "m1"})
	if !ds[2].Redelivered || !ds[3].Redelivered || ds[2].ConsumerTag != "back" || ds[3].Tag != 4 {
		t.Fatalf("after the restart: %+v %+v", ds[2], ds[3])
	}
	if err := c.ch.Ack(4, true); err != nil {
		t.Fatal(err)
	}
	home := connect(t, r)
	eventually(t, 5*time.Second, func() bool {
		info, err := home.ch.DeclareQueue(mapping.QueueSpec{Name: "link-restart"}, true)
		return err == nil && info.Messages == 0 && info.Consumers == 1
	})
	vh, _ := r.VHost("/")
	eventually(t, 5*time.Second, func() bool {
		st, err := vh.Queue("link-restart")
		return err == nil && st.Unacked == 0
	})
}

// TestLinkOldHomeTellsClients: when the old home learns of a move first,
// it ends its shadow consumers of the queue and tells their nodes, which
// attach to the new home (n2 here records the move without homeMoved).
func TestLinkOldHomeTellsClients(t *testing.T) {
	rs := openClusterRouters(t, 3)
	s := mapping.QueueSpec{Name: "link-told"}
	connect(t, rs[0]).declareQueue(t, s)
	if err := rs[2].AdoptQueueForTest("/", s, "n3"); err != nil { // the next home
		t.Fatal(err)
	}
	if err := rs[1].AdoptQueueForTest("/", s, "n1"); err != nil {
		t.Fatal(err)
	}
	c := connect(t, rs[1])
	c.consume(t, "link-told", "t", false)
	c.publish(t, "", "link-told", "before", mapping.Properties{})
	c.sink.waitLen(t, 1)
	rs[1].SetHomeForTest("/", "link-told", "n3")
	rs[0].MoveHomeForTest("/", "link-told", "n3")
	if !c.publishConfirmed(t, "", "link-told", "after", mapping.Properties{}) {
		t.Fatal("publish after the move nacked")
	}
	// Attached to n3 by the watcher's next round.
	eventually(t, 20*time.Second, func() bool { return c.sink.len() >= 2 })
	ds := c.sink.all()
	if string(ds[1].Message.Body) != "after" {
		t.Fatalf("after the move: %+v", ds[1])
	}
}

// TestLinkForwardRetriesWhileNoHomeAnswers: a forward answered "moved"
// (or by nobody) is retried to the queue's home as it is then; with no
// home answering for 10 s the publish is nacked.
func TestLinkForwardRetriesWhileNoHomeAnswers(t *testing.T) {
	rs := openClusterRouters(t, 3)
	s := mapping.QueueSpec{Name: "link-retry"}
	connect(t, rs[2]).declareQueue(t, s)
	for _, r := range rs[:2] {
		if err := r.AdoptQueueForTest("/", s, "n1"); err != nil {
			t.Fatal(err)
		}
	}
	rs[0].SetHomeForTest("/", "link-retry", "n3") // n1 answers "moved"
	c := connect(t, rs[1])
	out := make(chan mapping.Outcome, 100)
	var want []string
	publish := func(body string) {
		want = append(want, body)
		c.ch.Publish(&mapping.Message{RoutingKey: "link-retry", Body: []byte(body)}, func(o mapping.Outcome) { out <- o })
	}
	for i := range 20 {
		publish(fmt.Sprintf("early%d", i))
	}
	time.Sleep(300 * time.Millisecond) // a few retries to n1
	select {
	case o := <-out:
		t.Fatalf("answered while no home has it: %+v", o)
	default:
	}
	for i := range 20 {
		publish(fmt.Sprintf("late%d", i)) // behind the retried ones
	}
	rs[1].SetHomeForTest("/", "link-retry", "n3")
	for range 40 {
		if o := <-out; o.Refused != mapping.NotRefused {
			t.Fatalf("outcome after the home was found: %+v", o)
		}
	}
	wantStrings(t, "queue on n3, in publish order", connect(t, rs[2]).drain(t, "link-retry"), want)

	// A home that never answers (no such node): nacked after 10 s.
	rs[1].SetHomeForTest("/", "link-retry", "n9")
	c.ch.Publish(&mapping.Message{RoutingKey: "link-retry", Body: []byte("lost")}, func(o mapping.Outcome) { out <- o })
	select {
	case o := <-out:
		if o.Refused != mapping.RefusedStoreFailure {
			t.Fatalf("outcome with no home: %+v", o)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no outcome")
	}
}

// TestLinkTTLAndDeadLetterAcrossNodes: a message published on n2 into a
// queue homed on n1 expires there (its TTL counted from the publish) and
// is dead-lettered into a queue homed on n2, whose consumer gets it with
// its x-death.
func TestLinkTTLAndDeadLetterAcrossNodes(t *testing.T) {
	rs := openClusterRouters(t, 2)
	src := mapping.QueueSpec{Name: "link-ttl", Args: mapping.Table{"x-message-ttl": int64(50), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "link-dlq"}}
	homedOn(t, rs, 0, src)
	homedOn(t, rs, 1, mapping.QueueSpec{Name: "link-dlq"})
	c := connect(t, rs[1])
	c.consume(t, "link-dlq", "dl", true)
	c.publish(t, "", "link-ttl", "expiring", mapping.Properties{})
	d := c.sink.waitLen(t, 1)[0]
	if string(d.Message.Body) != "expiring" {
		t.Fatalf("dead letter %q", d.Message.Body)
	}
	deaths, _ := d.Message.Properties.Headers["x-death"].([]any)
	if len(deaths) != 1 || deaths[0].(mapping.Table)["reason"] != "expired" || deaths[0].(mapping.Table)["queue"] != "link-ttl" {
		t.Fatalf("x-death %v", d.Message.Properties.Headers["x-death"])
	}
}

// TestLinkFlowPausesRemoteConsumer: channel.flow(false) on n2 pauses the
// deliveries of its consumer served by n1; flow(true) resumes them.
func TestLinkFlowPausesRemoteConsumer(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-flow"})
	home, c := connect(t, rs[0]), connect(t, rs[1])
	c.consume(t, "link-flow", "f", true)
	home.publish(t, "", "link-flow", "one", mapping.Properties{})
	c.sink.waitLen(t, 1)
	c.ch.SetFlow(false)
	eventually(t, 5*time.Second, func() bool {
		// The flow frame and a publish from the home race: wait until a
		// message stays ready.
		home.publish(t, "", "link-flow", "held", mapping.Properties{})
		return home.count(t, "link-flow") > 0
	})
	held := home.count(t, "link-flow")
	n := c.sink.len()
	c.sink.quiet(t, n)
	c.ch.SetFlow(true)
	c.sink.waitLen(t, n+held)
}

// TestLinkGetSeesOwnPublish: a publish on n2 (no confirm awaited) to a
// queue homed on n1 is seen by the next basic.get, passive declare and
// purge on n2, as on one node (the amqp091-go suite's GetOk publishes
// and gets at once); deleting a queue its home already deleted answers
// delete-ok.
func TestLinkGetSeesOwnPublish(t *testing.T) {
	rs := openClusterRouters(t, 2)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-order"})
	c := connect(t, rs[1])
	for i := range 50 {
		body := fmt.Sprintf("m%d", i)
		c.publish(t, "", "link-order", body, mapping.Properties{})
		d, _, ok := c.get(t, "link-order", true)
		if !ok || string(d.Message.Body) != body {
			t.Fatalf("round %d: get right after the publish = %q, %v; want %q", i, d.Message.Body, ok, body)
		}
	}
	for i := range 10 {
		c.publish(t, "", "link-order", fmt.Sprint(i), mapping.Properties{})
	}
	if n := c.count(t, "link-order"); n != 10 {
		t.Fatalf("passive declare right after 10 publishes counts %d", n)
	}
	c.publish(t, "", "link-order", "x", mapping.Properties{})
	if n, err := c.ch.PurgeQueue("link-order"); err != nil || n != 11 {
		t.Fatalf("purge right after the publishes = %d, %v; want 11", n, err)
	}
	// Gone at the home, still a copy here for a moment: delete-ok.
	mapping.SetMetaApplyDelay(rs[1], 2*time.Second)
	if _, err := connect(t, rs[0]).ch.DeleteQueue("link-order", false, false); err != nil {
		t.Fatal(err)
	}
	if n, err := c.ch.DeleteQueue("link-order", false, false); err != nil || n != 0 {
		t.Fatalf("delete of a queue its home deleted = %d, %v; want 0, nil", n, err)
	}
}

// TestLinkForwardToARestartedHome: a publish forwarded to its queue's
// home, which took it and was killed before answering, then came back
// at once (so the sender never found it silent, and no last heartbeat
// said it stopped: TestLinkForwardToAStoppedHome), is nacked once the
// sender hears the home's new process, 5 s after it was sent, not when
// the link's 30 s run out. Twice: with the home heard from
// before the send, and with the home not heard from yet when the publish
// was forwarded (the first second after either node started), in which
// the publisher of TestClusterRollingRestartUnderLoad once waited 30 s.
func TestLinkForwardToARestartedHome(t *testing.T) {
	c := openRouterCluster(t, 3)
	homedOn(t, c.routers, 0, mapping.QueueSpec{Name: "link-lost", Durable: true})
	pub := connect(t, c.routers[1])
	for _, heard := range []bool{true, false} {
		taken, err := c.routers[0].SwallowForwardsForTest()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // n2's server knows n1's new subscription
		out := make(chan mapping.Outcome, 1)
		if !heard {
			c.routers[1].ForgetNodeForTest("n1")
		}
		sent := time.Now()
		if err := pub.ch.Publish(&mapping.Message{RoutingKey: "link-lost", Body: []byte("lost")}, func(o mapping.Outcome) { out <- o }).Err(); err != nil {
			t.Fatal(err)
		}
		n, unheard := c.routers[1].ForwardsForTest()
		if n != 1 || heard != (unheard == 0) {
			t.Fatalf("heard %v: %d forwards in flight, %d sent before n1 was heard", heard, n, unheard)
		}
		// n1 took it (else it is retried and stored by n1's next process).
		eventually(t, 5*time.Second, func() bool { return taken() == 1 })
		mapping.CrashForTest(c.routers[0])
		c.reopen(0)
		restarted := time.Since(sent)
		select {
		case o := <-out:
			took := time.Since(sent)
			t.Logf("heard %v: n1 back after %v, publish answered after %v: %+v", heard, restarted.Round(time.Millisecond), took.Round(time.Millisecond), o)
			if o.Refused != mapping.RefusedStoreFailure {
				t.Fatalf("heard %v: outcome %+v, want a nack", heard, o)
			}
			if took > 15*time.Second {
				t.Fatalf("heard %v: answered after %v", heard, took)
			}
		case <-time.After(15*time.Second - time.Since(sent)):
			t.Fatalf("heard %v: no answer %v after the publish (n1 was back after %v)", heard, time.Since(sent).Round(time.Millisecond), restarted.Round(time.Millisecond))
		}
	}
}

// TestLinkForwardToAStoppedHome: n1 takes a publish forwarded from n2
// without answering it, then stops gracefully. Its last heartbeat says
// so: n2 nacks the forward then, instead of once n1 has been silent for
// 5 s, and reports n1 stopped.
func TestLinkForwardToAStoppedHome(t *testing.T) {
	rs := openClusterRouters(t, 3)
	homedOn(t, rs, 0, mapping.QueueSpec{Name: "link-bye", Durable: true})
	pub := connect(t, rs[1])
	taken, err := rs[0].SwallowForwardsForTest()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // n2's server knows n1's new subscription
	out := make(chan mapping.Outcome, 1)
	sent := time.Now()
	if err := pub.ch.Publish(&mapping.Message{RoutingKey: "link-bye", Body: []byte("bye")}, func(o mapping.Outcome) { out <- o }).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := rs[1].ForwardsForTest(); n != 1 {
		t.Fatalf("%d forwards in flight, want 1", n)
	}
	eventually(t, 5*time.Second, func() bool { return taken() == 1 })
	rs[0].Close()
	closed := time.Since(sent)
	select {
	case o := <-out:
		took := time.Since(sent)
		t.Logf("n1 closed %v after the publish, which was answered after %v: %+v", closed.Round(time.Millisecond), took.Round(time.Millisecond), o)
		if o.Refused != mapping.RefusedStoreFailure {
			t.Fatalf("outcome %+v, want a nack", o)
		}
		// The heartbeat rule cannot fail a forward before 5 s after its
		// send; a stop that took less than 3 s leaves it 2 s to act.
		if took >= 5*time.Second && closed < 3*time.Second {
			t.Fatalf("nacked %v after the send although n1 closed after %v: n1's last word was not used", took, closed)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no answer 15 s after the publish")
	}
	for _, n := range rs[1].Nodes() {
		if n.Name == "n1" && n.Running {
			t.Fatalf("n2 reports n1 running after its stop: %+v", n)
		}
	}
}

// TestLinkRedeclareAfterHomeDeleted: an auto-delete queue homed on n1
// loses its last consumer (a client of n2) and n1 deletes it; a declare
// on n2 before n2 has applied the deletion creates the queue anew, as on
// one node, instead of answering 404 from the stale copy (the amqp091-go
// suite's ExampleConnection_reconnect with its queue on n1).
func TestLinkRedeclareAfterHomeDeleted(t *testing.T) {
	rs := openClusterRouters(t, 2)
	s := mapping.QueueSpec{Name: "link-ad", AutoDelete: true}
	homedOn(t, rs, 0, s)
	c := connect(t, rs[1])
	c.consume(t, "link-ad", "ad", false)
	home, err := rs[0].VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { st, err := home.Queue("link-ad"); return err == nil && st.Consumers == 1 })
	mapping.SetMetaApplyDelay(rs[1], 300*time.Millisecond)
	c.conn.Close() // the last consumer goes: n1 deletes the queue
	// before the close returns (closeRemote waits for the home).
	if st, err := home.Queue("link-ad"); err == nil {
		t.Fatalf("the close on n2 returned before n1 deleted the auto-delete queue: %+v", st)
	}
	c2 := connect(t, rs[1])
	info := c2.declareQueue(t, s)
	if info.Name != "link-ad" || info.Messages != 0 {
		t.Fatalf("declare after the home deleted the queue: %+v", info)
	}
	mapping.SetMetaApplyDelay(rs[1], 0)
	if !c2.publishConfirmed(t, "", "link-ad", "again", mapping.Properties{}) {
		t.Fatal("publish into the queue declared again nacked")
	}
	wantStrings(t, "the queue declared again", c2.drain(t, "link-ad"), []string{"again"})
}
