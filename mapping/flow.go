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
)

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

// flowCandidate is checked after a publish that left q over its high
// water mark: it still is, and none of its consumers is on conn.
func (q *Queue) flowCandidate(conn *Conn) bool {
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
	t := time.NewTimer(flowPoll)
	defer t.Stop()
	for !q.drainedBelow(flowLowWater) && time.Now().Before(deadline) {
		select {
		case <-quit:
			return
		case <-t.C:
			t.Reset(flowPoll)
		}
	}
}
