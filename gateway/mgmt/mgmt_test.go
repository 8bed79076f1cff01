package mgmt

import (
	"testing"
	"time"
)

func TestRateTracker(t *testing.T) {
	rt := newRateTracker()
	if r := rt.rates("k", 10); r[0] != 0 {
		t.Fatalf("first sample rate = %v", r)
	}
	// Age the first sample by hand.
	rt.series["k"].samples[0].at = time.Now().Add(-2 * time.Second)
	if r := rt.rates("k", 30); r[0] < 9 || r[0] > 11 {
		t.Fatalf("rate = %v, want about 10/s", r)
	}
}
