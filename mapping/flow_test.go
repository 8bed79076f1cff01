package mapping_test

import (
	"fmt"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// TestFlowHoldsPublishersOnlyWhileConsumersDrain: past the high water
// mark a publisher is held while a consumer drains the queue (here one
// whose socket is slow: its sink is full), and not while every consumer
// sits at its prefetch limit, which would only slow the publisher to a
// crawl.
func TestFlowHoldsPublishersOnlyWhileConsumersDrain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		slowSink bool // the consumer's sink is full: it drains at its socket's pace
		wantHeld bool
	}{
		{"consumer at its prefetch limit", false, false},
		{"consumer on a slow socket", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openRouter(t)
			pub := connect(t, r)
			pub.declareQueue(t, mapping.QueueSpec{Name: "fq"})
			cons := connect(t, r)
			if tc.slowSink {
				cons.sink.setFull(true)
			} else {
				cons.ch.SetPrefetch(10, false)
			}
			cons.consume(t, "fq", "c", false)
			for i := range 20010 {
				pub.publish(t, "", "fq", fmt.Sprint(i), mapping.Properties{})
			}
			if held := pub.ch.FlowHeld(); held != tc.wantHeld {
				t.Fatalf("FlowHeld() = %v after 20,010 messages, want %v (consumer got %d)", held, tc.wantHeld, cons.sink.len())
			}
		})
	}
}
