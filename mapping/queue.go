package mapping

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// QueueSpec describes a queue as queue.declare does.
type QueueSpec struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       Table
	// Node, in a cluster, is the node to home a new queue on (the
	// management API's "node"), whatever the locator says; "" lets the
	// placement rules choose (placement.go). Not part of the queue's
	// definition: a redeclare ignores it, as does a single node.
	Node string
}

// Queue holds messages in order and hands them to its consumers in
// round-robin order, within each consumer's and channel's prefetch.
type Queue struct {
	vh      *VHost
	name    string
	spec    QueueSpec
	policy  queuePolicy
	owner   *Conn     // set for exclusive queues
	logName string    // store log for persistent messages; "" when not durable
	home    queueHome // the node that dispatches it (home.go)
	// heldAtHome: the home's last answer to a forward said q holds its
	// publishers (flow.go); only used while q is homed elsewhere.
	heldAtHome atomic.Bool

	pageMu     sync.Mutex    // orders pageLog's creation and purged's writers; never held with mu
	pagingHint atomic.Bool   // new messages are likely paged (pager.go)
	purged     []purgedRange // guarded by pageMu (purged.go)

	bindings []*binding // guarded by vh.mu

	mu              sync.Mutex
	ready           readyQueue
	nextSeq         uint64
	consumers       []*Consumer
	rr              int
	exclusiveUse    bool
	mixedPriorities bool // some consumer has an x-priority other than 0
	deleted         bool
	unacked         int
	log             logState
	counters        queueCounters
	dead            []deadLetter // dead letters to publish once mu is released
	ttlTimer        *time.Timer
	ttlAt           int64
	idleTimer       *time.Timer // x-expires
	late            lateSettled // written to the janitor by store completions
	lane            storeLane   // store appends in queue order, made after mu is released
	page            pageState   // ready messages not in memory (pager.go)
	pageLog         string      // log of a non-durable queue's paged messages; "" until needed
}

// qmsg is one message's place in one queue. The Message itself is shared by
// every queue it was routed to and never changes after publish.
type qmsg struct {
	msg         *Message
	seq         uint64        // position in the queue, for requeue in order
	storeSeq    atomic.Uint64 // sequence in the queue's log; 0 until stored
	store       atomic.Uint32 // storeWritten | storeSettled
	expires     int64         // unix ns; 0 = never
	prio        uint8
	deliveries  int  // times delivered with ack required, for x-delivery-limit
	persist     bool // its record survives a restart
	logged      bool // it has a record in the queue's log, removed when it is settled
	redelivered bool
}

// Consumer is one subscription of a channel to a queue.
type Consumer struct {
	q         *Queue
	ch        *Channel
	tag       string
	noAck     bool
	exclusive bool
	prefetch  int
	priority  int64           // x-priority: higher-priority consumers are served first
	unacked   int             // guarded by q.mu
	remote    *remoteConsumer // served by the queue's home on another node (linkconsume.go); guarded by ch.mu
}

// Tag is the consumer tag.
func (c *Consumer) Tag() string { return c.tag }

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

func newQueue(vh *VHost, s QueueSpec) *Queue {
	q := &Queue{vh: vh, name: s.Name, spec: s, policy: parsePolicy(s.Args)}
	q.ready.setLevels(q.policy.maxPriority)
	q.ready.global = &vh.r.windowBytes
	return q
}

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

// dispatchLocked hands ready messages to consumers that can take them,
// after dropping messages whose TTL ran out.
func (q *Queue) dispatchLocked() {
	q.expireLocked()
	q.deliverLocked()
}

// deliverLocked is dispatch without the TTL check first: a new message with
// a TTL of 0 still goes to a consumer that can take it at once, as in
// RabbitMQ.
func (q *Queue) deliverLocked() {
	defer q.fillLocked()
	for len(q.consumers) > 0 {
		if q.ready.len() == 0 {
			// Messages moved into the window meet the TTL check they
			// would have met at the head of an unpaged queue.
			q.fillLocked()
			if q.expireLocked(); q.ready.len() == 0 {
				return // a read of paged messages dispatches when it lands
			}
		}
		c := q.pickConsumerLocked()
		if c == nil {
			return
		}
		m := q.ready.pop()
		if !c.ch.deliverLocked(c, m) {
			q.ready.insert(m)
			return
		}
		q.counters.delivered.Add(1)
		q.vh.r.stats.Delivered.Add(1)
		if m.redelivered {
			q.vh.r.stats.Redelivered.Add(1)
		}
		if c.noAck {
			q.vh.r.stats.DeliveredNoAck.Add(1)
			q.settleLocked(m)
		} else {
			m.deliveries++
			c.unacked++
			q.unacked++
		}
		q.expireLocked()
	}
}

