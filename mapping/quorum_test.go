package mapping_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// clusterRouters is an in-process cluster of routers, each with its own
// data directory, which a test can crash and reopen.
type clusterRouters struct {
	t       *testing.T
	cfgs    []mapping.Config
	routers []*mapping.Router // closed when the test ends (openClusterConfigs)
}

// openRouterCluster opens n routers as one cluster (openClusterConfigs).
func openRouterCluster(t *testing.T, n int) *clusterRouters {
	t.Helper()
	rs, cfgs := openClusterConfigs(t, n)
	return &clusterRouters{t: t, cfgs: cfgs, routers: rs}
}

// waitQueueKnown waits until r has the queue of vhost "/" that another
// node declared (the replicated metadata reached it).
func waitQueueKnown(t *testing.T, r *mapping.Router, name string) {
	t.Helper()
	vh, err := r.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := vh.Queue(name); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s does not know queue %s: %v", r.NodeName(), name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reopen restarts node i on its data directory (the others keep the quorum).
func (c *clusterRouters) reopen(i int) {
	c.t.Helper()
	c.routers[i].Close()
	r, err := mapping.Open(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("reopen n%d: %v", i+1, err)
	}
	c.routers[i] = r
}

// home waits until one live node has taken the queue over, and returns it.
func (c *clusterRouters) home(queue string, dead int) int {
	c.t.Helper()
	at := -1
	eventually(c.t, 30*time.Second, func() bool {
		for i, r := range c.routers {
			if i != dead && mapping.TookOverForTest(r, "/", queue) {
				at = i
				return true
			}
		}
		return false
	})
	return at
}

// TestQuorumQueueFailover: a quorum queue declared on n1 of three nodes
// lives on a replicated log led by n1. A client on the leader publishes
// persistent messages with confirms, consumes them, acks some and keeps
// the rest unacked; the leader crashes; another node takes the queue over
// and a client there receives every confirmed message that was not
// acked, each redelivered, and none of the acked ones; it publishes and
// consumes more on the new home. Four rounds: two crashes (the crashed
// node restarts in between, so the next one still leaves a quorum), a
// stepdown of the live leader (its client then leaves) and a graceful
// close (which steps the node's leaderships down first).
func TestQuorumQueueFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	c := openRouterCluster(t, 3)
	c.declareQuorumOnFirst("qq").conn.Close()

	const n, acks = 40, 15
	leader := 0
	for round, how := range []string{"crash", "crash", "stepdown", "close"} {
		cl := connect(t, c.routers[leader])
		var bodies []string
		for i := range n {
			b := fmt.Sprintf("r%d-%d", round, i)
			bodies = append(bodies, b)
			if !cl.publishConfirmed(t, "", "qq", b, persistent) {
				t.Fatalf("round %d: publish %s not confirmed", round, b)
			}
		}
		cl.consume(t, "qq", "c", false)
		ds := cl.sink.waitLen(t, n)
		if err := cl.ch.Ack(ds[acks-1].Tag, true); err != nil {
			t.Fatal(err)
		}
		// The acked records leave the log (janitor) before the crash;
		// acks younger than that may come back after a failover.
		eventually(t, 10*time.Second, func() bool {
			got, err := mapping.LogCountForTest(c.routers[leader], "/", "qq")
			return err == nil && got == n-acks
		})

		// Every member is current (the node restarted by the previous
		// round has caught up): the crash takes one of three.
		var members string
		deadline := time.Now().Add(30 * time.Second)
		for n := 0; n != 3; {
			if n, members = mapping.QuorumOnlineForTest(c.routers[leader], "/", "qq"); n != 3 && time.Now().After(deadline) {
				t.Fatalf("round %d: not every member current within 30s: %s", round, members)
			}
			time.Sleep(50 * time.Millisecond)
		}
		switch how {
		case "crash":
			mapping.CrashForTest(c.routers[leader])
		case "stepdown":
			if err := mapping.StepDownForTest(c.routers[leader], "/", "qq"); err != nil {
				t.Fatal(err)
			}
		case "close":
			c.routers[leader].Close()
		}
		movedAt := time.Now()
		next := c.home("qq", leader)
		t.Logf("round %d: %s of n%d, n%d took the queue over after %v", round, how, leader+1, next+1, time.Since(movedAt).Round(time.Millisecond))
		if how == "stepdown" {
			eventually(t, 10*time.Second, func() bool { return !mapping.TookOverForTest(c.routers[leader], "/", "qq") })
			// Its consumer stays (TestQuorumConsumerSurvivesStepdown);
			// its client leaves, so that the new home's client gets
			// every unacked message.
			if cs := cl.sink.cancels(); len(cs) != 0 {
				t.Fatalf("round %d: basic.cancel for %v after a stepdown", round, cs)
			}
			cl.conn.Close()
		}

		cl2 := connect(t, c.routers[next])
		cl2.consume(t, "qq", "c2", false)
		got := cl2.sink.waitLen(t, n-acks)
		cl2.sink.quiet(t, n-acks)
		var gotBodies []string
		for _, d := range got {
			if !d.Redelivered {
				t.Errorf("round %d: %s delivered by the new home without redelivered", round, d.Message.Body)
			}
			gotBodies = append(gotBodies, string(d.Message.Body))
		}
		slices.Sort(gotBodies)
		want := slices.Clone(bodies[acks:])
		slices.Sort(want)
		if !slices.Equal(gotBodies, want) {
			t.Fatalf("round %d: the new home delivered %v, want the unacked %v", round, gotBodies, want)
		}
		if err := cl2.ch.Ack(got[len(got)-1].Tag, true); err != nil {
			t.Fatal(err)
		}
		// Publishing goes on at the new home.
		if !cl2.publishConfirmed(t, "", "qq", fmt.Sprintf("r%d-after", round), persistent) {
			t.Fatalf("round %d: publish on the new home not confirmed", round)
		}
		d := cl2.sink.waitLen(t, n-acks+1)[n-acks]
		if string(d.Message.Body) != fmt.Sprintf("r%d-after", round) || d.Redelivered {
			t.Fatalf("round %d: after the failover got %q redelivered=%v", round, d.Message.Body, d.Redelivered)
		}
		if err := cl2.ch.Ack(d.Tag, false); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() bool {
			got, err := mapping.LogCountForTest(c.routers[next], "/", "qq")
			return err == nil && got == 0
		})
		cl2.conn.Close()
		cl.conn.Close()
		if how == "stepdown" {
			leader = next
			continue
		}

		// The stopped node comes back (a copy of the queue again, from
		// the replicated record) before the next round.
		c.reopen(leader)
		waitQueueKnown(t, c.routers[leader], "qq")
		leader = next
	}
}

