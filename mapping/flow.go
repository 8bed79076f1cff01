package mapping

import (
	"time"
)

// Publisher flow control, in the spirit of RabbitMQ's credit flow: when a
// queue that has consumers holds more than flowHighWater ready messages,
// the publishing connection is held until it drains below flowLowWater.
// Consumers then get the CPU the publisher would have spent growing the
// backlog, so end-to-end throughput goes up and latency stays bounded. A
// queue without consumers never holds publishers (a backlog is what it is
// for), nor does a queue consumed by the publisher's own connection (it
// could not drain while its reader waits).
const (
	flowHighWater = 20000
	flowLowWater  = 10000
	flowPoll      = 500 * time.Microsecond
	flowMaxWait   = 2 * time.Second // never hold a publisher longer per message
	// flowRemotePoll: how often a publisher held for a queue homed on
	// another node asks that home whether the queue drained (a request
	// over the link, not a look at memory).
	flowRemotePoll = 5 * time.Millisecond
)

// Across the node link the rule is the same and is decided by the
// queue's home: its answer to each forwarded publish says whether the
// queue holds its publishers (holdsPublishers, carried as one bit by
// linkpublish.go); the publishing node keeps the last answer on its copy
// of the queue (heldAtHome) and arms the hold on the publishing channel
// as a local queue would (flowCandidate). While held, WaitFlow asks the
// home for drainedBelow every flowRemotePoll.

// overHighWaterLocked reports whether q should hold its publishers: only
// while some consumer is draining it. Consumers that are all at their
// prefetch limit drain nothing until they ack, and holding the publisher
// then only slows it to one message per flowMaxWait (the backlog itself
// is bounded in memory by paging).
func (q *Queue) overHighWaterLocked() bool {
	return q.readyLenLocked() > flowHighWater && q.drainingLocked()
}

// drainingLocked: some consumer of q is below its prefetch limit (a
// consumer whose channel is only paused by a slow socket still counts:
// it drains at the socket's pace, and holding the publisher helps it).
func (q *Queue) drainingLocked() bool {
	for _, c := range q.consumers {
		if c.noAck || c.prefetch == 0 || c.unacked < c.prefetch {
			if g := c.ch.globalPrefetch.Load(); g == 0 || c.ch.unackedN.Load() < g {
				return true
			}
		}
	}
	return false
}

// holdsPublishers is the home's answer to a forwarded publish: q is over
// its high water mark while draining. Which connection consumes is the
// publishing node's to check (flowCandidate).
func (q *Queue) holdsPublishers() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overHighWaterLocked()
}

// forwardedFull is enqueue's full for a message forwarded to q's home:
// the home's last answer said q holds its publishers.
func (q *Queue) forwardedFull() bool { return q.heldAtHome.Load() }

// flowCandidate is checked after a publish that left q over its high
// water mark: it still is, and none of its consumers is on conn.
func (q *Queue) flowCandidate(conn *Conn) bool {
	if !q.atHome() {
		return q.heldAtHome.Load() && !conn.consumes(q)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.overHighWaterLocked() {
		return false
	}
	for _, c := range q.consumers {
		if c.ch.conn == conn {
			return false
		}
	}
	return true
}

// consumes reports whether one of c's channels consumes q (through its
// home: such consumers are not in q.consumers on this node).
func (c *Conn) consumes(q *Queue) bool {
	for _, ch := range c.channelList() {
		ch.mu.Lock()
		for _, k := range ch.consumers {
			if k.q == q {
				ch.mu.Unlock()
				return true
			}
		}
		ch.mu.Unlock()
	}
	return false
}

// drainedAnywhere is drainedBelow(flowLowWater) decided where q is
// dispatched: here, or at its home across the link (which answers true
// when it cannot tell: a publisher is never held on a guess).
func (q *Queue) drainedAnywhere() bool {
	l := q.vh.r.link
	if l == nil || q.atHome() {
		return q.drainedBelow(flowLowWater)
	}
	if l.flowDrained(q) {
		q.heldAtHome.Store(false) // until a later answer says otherwise
		return true
	}
	return false
}

func (q *Queue) drainedBelow(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted || q.readyLenLocked() < n || !q.drainingLocked()
}

// FlowHeld reports whether WaitFlow would hold the caller, which may first
// send what its client waits for (publisher confirms).
func (ch *Channel) FlowHeld() bool { return ch.flowQueue.Load() != nil }

// WaitFlow holds the caller (a front's publishing goroutine) while the
// last publish on this channel filled a queue past its high water mark,
// until it drains below the low water mark, quit closes, or flowMaxWait
// passes. It returns at once when there is nothing to wait for.
func (ch *Channel) WaitFlow(quit <-chan struct{}) {
	q := ch.flowQueue.Swap(nil)
	if q == nil {
		return
	}
	deadline := time.Now().Add(flowMaxWait)
	poll := flowPoll
	if !q.atHome() {
		poll = flowRemotePoll
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	for !q.drainedAnywhere() && time.Now().Before(deadline) {
		select {
		case <-quit:
			return
		case <-t.C:
			t.Reset(poll)
		}
	}
}