// pickConsumerLocked chooses the next consumer: the single active one for
// x-single-active-consumer queues; otherwise round-robin among the
// consumers of the highest x-priority that can take a message now.
func (q *Queue) pickConsumerLocked() *Consumer {
	n := len(q.consumers)
	if q.policy.singleActive {
		if c := q.consumers[0]; c.canTake() {
			return c
		}
		return nil
	}
	var best *Consumer
	bestAt := 0
	for i := 0; i < n; i++ {
		at := (q.rr + i) % n
		cand := q.consumers[at]
		if (best == nil || cand.priority > best.priority) && cand.canTake() {
			best, bestAt = cand, at
			if !q.mixedPriorities {
				break
			}
		}
	}
	if best != nil {
		q.rr = (bestAt + 1) % n
	}
	return best
}

// expireLocked drops (and dead-letters) messages whose TTL ran out at the
// head of the queue, and arms a timer for the next one.
func (q *Queue) expireLocked() {
	if q.ready.expiring == 0 {
		return
	}
	now := time.Now().UnixNano()
	for {
		m := q.ready.popExpired(now)
		if m == nil {
			break
		}
		q.vh.r.stats.Expired.Add(1)
		q.dropLocked(m, "expired")
	}
	next := q.ready.nextExpiry()
	if next == 0 || (q.ttlTimer != nil && q.ttlAt == next) {
		return
	}
	q.ttlAt = next
	d := time.Duration(next - now)
	if q.ttlTimer == nil {
		q.ttlTimer = time.AfterFunc(d, q.kick)
	} else {
		q.ttlTimer.Reset(d)
	}
}

// kick retries dispatch, after capacity was freed somewhere or a TTL
// timer fired.
func (q *Queue) kick() {
	if q.vh.r.closed.Load() {
		return
	}
	q.mu.Lock()
	if !q.deleted {
		q.dispatchLocked()
	}
	q.unlockAndDeadLetter()
}

// enqueue appends m, writing it to the queue's log first when it must
// survive a restart or when it is paged (pager.go). t, when not nil,
// learns when a persistent message's write is done. It returns
// accepted=false when the queue refused the message (x-overflow
// reject-publish), and full when the queue is now past its flow-control
// high water mark (see flow.go).
//
// Room for the store write is reserved before q.mu is taken, so waiting
// for the store happens with no core lock held. Under q.mu the write only
// joins the queue's lane (which keeps the log in queue order); it is made
// after q.mu is released (locksordering.txt). A transient message found
// under q.mu to need paging makes enqueue let go of q.mu, reserve (and
// create a non-durable queue's page log) and try again.
func (q *Queue) enqueue(m *Message, t *storeTracker) (accepted, full bool) {
	if l := q.vh.r.link; l != nil && !q.atHome() {
		l.forward(q, m, t, true) // the home decides (linkpublish.go)
		return true, q.forwardedFull()
	}
	now := m.publishedAt()
	persist := q.durableLog() && (m.Properties.Persistent() || q.policy.persistAll)
	qm := &qmsg{msg: m, persist: persist, prio: m.Properties.Priority, expires: q.policy.expiry(m, now)}
	if q.policy.maxPriority == 0 {
		qm.prio = 0
	}
	var (
		room     jsstore.Reservation
		reserved bool
		rec      []byte
		inMemory bool // paging failed (store closing): keep the message in memory
	)
	reserve := func() bool {
		rec = m.logRecord()
		var err error
		if persist {
			room, err = q.vh.r.store.Reserve(len(rec))
		} else {
			room, err = q.vh.r.store.ReserveTransient(len(rec))
		}
		if err != nil {
			return false
		}
		reserved = true
		return true
	}
	if persist || q.pagingHint.Load() {
		if !reserve() {
			if persist {
				// The store is closing: the message cannot be made durable.
				t.add()
				t.finish(false)
				return true, false
			}
			inMemory = true
		}
	}
	var paged bool
	for {
		q.mu.Lock()
		if q.deleted {
			q.mu.Unlock()
			room.Release()
			return true, false
		}
		if q.policy.overflow != "drop-head" && q.policy.wouldOverflow(q.readyLenLocked(), q.readyBytesLocked(), m) {
			if q.policy.overflow == "reject-publish-dlx" {
				q.deadLetterLocked(qm, "maxlen")
			}
			q.unlockThenDeadLetter(room.Release)
			return false, false
		}
		paged = !inMemory && q.shouldPageLocked(len(m.Body))
		if !paged || reserved && q.logFor() != "" {
			break
		}
		needLog := q.logFor() == ""
		q.mu.Unlock()
		if needLog {
			if err := q.ensurePageLog(); err != nil {
				q.vh.r.log.Error("cannot page a queue's messages; keeping them in memory", "queue", q.name, "vhost", q.vh.name, "err", err)
				inMemory = true
			}
		}
		if !reserved && !inMemory && !reserve() {
			inMemory = true
		}
	}
	if persist || paged {
		qm.logged = true
		if persist {
			t.add()
		}
		q.lane.add(laneItem{room: room, log: q.logFor(), rec: rec, transient: !persist, done: func(seq uint64, err error) {
			q.stored(qm, seq, err)
			if persist {
				t.finish(err == nil)
			}
		}})
		reserved = false // handed to the lane
	}
	q.counters.published.Add(1)
	if paged {
		q.spillLocked(qm)
	} else {
		q.nextSeq++
		qm.seq = q.nextSeq
		q.ready.push(qm)
	}
	q.deliverLocked()
	q.expireLocked()
	for q.policy.overLimit(q.readyLenLocked(), q.readyBytesLocked()) && q.dropOldestLocked() {
	}
	full = q.overHighWaterLocked()
	q.updateHintLocked()
	if qm.logged {
		q.unlockThenDeadLetter(q.lane.write)
	} else if reserved {
		q.unlockThenDeadLetter(room.Release)
	} else {
		q.unlockAndDeadLetter()
	}
	return true, full
}

