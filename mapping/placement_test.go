package mapping_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// queueNode is the home node of queue name as rs[i] reports it.
func queueNode(t *testing.T, r *mapping.Router, name string) string {
	t.Helper()
	vh, err := r.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	s, err := vh.Queue(name)
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	return s.Node
}

// TestPlacementQueueNodes: with queues kept on n1 (PlacementConfig.Nodes),
// every queue a client of n2 declares, exclusive ones aside, is homed on
// n1 and known on every node at declare-ok; a publisher on n2 and a
// consumer on n3 use it through n1.
func TestPlacementQueueNodes(t *testing.T) {
	rs, _ := openClusterWith(t, 3, func(c *mapping.Config) { c.Placement.Nodes = []string{"n1"} })
	c2, c3 := connect(t, rs[1]), connect(t, rs[2])
	specs := []mapping.QueueSpec{
		{Name: "pl-durable", Durable: true},
		{Name: "pl-transient", AutoDelete: true},
		{Name: "pl-quorum", Durable: true, Args: mapping.Table{"x-queue-type": "quorum"}},
		{Name: "pl-ttl", Args: mapping.Table{"x-message-ttl": int32(60000), "x-max-length": int32(100)}},
		{Name: ""}, // server-named, not exclusive
	}
	var names []string
	for _, s := range specs {
		info := c2.declareQueue(t, s)
		if s.Name != "" && info.Name != s.Name {
			t.Fatalf("declare-ok names %q, want %q", info.Name, s.Name)
		}
		if s.Name == "" && !strings.HasPrefix(info.Name, "amq.gen-") {
			t.Fatalf("server-named queue %q", info.Name)
		}
		names = append(names, info.Name)
		// Known on every node at declare-ok, with its home.
		for i, r := range rs {
			if got := queueNode(t, r, info.Name); got != "n1" {
				t.Fatalf("queue %s: n%d says its node is %q, want n1", info.Name, i+1, got)
			}
		}
	}
	ex := c2.declareQueue(t, mapping.QueueSpec{Name: "pl-exclusive", Exclusive: true})
	if got := queueNode(t, rs[1], ex.Name); got != "n2" {
		t.Fatalf("exclusive queue's node %q, want n2 (its connection's)", got)
	}
	// Redeclares on any node answer from n1; inequivalent ones are refused there.
	if info := connect(t, rs[2]).declareQueue(t, mapping.QueueSpec{Name: "pl-durable", Durable: true}); info.Name != "pl-durable" {
		t.Fatalf("redeclare on n3: %+v", info)
	}
	_, err := c2.ch.DeclareQueue(mapping.QueueSpec{Name: "pl-ttl", Args: mapping.Table{"x-message-ttl": int32(1)}}, false)
	wantErr(t, "inequivalent redeclare on n2", err, mapping.ErrPreconditionFailed)
	c2 = connect(t, rs[1]) // the 406 closed the channel

	for _, name := range names {
		for i := range 3 {
			if !c2.publishConfirmed(t, "", name, fmt.Sprintf("%s-%d", name, i), persistent) {
				t.Fatalf("publish to %s on n2 nacked", name)
			}
		}
		if n := connect(t, rs[0]).count(t, name); n != 3 {
			t.Fatalf("queue %s counts %d on n1, want 3", name, n)
		}
	}
	for _, name := range names {
		got := c3.drain(t, name)
		want := []string{name + "-0", name + "-1", name + "-2"}
		wantStrings(t, "drained on n3 from "+name, got, want)
	}
	// Deleted from the declaring node, gone everywhere.
	if _, err := c2.ch.DeleteQueue("pl-durable", false, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		vh, _ := r.VHost("/")
		eventually(t, 5*time.Second, func() bool { _, err := vh.Queue("pl-durable"); return err != nil })
	}
}

// TestPlacementBalanced: a locator argument of balanced (min-masters for
// a classic queue, RabbitMQ 3.x's name) homes each new queue on the node
// with the fewest queues; the default stays client-local.
func TestPlacementBalanced(t *testing.T) {
	rs := openClusterRouters(t, 3)
	c1 := connect(t, rs[0])
	homes := map[string]int{}
	for i := range 6 {
		name := fmt.Sprintf("bal-%d", i)
		c1.declareQueue(t, mapping.QueueSpec{Name: name, Durable: true, Args: mapping.Table{"x-queue-master-locator": "min-masters"}})
		homes[queueNode(t, rs[0], name)]++
	}
	if homes["n1"] != 2 || homes["n2"] != 2 || homes["n3"] != 2 {
		t.Fatalf("6 balanced queues homed %v, want 2 on each node", homes)
	}
	c1.declareQueue(t, mapping.QueueSpec{Name: "bal-local"})
	if got := queueNode(t, rs[2], "bal-local"); got != "n1" {
		t.Fatalf("client-local queue homed on %q, want n1", got)
	}
	// A quorum queue placed balanced: its stream is led by its home.
	c1.declareQueue(t, mapping.QueueSpec{Name: "bal-qq", Durable: true, Args: mapping.Table{"x-queue-type": "quorum", "x-queue-leader-locator": "balanced"}})
	home := queueNode(t, rs[0], "bal-qq")
	if home == "n1" {
		t.Fatalf("balanced quorum queue homed on n1, which holds the most queues")
	}
	if !c1.publishConfirmed(t, "", "bal-qq", "q", persistent) {
		t.Fatal("publish to the placed quorum queue nacked")
	}
	wantStrings(t, "quorum queue drained on n1", c1.drain(t, "bal-qq"), []string{"q"})
}

