package mapping_test

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestBindingRoutesOnEveryNodeAtBindOk: a binding made on n3 routes a
// publish on n1 made right after bind-ok, although n1's watcher applies
// changes 30 ms late and n1 has just found the exchange unroutable (so
// its unroutable-publish barrier, once per 50 ms, would not look again).
// The same for a queue declared on n3 and published to on n1 through
// the default exchange. Without bind and declare waiting for the other
// nodes (spread, linkmeta.go) both publishes are dropped.
func TestBindingRoutesOnEveryNodeAtBindOk(t *testing.T) {
	rs := openClusterRouters(t, 3)
	for _, r := range rs {
		mapping.SetMetaApplyDelay(r, 30*time.Millisecond)
	}
	c1, c3 := connect(t, rs[0]), connect(t, rs[2])
	c1.declareExchange(t, mapping.ExchangeSpec{Name: "spread-x", Type: mapping.TypeFanout})
	c3.declareQueue(t, mapping.QueueSpec{Name: "spread-q"})
	if err := c3.ch.DeclareExchange(mapping.ExchangeSpec{Name: "spread-x"}, true); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if o := c1.ch.Publish(&mapping.Message{Exchange: "spread-x", Body: []byte("nobody")}, nil); o.Routed {
			t.Fatalf("round %d: routed before the binding: %+v", round, o)
		}
		c3.bind(t, "spread-q", "spread-x", "")
		if o := c1.ch.Publish(&mapping.Message{Exchange: "spread-x", Body: []byte("bound")}, nil); !o.Routed {
			t.Errorf("round %d: n1 did not route through n3's binding right after bind-ok: %+v", round, o)
		}
		if err := c3.ch.UnbindQueue("spread-q", "spread-x", "", nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // n1 applies the unbind
	}
	// A queue declared on n3 right after n1 found its name unroutable.
	if o := c1.ch.Publish(&mapping.Message{RoutingKey: "spread-q2", Body: []byte("nobody")}, nil); o.Routed {
		t.Fatalf("routed to a queue not declared yet: %+v", o)
	}
	c3.declareQueue(t, mapping.QueueSpec{Name: "spread-q2"})
	stored := make(chan mapping.Outcome, 1)
	if o := c1.ch.Publish(&mapping.Message{RoutingKey: "spread-q2", Body: []byte("declared")}, func(o mapping.Outcome) { stored <- o }); !o.Routed {
		t.Errorf("n1 did not route to n3's queue right after declare-ok: %+v", o)
	}
	select {
	case <-stored: // forwarded to n3 and enqueued there
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from n3 for the forwarded publish")
	}
	if got := c3.drain(t, "spread-q2"); len(got) != 1 || got[0] != "declared" {
		t.Errorf("spread-q2 on n3 holds %q", got)
	}
}
