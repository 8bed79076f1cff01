package mapping

import (
	"slices"
	"sync"
)

// QueueSpec describes a queue as queue.declare does.
type QueueSpec struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       Table
}

// Queue holds messages in order and hands them to its consumers in
// round-robin order, within each consumer's and channel's prefetch.
type Queue struct {
	vh      *VHost
	name    string
	spec    QueueSpec
	owner   *Conn  // set for exclusive queues
	logName string // store log for persistent messages; "" when not durable

	bindings []*binding // guarded by vh.mu

	mu           sync.Mutex
	ready        msgList
	nextSeq      uint64
	consumers    []*Consumer
	rr           int
	hadConsumers bool
	exclusiveUse bool
	deleted      bool
	unacked      int
	log          logState
}

// qmsg is one message's place in one queue. The Message itself is shared by
// every queue it was routed to and never changes after publish.
type qmsg struct {
	msg         *Message
	seq         uint64 // position in the queue, for requeue in order
	storeSeq    uint64 // sequence in the queue's log; 0 until stored
	persist     bool
	redelivered bool
	settled     bool // acked or dropped before its store write finished
}

// Consumer is one subscription of a channel to a queue.
type Consumer struct {
	q         *Queue
	ch        *Channel
	tag       string
	noAck     bool
	exclusive bool
	prefetch  int
	unacked   int // guarded by q.mu
}

// Tag is the consumer tag.
func (c *Consumer) Tag() string { return c.tag }

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

func (q *Queue) durableLog() bool { return q.logName != "" }

// canTake is checked with q.mu held.
func (c *Consumer) canTake() bool {
	ch := c.ch
	if ch.blocked.Load() || ch.paused.Load() {
		return false
	}
	if c.noAck {
		return true
	}
	if c.prefetch > 0 && c.unacked >= c.prefetch {
		return false
	}
	if g := ch.globalPrefetch.Load(); g > 0 && ch.unackedN.Load() >= g {
		return false
	}
	return true
}

// dispatchLocked hands ready messages to consumers that can take them.
func (q *Queue) dispatchLocked() {
	for q.ready.len() > 0 && len(q.consumers) > 0 {
		n := len(q.consumers)
		var c *Consumer
		for i := 0; i < n; i++ {
			cand := q.consumers[(q.rr+i)%n]
			if cand.canTake() {
				c = cand
				q.rr = (q.rr + i + 1) % n
				break
			}
		}
		if c == nil {
			return
		}
		m := q.ready.pop()
		if !c.ch.deliverLocked(c, m) {
			q.ready.insert(m)
			return
		}
		if c.noAck {
			q.settleLocked(m)
		} else {
			c.unacked++
			q.unacked++
		}
	}
}

// kick retries dispatch, after capacity was freed somewhere.
func (q *Queue) kick() {
	q.mu.Lock()
	if !q.deleted {
		q.dispatchLocked()
	}
	q.mu.Unlock()
}

// enqueue appends m, writing it to the queue's log first when it must
// survive a restart. t, when not nil, learns when the write is done.
func (q *Queue) enqueue(m *Message, t *storeTracker) {
	qm := &qmsg{msg: m, persist: q.durableLog() && m.Properties.Persistent()}
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	q.nextSeq++
	qm.seq = q.nextSeq
	if qm.persist {
		// Appending under q.mu keeps the log in queue order.
		t.add()
		q.vh.r.store.Append(q.logName, m.record(), func(seq uint64, err error) {
			q.stored(qm, seq, err)
			t.finish(err == nil)
		})
	}
	q.ready.push(qm)
	q.dispatchLocked()
	q.mu.Unlock()
}

// stored runs on the store's goroutine when a log write finished.
func (q *Queue) stored(qm *qmsg, seq uint64, err error) {
	if err != nil {
		q.vh.r.log.Error("store write failed", "queue", q.name, "vhost", q.vh.name, "err", err)
		return
	}
	q.mu.Lock()
	qm.storeSeq = seq
	if qm.settled {
		q.log.forget(seq)
		q.markDirtyLocked()
	}
	q.mu.Unlock()
}

// settleLocked forgets a message that was acked or dropped: its log record
// is deleted by the janitor.
func (q *Queue) settleLocked(m *qmsg) {
	if !m.persist {
		return
	}
	m.settled = true
	if m.storeSeq != 0 {
		q.log.forget(m.storeSeq)
		q.markDirtyLocked()
	}
}

func (q *Queue) markDirtyLocked() {
	if !q.log.dirty {
		q.log.dirty = true
		q.vh.r.janitor.mark(q)
	}
}

// settle finishes deliveries of this queue: acked, requeued or dropped.
func (q *Queue) settle(ds []*delivery, requeue bool) {
	q.mu.Lock()
	for _, d := range ds {
		d.c.unacked--
		q.unacked--
		if q.deleted {
			continue
		}
		if requeue {
			d.m.redelivered = true
			q.ready.insert(d.m)
		} else {
			q.settleLocked(d.m)
		}
	}
	if !q.deleted {
		q.dispatchLocked()
	}
	q.mu.Unlock()
}

// counts returns (ready messages, consumers).
func (q *Queue) counts() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.len(), len(q.consumers)
}

// removeConsumer detaches c and reports whether the queue should now be
// auto-deleted.
func (q *Queue) removeConsumer(c *Consumer) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.consumers, c)
	if i < 0 {
		return false
	}
	q.consumers = slices.Delete(q.consumers, i, i+1)
	if q.rr > i {
		q.rr--
	}
	if len(q.consumers) > 0 {
		q.rr %= len(q.consumers)
	} else {
		q.rr = 0
	}
	if c.exclusive {
		q.exclusiveUse = false
	}
	return q.spec.AutoDelete && len(q.consumers) == 0 && !q.deleted
}

// purgeLocked drops every ready message and returns how many there were.
func (q *Queue) purgeLocked() int {
	n := q.ready.len()
	for q.ready.len() > 0 {
		q.settleLocked(q.ready.pop())
	}
	q.ready = msgList{}
	return n
}

// msgList is a queue of messages ordered by qmsg.seq. Requeued messages go
// back to their original position.
type msgList struct {
	buf  []*qmsg
	head int
}

func (l *msgList) len() int { return len(l.buf) - l.head }

func (l *msgList) push(m *qmsg) { l.buf = append(l.buf, m) }

func (l *msgList) pop() *qmsg {
	m := l.buf[l.head]
	l.buf[l.head] = nil
	l.head++
	if l.head == len(l.buf) {
		l.buf = l.buf[:0]
		l.head = 0
	} else if l.head >= 1024 && l.head*2 >= len(l.buf) {
		n := copy(l.buf, l.buf[l.head:])
		clear(l.buf[n:])
		l.buf = l.buf[:n]
		l.head = 0
	}
	return m
}

func (l *msgList) insert(m *qmsg) {
	live := l.buf[l.head:]
	if len(live) == 0 || m.seq > live[len(live)-1].seq {
		l.push(m)
		return
	}
	if m.seq < live[0].seq && l.head > 0 {
		l.head--
		l.buf[l.head] = m
		return
	}
	i, _ := slices.BinarySearchFunc(live, m.seq, func(e *qmsg, s uint64) int {
		switch {
		case e.seq < s:
			return -1
		case e.seq > s:
			return 1
		}
		return 0
	})
	l.buf = slices.Insert(l.buf, l.head+i, m)
}
