package jsstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestBusDrainedStopTakesWhatArrived: the stop of a SubscribeDrained
// subscription lets its handler take every message that reached the
// node before the stop (a plain stop drops those still queued), and
// after it nobody answers the subject.
func TestBusDrainedStopTakesWhatArrived(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a cluster")
	}
	ss := openCluster(t, freePorts(t, 2), "s3cret")
	home, sender := busOf(t, ss[0]), busOf(t, ss[1])
	var took atomic.Int64
	stop, err := home.SubscribeDrained("test.drain", func(m BusMsg) {
		time.Sleep(2 * time.Millisecond) // a slow handler: messages queue up
		took.Add(1)
	}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := home.Flush(); err != nil {
		t.Fatal(err)
	}
	// The sender's server learns of the interest over the route.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := sender.Request("test.drain", nil, 100*time.Millisecond); err != ErrNoResponders || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took.Store(0)
	const n = 300
	for i := range n {
		if err := sender.Publish("test.drain", "", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sender.Flush(); err != nil {
		t.Fatal(err)
	}
	// Every message has reached the home's connection (a request after
	// them on the same route is answered after them)...
	if err := home.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := took.Load(); got >= n {
		t.Fatalf("the handler took all %d before the stop: the test shows nothing", got)
	}
	stop()
	if got := took.Load(); got != n {
		t.Fatalf("the drained stop let the handler take %d of %d", got, n)
	}
	if _, err := home.Request("test.drain", nil, time.Second); err != ErrNoResponders {
		t.Fatalf("request after the stop: %v, want no responders", err)
	}
}

func busOf(t *testing.T, s *Store) *Bus {
	t.Helper()
	b, err := s.OpenBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