// storeLane hands a queue's store appends from under Queue.mu to the
// store, in queue order, without Queue.mu held across the write (a 15 MiB
// record takes a while to pass to the store, and every other operation on
// the queue would wait for it). Whoever pushes an append then writes the
// lane out, unless another goroutine is doing so: that one takes it too.
type storeLane struct {
	lockedList[laneItem]
	writing atomic.Bool
}

type laneItem struct {
	room      jsstore.Reservation
	log       string
	rec       []byte
	transient bool // paged transient message: dropped at restart, not fsynced
	done      func(seq uint64, err error)
}

// write makes the pushed appends, oldest first; it runs with no core lock
// held. After it lets go of the lane it looks again, so an append pushed
// while it was finishing is not left behind.
func (l *storeLane) write() {
	for l.writing.CompareAndSwap(false, true) {
		for items := l.take(); len(items) > 0; items = l.take() {
			for _, it := range items {
				if it.transient {
					it.room.AppendTransient(it.log, it.rec, it.done)
				} else {
					it.room.Append(it.log, it.rec, it.done)
				}
			}
		}
		l.writing.Store(false)
		if l.empty() {
			return
		}
	}
}

// qmsg.store bits: the store write finished, the message was settled. The
// two sides set their bit without a common lock; whichever comes second
// hands the record to the janitor.
const (
	storeWritten uint32 = 1 << iota
	storeSettled
	storeFailed // the write failed: a paged message is lost (pager.go)
)

// stored runs on the store's completion goroutine when a log write
// finished. It takes no core lock (the goroutine runs every queue's
// completions, and a queue's lock holder may be appending): a record
// whose message was settled meanwhile goes to the janitor through
// q.late, a leaf lock.
func (q *Queue) stored(qm *qmsg, seq uint64, err error) {
	if err != nil {
		q.vh.r.log.Error("store write failed", "queue", q.name, "vhost", q.vh.name, "err", err)
		qm.store.Or(storeFailed)
		if q.pagingHint.Load() {
			q.vh.r.janitor.mark(q)
		}
		return
	}
	qm.storeSeq.Store(seq)
	if qm.store.Or(storeWritten)&storeSettled != 0 {
		q.late.add(seq)
		q.vh.r.janitor.mark(q)
	} else if q.pagingHint.Load() {
		// A spilled message may now leave memory: the janitor turns
		// written spill messages into paged ones when no publish does.
		q.vh.r.janitor.mark(q)
	}
}

// settleLocked forgets a message that was acked or dropped: its log record
// is deleted by the janitor.
func (q *Queue) settleLocked(m *qmsg) {
	if !m.logged {
		return
	}
	if m.store.Or(storeSettled)&storeWritten != 0 {
		q.log.forget(m.storeSeq.Load())
		q.markDirtyLocked()
	}
}