// TestQuorumQueueExpiresAtHome: x-expires of a quorum queue is decided by
// its home. The declaring node n1 loses the leadership to n2, where a
// consumer keeps the queue in use; n1 restarts, and its copy (recovered
// from its record, with the idle timer armed as for every queue) must
// not delete the shared stream when the timer fires.
func TestQuorumQueueExpiresAtHome(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	c := openRouterCluster(t, 3)
	spec := mapping.QueueSpec{Name: "qx", Durable: true, Args: mapping.Table{"x-queue-type": "quorum", "x-expires": int32(200)}}
	cl := connect(t, c.routers[0])
	cl.declareQueue(t, spec)
	cl.consume(t, "qx", "c", false)
	for _, i := range []int{1, 2} {
		waitQueueKnown(t, c.routers[i], "qx")
	}
	if err := mapping.StepDownForTest(c.routers[0], "/", "qx"); err != nil {
		t.Fatal(err)
	}
	home := c.home("qx", 0)
	cl2 := connect(t, c.routers[home])
	cl2.consume(t, "qx", "c2", false)
	cl.conn.Close()
	c.reopen(0)
	time.Sleep(time.Second) // five times x-expires
	if _, err := mapping.LogCountForTest(c.routers[home], "/", "qx"); err != nil {
		t.Fatalf("the quorum queue's log is gone after n1's copy idled: %v", err)
	}
	if !cl2.publishConfirmed(t, "", "qx", "still-here", persistent) {
		t.Fatal("publish to the quorum queue at its home not confirmed")
	}
	if d := cl2.sink.waitLen(t, 1)[0]; string(d.Message.Body) != "still-here" {
		t.Fatalf("got %q", d.Message.Body)
	}
}
