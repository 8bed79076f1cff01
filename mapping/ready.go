package mapping

import (
	"slices"
	"sync/atomic"
)

// readyQueue holds a queue's ready messages: one ordered list per priority
// level (a single level for queues without x-max-priority). Higher levels
// are delivered first; within a level, oldest first.
type readyQueue struct {
	levels   []msgList
	n        int
	bytes    int64
	expiring int           // messages with a TTL: when 0, expiry has nothing to do
	global   *atomic.Int64 // the router's bytes of ready messages in memory (pager.go); may be nil
}

func (r *readyQueue) setLevels(maxPriority uint8) {
	r.levels = make([]msgList, int(maxPriority)+1)
}

func (r *readyQueue) level(m *qmsg) *msgList {
	if len(r.levels) == 0 {
		r.levels = make([]msgList, 1)
	}
	p := int(m.prio)
	if p >= len(r.levels) {
		p = len(r.levels) - 1
	}
	return &r.levels[p]
}

func (r *readyQueue) len() int { return r.n }

func (r *readyQueue) push(m *qmsg) {
	r.level(m).push(m)
	r.added(m)
}

func (r *readyQueue) added(m *qmsg) {
	r.n++
	r.bytes += int64(len(m.msg.Body))
	if r.global != nil {
		r.global.Add(int64(len(m.msg.Body)))
	}
	if m.expires != 0 {
		r.expiring++
	}
}

func (r *readyQueue) insert(m *qmsg) {
	r.level(m).insert(m)
	r.added(m)
}

// pop takes the next message to deliver.
func (r *readyQueue) pop() *qmsg {
	for i := len(r.levels) - 1; i >= 0; i-- {
		if r.levels[i].len() > 0 {
			return r.took(r.levels[i].pop())
		}
	}
	return nil
}

// popOldest takes the message that max-length drops first: the oldest of
// the lowest priority.
func (r *readyQueue) popOldest() *qmsg {
	for i := range r.levels {
		if r.levels[i].len() > 0 {
			return r.took(r.levels[i].pop())
		}
	}
	return nil
}

func (r *readyQueue) took(m *qmsg) *qmsg {
	r.n--
	r.bytes -= int64(len(m.msg.Body))
	if r.global != nil {
		r.global.Add(-int64(len(m.msg.Body)))
	}
	if m.expires != 0 {
		r.expiring--
	}
	return m
}

// popExpired takes one message whose TTL ran out at the head of a level.
func (r *readyQueue) popExpired(now int64) *qmsg {
	for i := range r.levels {
		l := &r.levels[i]
		if l.len() > 0 {
			if h := l.peek(); h.expires != 0 && h.expires <= now {
				return r.took(l.pop())
			}
		}
	}
	return nil
}

// nextExpiry is the earliest expiry among the heads of the levels, or 0.
func (r *readyQueue) nextExpiry() int64 {
	var at int64
	for i := range r.levels {
		if r.levels[i].len() > 0 {
			if e := r.levels[i].peek().expires; e != 0 && (at == 0 || e < at) {
				at = e
			}
		}
	}
	return at
}

func (r *readyQueue) clear() {
	for i := range r.levels {
		r.levels[i] = msgList{}
	}
	if r.global != nil {
		r.global.Add(-r.bytes)
	}
	r.n, r.bytes, r.expiring = 0, 0, 0
}

// msgList is a queue of messages ordered by qmsg.seq. Requeued messages go
// back to their original position.
type msgList struct {
	buf  []*qmsg
	head int
}

func (l *msgList) len() int { return len(l.buf) - l.head }

func (l *msgList) peek() *qmsg { return l.buf[l.head] }

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
