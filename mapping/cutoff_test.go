package mapping_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestClusterCutOffNodeFailsDefinitionsAtOnce: when n2 and n3 stop, n1
// hears nobody and no metadata write can commit. A durable declare on
// n1 then fails with the reason, not after the store's 30 s timeout
// with "context deadline exceeded"; once n2 is back, n1 declares again.
func TestClusterCutOffNodeFailsDefinitionsAtOnce(t *testing.T) {
	rs, cfgs := openClusterConfigs(t, 3)
	c1 := connect(t, rs[0])
	c1.declareQueue(t, mapping.QueueSpec{Name: "cut-before", Durable: true})
	rs[1].Close()
	rs[2].Close()
	eventually(t, 20*time.Second, func() bool { return mapping.CutOffForTest(rs[0]) != nil })

	start := time.Now()
	_, err := c1.ch.DeclareQueue(mapping.QueueSpec{Name: "cut-during", Durable: true}, false)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "node n1 hears no other node and has no route to any") {
		t.Fatalf("declare on the cut-off n1: %v, want the cut-off reason", err)
	}
	if mapping.KindOf(err) != mapping.KindInternal {
		t.Errorf("kind %v, want KindInternal (541)", mapping.KindOf(err))
	}
	t.Logf("durable declare on the cut-off n1 failed after %v: %v", took.Round(time.Millisecond), err)
	for _, n := range rs[0].Nodes() {
		if n.Self && !strings.Contains(n.CutOff, "hears no other node and has no route to any") {
			t.Errorf("n1's Nodes() entry for itself: CutOff %q", n.CutOff)
		}
	}
	// What is declared already still answers (the local model).
	c1 = connect(t, rs[0])
	if _, err := c1.ch.DeclareQueue(mapping.QueueSpec{Name: "cut-before"}, true); err != nil {
		t.Errorf("passive declare of a queue declared before: %v", err)
	}

	r2, err := mapping.Open(cfgs[1])
	if err != nil {
		t.Fatal(err)
	}
	rs[1] = r2 // closed by openClusterConfigs' cleanup
	eventually(t, 20*time.Second, func() bool { return mapping.CutOffForTest(rs[0]) == nil })
	for _, n := range rs[0].Nodes() {
		if n.Self && n.CutOff != "" {
			t.Errorf("n1 hears n2 again but Nodes() says %q", n.CutOff)
		}
	}
	eventually(t, 30*time.Second, func() bool {
		_, err := connect(t, rs[0]).ch.DeclareQueue(mapping.QueueSpec{Name: "cut-after", Durable: true}, false)
		return err == nil
	})
}