// lateSettled holds the log records of messages settled before their
// store write finished, until the janitor takes them under q.mu.
type lateSettled = lockedList[uint64]

// lockedList is a list that goroutines add to and one takes whole. Its
// lock is a leaf: nothing is called while it is held.
type lockedList[T any] struct {
	mu    sync.Mutex
	items []T
}

func (l *lockedList[T]) add(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	l.mu.Unlock()
}

func (l *lockedList[T]) take() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	items := l.items
	l.items = nil
	return items
}

func (l *lockedList[T]) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items) == 0
}

// dropLocked removes a message for good, dead-lettering it when the queue
// has a dead-letter exchange.
func (q *Queue) dropLocked(m *qmsg, reason string) {
	q.settleLocked(m)
	q.deadLetterLocked(m, reason)
}

func (q *Queue) markDirtyLocked() {
	if !q.log.dirty {
		q.log.dirty = true
		q.vh.r.janitor.mark(q)
	}
}

// settle finishes deliveries of this queue: acked, requeued or dropped
// (rejected without requeue: dead-lettered).
func (q *Queue) settle(ds []*delivery, requeue, rejected bool) {
	q.mu.Lock()
	gone := q.deleted || !q.atHome() // moved away: the new home has them (homeMoved)
	for _, d := range ds {
		d.c.unacked--
		q.unacked--
		if gone {
			continue
		}
		switch {
		case requeue && q.policy.deliveryLimit > 0 && int64(d.m.deliveries) > q.policy.deliveryLimit:
			q.dropLocked(d.m, "delivery_limit")
		case requeue:
			d.m.redelivered = true
			q.ready.insert(d.m)
		case rejected:
			q.dropLocked(d.m, "rejected")
		default:
			q.counters.acked.Add(1)
			q.vh.r.stats.Acked.Add(1)
			q.settleLocked(d.m)
		}
	}
	if !q.deleted {
		q.dispatchLocked()
	}
	q.unlockAndDeadLetter()
}

// counts returns (ready messages, consumers).
func (q *Queue) counts() (int, int) {
	q.mu.Lock()
	defer q.unlockAndDeadLetter()
	q.expireLocked()
	return q.readyLenLocked(), len(q.consumers)
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
	q.mixedPriorities = slices.ContainsFunc(q.consumers, func(c *Consumer) bool { return c.priority != 0 })
	if len(q.consumers) == 0 {
		q.armIdleLocked()
	}
	return q.spec.AutoDelete && len(q.consumers) == 0 && !q.deleted
}

// armIdleLocked starts the x-expires countdown: an unused queue is
// deleted when it runs out.
func (q *Queue) armIdleLocked() {
	// A copy of another node's queue does not expire: its home decides.
	if q.policy.expires <= 0 || len(q.consumers) > 0 || q.deleted || !q.atHome() {
		return
	}
	if q.idleTimer == nil {
		q.idleTimer = time.AfterFunc(q.policy.expires, q.idleExpired)
	} else {
		q.idleTimer.Reset(q.policy.expires)
	}
}

// touchLocked records use of the queue (declare, get, consume).
func (q *Queue) touchLocked() {
	if q.idleTimer != nil {
		q.idleTimer.Stop()
	}
	q.armIdleLocked()
}

func (q *Queue) idleExpired() {
	if q.vh.r.closed.Load() {
		return
	}
	if !q.vh.r.servesHere(q) {
		return // its home decides (a replicated quorum queue: ownership.go)
	}
	q.mu.Lock()
	unused := len(q.consumers) == 0 && !q.deleted
	q.mu.Unlock()
	if unused {
		q.vh.r.log.Info("deleting unused queue (x-expires)", "queue", q.name, "vhost", q.vh.name)
		q.vh.deleteQueue(q)
	}
}

func (q *Queue) stopTimersLocked() {
	if q.ttlTimer != nil {
		q.ttlTimer.Stop()
	}
	if q.idleTimer != nil {
		q.idleTimer.Stop()
	}
}

// purgeLocked drops every ready message and returns how many there were,
// and the run of paged records dropped with them (Count 0: none), which
// the caller writes down with notePurged after releasing q.mu.
func (q *Queue) purgeLocked() (int, purgedRange) {
	n := q.readyLenLocked()
	for q.ready.len() > 0 {
		q.settleLocked(q.ready.pop())
	}
	return n, q.purgePagedLocked()
}