// TestPlacementNodeDown: when no node that may hold queues runs, a
// declare fails with a clear 506 and creates nothing.
func TestPlacementNodeDown(t *testing.T) {
	rs, _ := openClusterWith(t, 3, func(c *mapping.Config) { c.Placement.Nodes = []string{"n1"} })
	rs[0].Close()
	c2 := connect(t, rs[1])
	_, err := c2.ch.DeclareQueue(mapping.QueueSpec{Name: "pl-nowhere", Durable: true}, false)
	wantErr(t, "declare with n1 down", err, mapping.ErrResourceError)
	if !strings.Contains(err.Error(), "n1") {
		t.Fatalf("error %q does not name the node", err)
	}
	c3 := connect(t, rs[2])
	_, err = c3.ch.DeclareQueue(mapping.QueueSpec{Name: "pl-nowhere"}, true)
	wantErr(t, "passive declare of the queue that was refused", err, mapping.ErrNotFound)
	// Exclusive queues stay with their connection and need no other node.
	if info := connect(t, rs[1]).declareQueue(t, mapping.QueueSpec{Exclusive: true}); info.Name == "" {
		t.Fatal("exclusive queue not declared")
	}
}

// TestPlacementNodeDiesMidDeclare: the node chosen to hold a queue
// takes the declare and is killed before it answers. The declaring node
// answers 506 once it knows that node is down (5 s without its
// heartbeat), not when the link's 30 s run out.
func TestPlacementNodeDiesMidDeclare(t *testing.T) {
	rs, _ := openClusterWith(t, 3, func(c *mapping.Config) { c.Placement.Nodes = []string{"n1"} })
	taken, err := rs[0].SwallowDeclaresForTest()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // n2's server knows n1's new subscription
	c2 := connect(t, rs[1])
	done := make(chan error, 1)
	go func() {
		_, err := c2.ch.DeclareQueue(mapping.QueueSpec{Name: "pl-orphan", Durable: true}, false)
		done <- err
	}()
	eventually(t, 5*time.Second, func() bool { return taken() == 1 })
	killed := time.Now()
	mapping.CrashForTest(rs[0])
	select {
	case err := <-done:
		t.Logf("declare answered %v after n1 was killed: %v", time.Since(killed).Round(time.Millisecond), err)
		wantErr(t, "declare placed on a node killed before it answered", err, mapping.ErrResourceError)
		if !strings.Contains(err.Error(), "node n1, which was to hold it, stopped before it answered") {
			t.Fatalf("error %q does not say that n1 stopped", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("no answer to the declare 40 s after n1 was killed")
	}
}

// TestLocatorArguments: the locator arguments take RabbitMQ's values only.
func TestLocatorArguments(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	for _, tc := range []struct {
		args mapping.Table
		ok   bool
	}{
		{mapping.Table{"x-queue-master-locator": "client-local"}, true},
		{mapping.Table{"x-queue-master-locator": "min-masters"}, true},
		{mapping.Table{"x-queue-master-locator": "random"}, true},
		{mapping.Table{"x-queue-master-locator": "balanced"}, true},
		{mapping.Table{"x-queue-master-locator": "nearest"}, false},
		{mapping.Table{"x-queue-master-locator": int32(1)}, false},
		{mapping.Table{"x-queue-type": "quorum", "x-queue-leader-locator": "balanced"}, true},
		{mapping.Table{"x-queue-type": "quorum", "x-queue-leader-locator": "client-local"}, true},
		{mapping.Table{"x-queue-type": "quorum", "x-queue-leader-locator": "min-masters"}, false},
		{mapping.Table{"x-queue-type": "quorum", "x-queue-leader-locator": ""}, false},
	} {
		_, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: "loc", Durable: true, Args: tc.args}, false)
		if tc.ok {
			if err != nil {
				t.Fatalf("%v: %v", tc.args, err)
			}
			if _, err := c.ch.DeleteQueue("loc", false, false); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wantErr(t, fmt.Sprint(tc.args), err, mapping.ErrPreconditionFailed)
		c = connect(t, r)
	}
}

func TestPlacementConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		c  mapping.PlacementConfig
		ok bool
	}{
		{mapping.PlacementConfig{}, true},
		{mapping.PlacementConfig{Locator: "client-local"}, true},
		{mapping.PlacementConfig{Locator: "balanced", Nodes: []string{"n1", "n-2"}}, true},
		{mapping.PlacementConfig{Locator: "min-masters"}, false},
		{mapping.PlacementConfig{Nodes: []string{"bad name"}}, false},
		{mapping.PlacementConfig{Nodes: []string{""}}, false},
	} {
		if err := tc.c.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v: Check() = %v, want ok %v", tc.c, err, tc.ok)
		}
	}
}
