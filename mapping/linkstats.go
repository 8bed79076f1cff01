package mapping

import "sync/atomic"

// linkCounters count the node link's traffic for this node's metrics.
type linkCounters struct {
	fwdSent     atomic.Uint64 // publishes forwarded to another node's queue
	fwdAnswered atomic.Uint64 // of those, taken by the home (stored, or refused as full)
	fwdFailed   atomic.Uint64 // of those, nacked: error, no answer, no home in time
	fwdServed   atomic.Uint64 // forwards from other nodes enqueued here
	declSent    atomic.Uint64 // queue declares placed on another node (placement.go) it answered ok
	declServed  atomic.Uint64 // declares of other nodes' clients run here ok
}

// LinkStats are the node link's figures on this node (zero on a single
// node).
type LinkStats struct {
	ForwardsSent     uint64 // publishes to queues homed elsewhere, forwarded to their home
	ForwardsAnswered uint64 // forwards the home took (stored, or refused by a full queue)
	ForwardsFailed   uint64 // forwards nacked (error, no answer, no home within the retry time)
	ForwardsServed   uint64 // forwards of other nodes' publishers received for queues homed here
	RemoteConsumers  int    // consumers of this node's queues serving other nodes' clients
	DeclaresSent     uint64 // queue declares of this node's clients placed on another node, answered ok
	DeclaresServed   uint64 // queue declares of other nodes' clients placed on this node, answered ok
}

// LinkStats reads the node link's counters.
func (r *Router) LinkStats() LinkStats {
	l := r.link
	if l == nil {
		return LinkStats{}
	}
	st := LinkStats{
		ForwardsSent: l.counters.fwdSent.Load(), ForwardsAnswered: l.counters.fwdAnswered.Load(),
		ForwardsFailed: l.counters.fwdFailed.Load(), ForwardsServed: l.counters.fwdServed.Load(),
		DeclaresSent: l.counters.declSent.Load(), DeclaresServed: l.counters.declServed.Load(),
	}
	for _, sh := range l.shadowList() {
		sh.ch.mu.Lock()
		st.RemoteConsumers += len(sh.ch.consumers)
		sh.ch.mu.Unlock()
	}
	return st
}

// finishCounted ends forward id with ok, counting it.
func (l *link) finishCounted(id uint64, ok bool, fn func(*forward)) {
	l.finishForward(id, func(f *forward) {
		if ok {
			l.counters.fwdAnswered.Add(1)
		} else {
			l.counters.fwdFailed.Add(1)
		}
		fn(f)
	})
}
