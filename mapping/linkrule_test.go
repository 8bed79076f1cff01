package mapping

import (
	"testing"
	"time"
)

// TestForwardLost: the watcher's rule for a forward without an answer,
// case by case, at a fixed time (no cluster).
func TestForwardLost(t *testing.T) {
	now := time.Now()
	sent := now.Add(-6 * time.Second) // past hbTimeout
	fresh := now.Add(-2 * time.Second)
	const oldInc, newInc = 11, 22
	before := sent.Add(-time.Minute) // a process running when the forward was sent
	after := sent.Add(time.Second)   // one started after it
	// A home that said it stops (a graceful stop) answers none of the
	// forwards sent to that process before it said so, however fresh.
	said := now.Add(-time.Second)
	stoppedN1 := map[string]stoppedNode{"n1": {oldInc, said}}
	for _, c := range []struct {
		name    string
		f       forward
		alive   map[string]liveNode
		stopped map[string]stoppedNode
		lost    bool
	}{
		{"home answers slowly, same process", forward{home: "n1", homeInc: oldInc, sent: sent}, map[string]liveNode{"n1": {oldInc, before}}, nil, false},
		{"home restarted", forward{home: "n1", homeInc: oldInc, sent: sent}, map[string]liveNode{"n1": {newInc, after}}, nil, true},
		{"home restarted, too soon to tell", forward{home: "n1", homeInc: oldInc, sent: fresh}, map[string]liveNode{"n1": {newInc, after}}, nil, false},
		{"home silent", forward{home: "n1", homeInc: oldInc, sent: sent}, map[string]liveNode{}, nil, true},
		{"not heard at the send, same process", forward{home: "n1", sent: sent}, map[string]liveNode{"n1": {oldInc, before}}, nil, false},
		{"not heard at the send, restarted since", forward{home: "n1", sent: sent}, map[string]liveNode{"n1": {newInc, after}}, nil, true},
		{"not heard at the send, silent", forward{home: "n1", sent: sent}, map[string]liveNode{}, nil, true},
		{"no home known (a quorum queue between leaders)", forward{home: "", sent: sent}, map[string]liveNode{"n1": {oldInc, before}}, nil, true},
		{"waiting for its retry", forward{home: "n1", sent: sent, retrying: true}, map[string]liveNode{}, nil, false},
		{"sent to the stopping process", forward{home: "n1", homeInc: oldInc, sent: fresh}, map[string]liveNode{}, stoppedN1, true},
		{"sent before the home was heard, which then stopped", forward{home: "n1", sent: fresh}, map[string]liveNode{}, stoppedN1, true},
		{"sent after it said so (to whoever serves it next)", forward{home: "n1", homeInc: oldInc, sent: said.Add(time.Millisecond)}, map[string]liveNode{}, stoppedN1, false},
		{"another process stopped", forward{home: "n1", homeInc: newInc, sent: fresh}, map[string]liveNode{}, stoppedN1, false},
		{"another node stopped", forward{home: "n1", homeInc: oldInc, sent: fresh}, map[string]liveNode{}, map[string]stoppedNode{"n2": {oldInc, said}}, false},
		{"waiting for its retry after the stop", forward{home: "n1", homeInc: oldInc, sent: fresh, retrying: true}, map[string]liveNode{}, stoppedN1, false},
	} {
		c.f.deadline = c.f.sent.Add(linkTimeout)
		if why := forwardLost(&c.f, now, c.alive, c.stopped); (why != "") != c.lost {
			t.Errorf("%s: forwardLost = %q, want lost %v", c.name, why, c.lost)
		}
	}
	// Past linkTimeout a forward fails whatever its home.
	f := forward{home: "n1", homeInc: oldInc, sent: now.Add(-linkTimeout - time.Second)}
	f.deadline = f.sent.Add(linkTimeout)
	if why := forwardLost(&f, now, map[string]liveNode{"n1": {oldInc, before}}, nil); why == "" {
		t.Error("a forward past linkTimeout is not failed")
	}
}
