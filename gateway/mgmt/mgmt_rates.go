package mgmt

import (
	"sync"
	"time"
)

// Rates ("publish_details": {"rate": 12.5}) are computed from the core's
// counters by sampling them when the API is read: each series keeps the
// samples of the last rateHistory, and a rate is the change per second
// since the newest sample at least rateWindow old (or the oldest one, when
// the series is younger). There is no sampler goroutine: a series nobody
// reads costs nothing, and one that monitoring polls every few seconds
// has its rate from the second poll on. Series unread for rateForget are
// dropped.
const (
	rateWindow  = 5 * time.Second
	rateHistory = 30 * time.Second
	rateMinStep = time.Second // keep at most one sample per second
	rateForget  = 2 * time.Minute
)

type rateSample struct {
	at time.Time
	v  []float64
}

type rateSeries struct {
	samples []rateSample // oldest first
	read    time.Time
}

type rateTracker struct {
	mu     sync.Mutex
	series map[string]*rateSeries
	pruned time.Time
}

func newRateTracker() *rateTracker {
	return &rateTracker{series: map[string]*rateSeries{}}
}

// rates records cur for key and returns the rate of each value.
func (t *rateTracker) rates(key string, cur ...float64) []float64 {
	now := time.Now()
	out := make([]float64, len(cur))
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) > rateForget {
		for k, s := range t.series {
			if now.Sub(s.read) > rateForget {
				delete(t.series, k)
			}
		}
		t.pruned = now
	}
	s := t.series[key]
	if s == nil {
		s = &rateSeries{}
		t.series[key] = s
	}
	s.read = now
	// Forget old samples, keeping at least one.
	drop := 0
	for drop < len(s.samples)-1 && now.Sub(s.samples[drop].at) > rateHistory {
		drop++
	}
	s.samples = s.samples[drop:]
	var base *rateSample
	for i := len(s.samples) - 1; i >= 0; i-- {
		if now.Sub(s.samples[i].at) >= rateWindow {
			base = &s.samples[i]
			break
		}
	}
	if base == nil && len(s.samples) > 0 {
		base = &s.samples[0]
	}
	if base != nil && len(base.v) == len(cur) {
		if dt := now.Sub(base.at).Seconds(); dt >= 0.5 {
			for i := range cur {
				out[i] = (cur[i] - base.v[i]) / dt
			}
		}
	}
	if n := len(s.samples); n == 0 || now.Sub(s.samples[n-1].at) >= rateMinStep {
		s.samples = append(s.samples, rateSample{at: now, v: append([]float64(nil), cur...)})
	}
	return out
}

// rateDetails is RabbitMQ's "<field>_details" object.
type rateDetails struct {
	Rate float64 `json:"rate"`
}
