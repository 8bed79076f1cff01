package mapping

import (
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Bounded memory (mapping/README.md, "Paging"): a queue keeps a window of
// its oldest ready messages in memory; the messages behind the window
// live only in the queue's log and are read back in batches as the window
// drains. The ready messages of a queue are, in queue order:
//
//	window (q.ready) | paged (log records [cursor, acked], page.n of them) | spill
//
// The spill holds messages enqueued while the queue pages whose store
// write has not completed yet; once written (in queue order, since one
// lane appends a log in order) they become paged and leave memory.
//
// Queues with x-max-priority are not paged: one log cannot give each
// priority level its own suffix without a subject per level.
const (
	refillBytes = 4 << 20 // bytes per read
	refillRetry = 500 * time.Millisecond
	// pageWaitMax bounds how long basic.get waits for a read of paged
	// messages before it looks again.
	pageWaitMax    = 5 * time.Second
	pageWaitRounds = 6
)

// PagingConfig sizes the windows (Config.Paging). The zero value gives
// the defaults: RabbitMQ's classic queues keep about 2,048 messages in
// memory too.
type PagingConfig struct {
	Window      int   // ready messages a queue keeps in memory; 0 → 2048
	WindowBytes int64 // and their body bytes (at least one message); 0 → 8 MiB
	// ConsumedWindow and ConsumedWindowBytes are the window of a queue
	// that has consumers: large enough for the backlog that flow control
	// lets a consumed queue build (flow.go), so that a publisher running
	// ahead of its consumers does not make every message take the trip
	// through the store. 0 → 25,000 messages and 32 MiB.
	ConsumedWindow      int
	ConsumedWindowBytes int64
	// Budget bounds the body bytes of ready messages in memory over all
	// queues: past it, every queue that has any message in memory pages
	// new ones. 0 → 128 MiB.
	Budget int64
}

// DefaultPagingConfig is what the zero PagingConfig means.
var DefaultPagingConfig = PagingConfig{Window: 2048, WindowBytes: 8 << 20,
	ConsumedWindow: flowHighWater + flowHighWater/4, ConsumedWindowBytes: 32 << 20, Budget: 128 << 20}

func (c PagingConfig) withDefaults() PagingConfig {
	d := DefaultPagingConfig
	if c.Window > 0 {
		d.Window = c.Window
	}
	if c.WindowBytes > 0 {
		d.WindowBytes = c.WindowBytes
	}
	if c.ConsumedWindow > 0 {
		d.ConsumedWindow = c.ConsumedWindow
	}
	if c.ConsumedWindowBytes > 0 {
		d.ConsumedWindowBytes = c.ConsumedWindowBytes
	}
	if c.Budget > 0 {
		d.Budget = c.Budget
	}
	return d
}

// window is the size of a queue's window, in messages and body bytes.
type window struct {
	n     int
	bytes int64
}

// refillLow is the window length below which a read starts; refillBatch
// the records one read asks for.
func (w window) refillLow() int   { return max(w.n/2, 1) }
func (w window) refillBatch() int { return min(max(w.n/4, 1), 512) }

// windowLocked is q's window now: the consumed one while it has consumers.
func (q *Queue) windowLocked() window {
	c := &q.vh.r.cfg.Paging
	if len(q.consumers) > 0 {
		return window{max(c.Window, c.ConsumedWindow), max(c.WindowBytes, c.ConsumedWindowBytes)}
	}
	return window{c.Window, c.WindowBytes}
}

// pageState is a queue's paged part, guarded by Queue.mu.
type pageState struct {
	on         bool    // new messages go to the spill: some ready message is not in memory
	spill      msgList // enqueued while on; written or not yet
	spillBytes int64
	cursor     uint64  // next log sequence to read; records below it were read or settled
	acked      uint64  // last log sequence counted in n
	n          int     // ready messages in [cursor, acked] not in memory
	bytes      int64   // their body bytes (estimated after a restart)
	skip       []int64 // max-length drops owed to the oldest paged records (estimated bytes of each)
	// Spill messages dropped (max-length) before their write finished
	// stay in the spill until it does, so that their records, which may
	// land among paged ones, are known: ignore holds those sequences.
	spillDropped int
	ignore       map[uint64]bool
	loading      bool // a read is in flight
	// redeliverBelow: records below it were in the log at start and may
	// have been delivered before, so they come back redelivered.
	redeliverBelow uint64
	purged         []purgedRange   // purged runs found at start, skipped when read (purged.go)
	waiters        []chan struct{} // basic.get callers waiting for a read
}

// pageTrace, when set (tests), is told of every paging decision. Callers
// check it first, so that its arguments cost nothing otherwise.
var pageTrace func(q *Queue, what string, args ...any)

func (q *Queue) trace(what string, args ...any) {
	if pageTrace != nil {
		pageTrace(q, what, args...)
	}
}

// pageable: priority queues keep every ready message in memory.
func (q *Queue) pageable() bool { return q.policy.maxPriority == 0 }

// logFor is the log that holds q's records: its durable log, or the page
// log of a non-durable queue ("" until it first pages). Read under q.mu.
func (q *Queue) logFor() string {
	if q.logName != "" {
		return q.logName
	}
	return q.pageLog
}

// readyLenLocked counts every ready message, in memory or not.
func (q *Queue) readyLenLocked() int {
	return q.ready.len() + q.page.spill.len() - q.page.spillDropped + q.page.n
}

func (q *Queue) readyBytesLocked() int64 {
	return q.ready.bytes + q.page.spillBytes + q.page.bytes
}

// shouldPageLocked decides where a new message of size bytes goes: behind
// the window (true) or into it.
func (q *Queue) shouldPageLocked(size int) bool {
	if !q.pageable() {
		return false
	}
	n := q.ready.len()
	if q.page.on {
		if n > 0 || q.page.n > 0 || len(q.page.skip) > 0 || q.page.spill.len() > 0 {
			return true
		}
		q.fillLocked() // nothing is paged any more: paging ends
	}
	if n == 0 {
		return false
	}
	w := q.windowLocked()
	return n >= w.n || q.ready.bytes+int64(size) > w.bytes || q.overBudget()
}

// overBudget: the ready bodies in memory over all queues passed the
// budget, so a queue with messages in memory takes no more.
func (q *Queue) overBudget() bool {
	return q.vh.r.windowBytes.Load() > q.vh.r.cfg.Paging.Budget
}

// updateHintLocked tells publishers (prepareRecord) whether a message
// routed to q is likely to be paged, so its record is built before the
// message is shared.
func (q *Queue) updateHintLocked() {
	w := q.windowLocked()
	q.pagingHint.Store(q.pageable() && (q.page.on || q.ready.len() >= w.n-w.n/32 ||
		q.ready.bytes > w.bytes/2 || q.vh.r.windowBytes.Load() > q.vh.r.cfg.Paging.Budget/2))
}

// spillLocked puts qm behind the paged messages; its store write is in
// the lane.
func (q *Queue) spillLocked(qm *qmsg) {
	p := &q.page
	p.on = true
	p.spill.push(qm)
	p.spillBytes += int64(len(qm.msg.Body))
	q.drainSpillLocked()
}

// drainSpillLocked turns written spill messages, oldest first, into paged
// ones: they leave memory. A message whose write failed is dropped (a
// persistent one's publisher got a nack).
func (q *Queue) drainSpillLocked() {
	p := &q.page
	for p.spill.len() > 0 {
		m := p.spill.peek()
		st := m.store.Load()
		if st&storeFailed != 0 {
			p.spill.pop()
			if st&storeSettled != 0 {
				p.spillDropped--
				continue
			}
			p.spillBytes -= int64(len(m.msg.Body))
			q.vh.r.log.Error("message lost: its store write failed", "queue", q.name, "vhost", q.vh.name)
			continue
		}
		if st&storeWritten == 0 {
			return
		}
		p.spill.pop()
		if st&storeSettled != 0 {
			// Dropped while in the spill (settled then; the janitor
			// removes its record).
			p.spillDropped--
			if p.n > 0 || len(p.skip) > 0 {
				if p.ignore == nil {
					p.ignore = map[uint64]bool{}
				}
				seq := m.storeSeq.Load()
				p.ignore[seq] = true
				p.acked = seq
			}
			continue
		}
		size := int64(len(m.msg.Body))
		p.spillBytes -= size
		seq := m.storeSeq.Load()
		if p.n == 0 && len(p.skip) == 0 {
			// Nothing paged is outstanding, so every record before this
			// one was read back or belongs to the window.
			p.cursor = seq
		}
		p.acked = seq
		p.n++
		p.bytes += size
		if pageTrace != nil {
			q.trace("drain", seq, string(m.msg.Body), p.cursor, p.n)
		}
	}
}

// fillLocked keeps the window topped up: spill messages move into it
// directly when nothing is paged before them; otherwise a read of the
// next records starts (pageIn) when the window runs low.
func (q *Queue) fillLocked() {
	p := &q.page
	if !p.on || q.deleted {
		return
	}
	c := q.windowLocked()
	q.drainSpillLocked()
	if p.n == 0 && len(p.skip) == 0 {
		for p.spill.len() > 0 && (q.ready.len() == 0 || q.ready.len() < c.n && q.ready.bytes < c.bytes && !q.overBudget()) {
			m := p.spill.pop()
			if m.store.Load()&storeSettled != 0 {
				p.spillDropped-- // dropped already
				continue
			}
			p.spillBytes -= int64(len(m.msg.Body))
			q.nextSeq++
			m.seq = q.nextSeq
			q.ready.push(m)
			if pageTrace != nil {
				q.trace("move", string(m.msg.Body))
			}
		}
		if p.spill.len() == 0 {
			p.on = false
			p.cursor, p.acked, p.bytes = 0, 0, 0
			q.wakePageWaitersLocked()
		}
		q.updateHintLocked()
		return
	}
	if p.loading || q.ready.len() >= c.refillLow() || q.ready.bytes >= c.bytes/2 || q.vh.r.closed.Load() ||
		q.ready.len() > 0 && q.overBudget() {
		return
	}
	name := q.logFor()
	if name == "" {
		return
	}
	want := min(c.refillBatch(), c.n-q.ready.len(), p.n+len(p.skip))
	if want <= 0 {
		want = 1
	}
	p.loading = true
	from := p.pastPurged(p.cursor)
	if pageTrace != nil {
		q.trace("read", from, want)
	}
	r := q.vh.r
	r.pagers.Add(1)
	go q.pageIn(name, from, want)
}

// pageIn reads the next records of the queue's log, with no lock held,
// and hands them to the queue. It is the only goroutine reading q's log
// (page.loading); the router's pagers group waits for it at Close.
func (q *Queue) pageIn(name string, from uint64, want int) {
	r := q.vh.r
	defer r.pagers.Done()
	recs, err := r.store.ReadBatch(name, from, want, refillBytes)
	q.mu.Lock()
	q.page.loading = false
	if q.deleted || r.closed.Load() {
		q.wakePageWaitersLocked()
		q.mu.Unlock()
		return
	}
	if err != nil {
		r.log.Error("reading paged messages", "queue", q.name, "vhost", q.vh.name, "err", err)
		q.mu.Unlock()
		time.AfterFunc(refillRetry, q.kick)
		return
	}
	q.applyPageLocked(recs)
	q.dispatchLocked()
	q.wakePageWaitersLocked()
	q.unlockAndDeadLetter()
}

// applyPageLocked moves records read from the log into the window.
// Records outside [cursor, acked] are stale (a purge, or spill messages
// not yet counted) and skipped.
func (q *Queue) applyPageLocked(recs []jsstore.Record) {
	p := &q.page
	for _, rec := range recs {
		if rec.Seq < p.cursor || rec.Seq > p.acked {
			continue
		}
		// Sequences skipped over were deleted (acked out of order before
		// a restart, or transient and purged at start).
		q.log.forgetRange(p.cursor, rec.Seq-1)
		if past := p.pastPurged(rec.Seq); past != rec.Seq {
			p.cursor = past
			continue
		}
		p.cursor = rec.Seq + 1
		if p.ignore[rec.Seq] {
			delete(p.ignore, rec.Seq)
			continue
		}
		m, err := decodeRecord(rec.Data)
		if err != nil {
			q.vh.r.log.Error("dropping unreadable message record", "queue", q.name, "seq", rec.Seq, "err", err)
			q.log.forget(rec.Seq)
			q.markDirtyLocked()
			if len(p.skip) > 0 {
				p.skip = p.skip[1:]
			} else {
				p.n--
			}
			continue
		}
		qm := q.loadedMsg(m, rec.Seq, rec.Transient)
		size := int64(len(m.Body))
		if pageTrace != nil {
			q.trace("load", rec.Seq, string(m.Body), len(p.skip))
		}
		if len(p.skip) > 0 {
			// Dropped for max-length while it was paged: dead-lettered now.
			p.bytes -= size - p.skip[0]
			p.skip = p.skip[1:]
			q.dropLocked(qm, "maxlen")
			continue
		}
		p.n--
		p.bytes -= size
		q.nextSeq++
		qm.seq = q.nextSeq
		q.ready.push(qm)
	}
	if p.n == 0 && len(p.skip) == 0 {
		p.bytes = 0
	} else if p.bytes < 0 {
		p.bytes = 0
	}
	q.fillLocked()
	q.updateHintLocked()
}

// loadedMsg is a message read back from q's log at sequence seq.
func (q *Queue) loadedMsg(m *Message, seq uint64, transient bool) *qmsg {
	qm := &qmsg{msg: m, logged: true, persist: !transient && q.durableLog(),
		expires: q.policy.expiry(m, m.ts), redelivered: seq < q.page.redeliverBelow}
	if q.policy.maxPriority > 0 {
		qm.prio = m.Properties.Priority
	}
	qm.storeSeq.Store(seq)
	qm.store.Store(storeWritten)
	return qm
}

// dropOldestLocked drops the oldest ready message for max-length
// (drop-head): the window's head, else the oldest paged record (owed,
// dead-lettered when it is read back), else the spill's head. It reports
// whether there was one.
func (q *Queue) dropOldestLocked() bool {
	if q.ready.len() > 0 {
		m := q.ready.popOldest()
		if pageTrace != nil {
			q.trace("drop window", string(m.msg.Body))
		}
		q.dropLocked(m, "maxlen")
		return true
	}
	p := &q.page
	q.drainSpillLocked()
	if p.n > 0 {
		est := p.bytes / int64(p.n)
		if p.n--; p.n == 0 {
			est = p.bytes
		}
		p.bytes -= est
		p.skip = append(p.skip, est)
		if pageTrace != nil {
			q.trace("drop paged", p.n, len(p.skip))
		}
		q.fillLocked()
		return true
	}
	for i := p.spill.head; i < len(p.spill.buf); i++ {
		m := p.spill.buf[i]
		if m.store.Load()&storeSettled != 0 {
			continue
		}
		// The oldest: unwritten (written ones were drained), so it
		// stays in the spill, settled, until its write is done.
		p.spillBytes -= int64(len(m.msg.Body))
		p.spillDropped++
		if pageTrace != nil {
			q.trace("drop spill", string(m.msg.Body))
		}
		q.dropLocked(m, "maxlen")
		return true
	}
	return false
}

// purgePagedLocked settles every ready message that is not in the window
// and returns the run of log records that held the paged ones.
func (q *Queue) purgePagedLocked() purgedRange {
	p := &q.page
	for p.spill.len() > 0 {
		if m := p.spill.pop(); m.store.Load()&storeSettled == 0 {
			q.settleLocked(m)
		}
	}
	p.spillBytes, p.spillDropped, p.ignore = 0, 0, nil
	var rg purgedRange
	if p.n > 0 || len(p.skip) > 0 {
		rg = purgedRange{First: p.cursor, Last: p.acked, Count: uint64(p.n + len(p.skip))}
		q.log.forgetRange(p.cursor, p.acked)
		q.markDirtyLocked()
	}
	p.n, p.bytes, p.skip = 0, 0, nil
	p.on = false
	p.cursor, p.acked = 0, 0
	q.wakePageWaitersLocked()
	q.updateHintLocked()
	return rg
}

// clearPagedLocked forgets the paged part of a deleted queue (its log is
// deleted with it).
func (q *Queue) clearPagedLocked() {
	q.page = pageState{}
	q.wakePageWaitersLocked()
	q.pagingHint.Store(false)
}

// waitPageLocked returns a channel closed when the read in flight (or the
// one fillLocked starts now) is applied. Called with the window empty and
// messages paged.
func (q *Queue) waitPageLocked() <-chan struct{} {
	q.fillLocked()
	c := make(chan struct{})
	if !q.page.loading {
		close(c)
		return c
	}
	q.page.waiters = append(q.page.waiters, c)
	return c
}

func (q *Queue) wakePageWaitersLocked() {
	for _, c := range q.page.waiters {
		close(c)
	}
	q.page.waiters = nil
}

// ensurePageLog creates the page log of a non-durable queue before its
// first paged message, with no core lock held (q.pageMu orders concurrent
// publishers; it is only ever taken without q.mu).
func (q *Queue) ensurePageLog() error {
	q.pageMu.Lock()
	defer q.pageMu.Unlock()
	q.mu.Lock()
	have := q.pageLog != "" || q.deleted
	q.mu.Unlock()
	if have {
		return nil
	}
	r := q.vh.r
	name := r.store.LogPrefix() + pageLogName(q.vh.name, q.name, r.pageLogs.Add(1)) // prefix: per node in a cluster
	if err := r.store.CreateLog(name); err != nil {
		return err
	}
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		_ = r.store.DeleteLog(name)
		return nil
	}
	q.pageLog = name
	q.log.floor = 1 // a new stream's first sequence
	q.mu.Unlock()
	return nil
}
