package mapping_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// waitMembersCurrent waits until every member of the queue's log is
// current, as r sees it (a stepdown then has a current node to go to).
func (c *clusterRouters) waitMembersCurrent(r *mapping.Router, queue string) {
	c.t.Helper()
	eventually(c.t, 30*time.Second, func() bool {
		n, _ := mapping.QuorumOnlineForTest(r, "/", queue)
		return n == len(c.routers)
	})
}

// declareQuorumOnFirst declares quorum queue name from a client of n1,
// checks that n1 leads it (its log's leader moved to the declaring node)
// and waits until every node knows it; it returns the client.
func (c *clusterRouters) declareQuorumOnFirst(name string) *client {
	c.t.Helper()
	cl := connect(c.t, c.routers[0])
	cl.declareQueue(c.t, mapping.QueueSpec{Name: name, Durable: true, Args: mapping.Table{"x-queue-type": "quorum"}})
	if !mapping.TookOverForTest(c.routers[0], "/", name) {
		c.t.Fatal("the declaring node does not hold the new quorum queue (its log's leader was not moved to it)")
	}
	for _, r := range c.routers[1:] {
		waitQueueKnown(c.t, r, name)
	}
	return cl
}

// TestQuorumConsumerSurvivesStepdown: a client on the node leading a
// quorum queue consumes it; the leadership moves to another node without
// a crash (a stepdown, as the balancer or a rolling restart makes). The
// consumer is not cancelled: it is served by the new home through the
// link, receives its unacked messages again with redelivered set, and
// the messages published after the move. Acks of the deliveries made
// before the move are accepted and do nothing (the new home redelivered
// them). The leadership then comes back: the consumer becomes local
// again, still without basic.cancel. Last, the leading node closes
// gracefully: a consumer on another node keeps receiving.
func TestQuorumConsumerSurvivesStepdown(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	c := openRouterCluster(t, 3)
	cl := c.declareQuorumOnFirst("qs")
	const n, acks = 10, 4
	for i := range n {
		if !cl.publishConfirmed(t, "", "qs", fmt.Sprintf("m%d", i), persistent) {
			t.Fatalf("publish m%d not confirmed", i)
		}
	}
	cl.consume(t, "qs", "c", false)
	before := cl.sink.waitLen(t, n)
	if err := cl.ch.Ack(before[acks-1].Tag, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		got, err := mapping.LogCountForTest(c.routers[0], "/", "qs")
		return err == nil && got == n-acks
	})
	c.waitMembersCurrent(c.routers[0], "qs")

	if err := mapping.StepDownForTest(c.routers[0], "/", "qs"); err != nil {
		t.Fatal(err)
	}
	next := c.home("qs", 0)
	if next == 0 {
		t.Fatal("n1 took the queue over again after its stepdown")
	}
	eventually(t, 10*time.Second, func() bool { return !mapping.TookOverForTest(c.routers[0], "/", "qs") })

	// The unacked ones come back, redelivered, to the same consumer.
	got := cl.sink.waitLen(t, n+n-acks)[n:]
	cl.sink.quiet(t, n+n-acks)
	var bodies []string
	for _, d := range got {
		if !d.Redelivered || d.ConsumerTag != "c" {
			t.Errorf("after the stepdown: %s (tag %s) redelivered=%v", d.Message.Body, d.ConsumerTag, d.Redelivered)
		}
		bodies = append(bodies, string(d.Message.Body))
	}
	slices.Sort(bodies)
	var want []string
	for i := acks; i < n; i++ {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	if !slices.Equal(bodies, want) {
		t.Fatalf("after the stepdown the consumer got %v, want the unacked %v", bodies, want)
	}
	if cs := cl.sink.cancels(); len(cs) != 0 {
		t.Fatalf("basic.cancel for %v after a stepdown", cs)
	}
	// Acking the deliveries of before the move is no error and settles
	// nothing at the new home: the redelivered copies are still unacked.
	if err := cl.ch.Ack(before[n-1].Tag, true); err != nil {
		t.Fatalf("ack of deliveries made before the stepdown: %v", err)
	}
	if cnt, err := mapping.LogCountForTest(c.routers[next], "/", "qs"); err != nil || cnt != n-acks {
		t.Fatalf("log holds %d (%v) after acking the old deliveries, want %d", cnt, err, n-acks)
	}
	if err := cl.ch.Ack(got[len(got)-1].Tag, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		got, err := mapping.LogCountForTest(c.routers[next], "/", "qs")
		return err == nil && got == 0
	})

	// Publishing goes on, to the consumer that stayed.
	if !cl.publishConfirmed(t, "", "qs", "after", persistent) {
		t.Fatal("publish after the stepdown not confirmed")
	}
	d := cl.sink.waitLen(t, n+n-acks+1)[n+n-acks]
	if string(d.Message.Body) != "after" || d.Redelivered {
		t.Fatalf("after the stepdown got %q redelivered=%v", d.Message.Body, d.Redelivered)
	}
	if err := cl.ch.Ack(d.Tag, false); err != nil {
		t.Fatal(err)
	}
	// Its record leaves the log before the next move (an ack younger
	// than the janitor's round may come back redelivered).
	eventually(t, 10*time.Second, func() bool {
		got, err := mapping.LogCountForTest(c.routers[next], "/", "qs")
		return err == nil && got == 0
	})

	// The leadership comes back to n1: the consumer is local again.
	c.waitMembersCurrent(c.routers[next], "qs")
	if err := mapping.StepDownToForTest(c.routers[next], "/", "qs", "n1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool { return mapping.TookOverForTest(c.routers[0], "/", "qs") })
	if !cl.publishConfirmed(t, "", "qs", "back", persistent) {
		t.Fatal("publish after the leadership came back not confirmed")
	}
	d = cl.sink.waitLen(t, n+n-acks+2)[n+n-acks+1]
	if string(d.Message.Body) != "back" || d.Redelivered {
		t.Fatalf("after the leadership came back got %q redelivered=%v", d.Message.Body, d.Redelivered)
	}
	if cs := cl.sink.cancels(); len(cs) != 0 {
		t.Fatalf("basic.cancel for %v after the leadership came back", cs)
	}
	if err := cl.ch.Ack(d.Tag, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		got, err := mapping.LogCountForTest(c.routers[0], "/", "qs")
		return err == nil && got == 0
	})

	// A graceful close of the leading node (it steps its leaderships
	// down first): a consumer on another node stays subscribed and is
	// served by the next home, which may be its own node.
	cl.conn.Close()
	other := connect(t, c.routers[next])
	other.consume(t, "qs", "o", false)
	c.waitMembersCurrent(c.routers[0], "qs")
	c.routers[0].Close()
	c.home("qs", 0)
	if !other.publishConfirmed(t, "", "qs", "closed", persistent) {
		t.Fatal("publish after the leader's graceful close not confirmed")
	}
	d = other.sink.waitLen(t, 1)[0]
	if string(d.Message.Body) != "closed" || d.ConsumerTag != "o" {
		t.Fatalf("after the leader's graceful close got %q on %s", d.Message.Body, d.ConsumerTag)
	}
	if cs := other.sink.cancels(); len(cs) != 0 {
		t.Fatalf("basic.cancel for %v after the leader's graceful close", cs)
	}
}
