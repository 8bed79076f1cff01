package jsstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// pendingAppend is one Append waiting for its PubAck.
type pendingAppend struct {
	done      func(seq uint64, err error)
	deadline  int64 // unix nanos
	size      int
	taken     bool // a completer owns it (callback running or about to)
	log       string
	writer    int  // index in appender.writers
	nosync    bool // a transient record or a replicated log's: its callback does not wait for an fsync
	transient bool // reserved with ReserveTransient
	// A replicated log's append is published again while the log has
	// no leader (replicated.go), until retryUntil (unix nanos).
	retryUntil int64
	subject    string
	rec        []byte
}

// logLane is which writer connection a log's appends use while some are
// outstanding: one connection per log keeps the log's records in append
// order. A log with nothing outstanding takes the least busy writer, so a
// small append is not queued behind another log's large ones.
type logLane struct {
	writer  int
	pending int
}

// appender owns the async publish path. Invariants (under mu):
//   - ids are issued in increasing order; every id in [low, next) is either
//     in pending or finished;
//   - an entry leaves pending only after its callback returned.
//
// Callbacks run with cbMu held, so they never run concurrently, and the
// order in which entries are taken equals the order of callbacks.
type appender struct {
	nc      *nats.Conn   // receives every PubAck
	writers []*nats.Conn // publish appends; writers[0] is nc
	prefix  string       // "_WRACK.<nuid>."
	sub     *nats.Subscription

	cbMu sync.Mutex

	mu       sync.Mutex
	cond     *sync.Cond // signalled when entries finish or the store closes
	pending  map[uint64]pendingAppend
	next     uint64 // next id to issue
	low      uint64 // lowest id not yet finished
	nbytes   int    // bytes of pending and reserved appends
	tbytes   int    // of which transient ones (ReserveTransient)
	reserved int    // Reserve calls not yet used by an Append or released
	closed   bool
	lanes    map[string]*logLane
	wbytes   []int // outstanding bytes per writer

	group    *groupSyncer   // set with Config.SyncAlways: callbacks wait for an fsync
	inflight sync.WaitGroup // Append calls between registering and publishing, and their failure goroutines
	stop     chan struct{}
	sweeper  sync.WaitGroup
}

func (a *appender) start(nc *nats.Conn, extra []*nats.Conn) error {
	a.nc = nc
	a.writers = append([]*nats.Conn{nc}, extra...)
	a.wbytes = make([]int, len(a.writers))
	a.lanes = map[string]*logLane{}
	a.prefix = "_WRACK." + nuid.Next() + "."
	a.cond = sync.NewCond(&a.mu)
	a.pending = make(map[uint64]pendingAppend, 1024)
	a.next, a.low = 1, 1
	a.stop = make(chan struct{})
	sub, err := nc.Subscribe(a.prefix+"*", a.onAck)
	if err != nil {
		return fmt.Errorf("jsstore: ack subscription: %w", err)
	}
	// Acks are tiny and bounded by maxPendingAppends; never drop them.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	a.sub = sub
	a.sweeper.Add(1)
	go a.sweep()
	return nil
}

// Reservation is room for one record in the store's in-flight budget,
// set aside by Reserve. It is used by exactly one Append or Release.
type Reservation struct {
	s         *Store
	size      int
	transient bool // counted in the transient budget too
}

// Reserve waits until one more record of size bytes fits in the budget of
// outstanding appends, and sets that room aside. It is the only call of
// the append path that blocks, so callers reserve before taking their own
// locks and append (which then never waits) under them. It fails with
// ErrClosed once the store is closed.
func (s *Store) Reserve(size int) (Reservation, error) { return s.reserve(size, false) }

// ReserveTransient is Reserve for a record that nobody waits for (a
// transient message paged out of memory, AppendTransient): its publisher
// is not held by a confirm, so only this budget bounds how many such
// records are between the core and the disk, and it is smaller.
func (s *Store) ReserveTransient(size int) (Reservation, error) { return s.reserve(size, true) }

func (s *Store) reserve(size int, transient bool) (Reservation, error) {
	a := &s.appender
	a.mu.Lock()
	defer a.mu.Unlock()
	for !a.closed && len(a.pending)+a.reserved > 0 &&
		(len(a.pending)+a.reserved >= maxPendingAppends || a.nbytes+size > maxPendingBytes ||
			transient && a.tbytes > 0 && a.tbytes+size > maxTransientBytes) {
		a.cond.Wait()
	}
	if a.closed {
		return Reservation{}, ErrClosed
	}
	a.reserved++
	a.nbytes += size
	if transient {
		a.tbytes += size
	}
	return Reservation{s: s, size: size, transient: transient}, nil
}

// Release gives back a reservation that will not be used.
func (r Reservation) Release() {
	if r.s == nil {
		return
	}
	a := &r.s.appender
	a.mu.Lock()
	a.reserved--
	a.nbytes -= r.size
	if r.transient {
		a.tbytes -= r.size
	}
	a.cond.Broadcast()
	a.mu.Unlock()
}

// Append stores rec at the end of log name, asynchronously, and waits
// for room first (Reserve). done is called exactly once, from a store
// goroutine, with the stream sequence of the record or an error
// (ErrClosed, ErrTimeout, a JetStream error). Callbacks of one log come in
// append order. rec must not be modified before done is called. done must
// not call Append or Flush on the same store, nor wait for a lock whose
// holder may append (it would deadlock: see locksordering.txt).
func (s *Store) Append(name string, rec []byte, done func(seq uint64, err error)) {
	r, err := s.Reserve(len(rec))
	if err != nil {
		go done(0, err)
		return
	}
	r.Append(name, rec, done)
}

// Append is Store.Append into reserved room: it never waits for the
// store (only for the in-process connection's write buffer), so it may be
// called with the caller's locks held. rec should be no larger than the
// reservation.
func (r Reservation) Append(name string, rec []byte, done func(seq uint64, err error)) {
	r.append(name, subjectName(name), false, rec, done)
}

// AppendTransient is Append for a record that need not survive a restart
// (a transient message paged out of memory): it goes to the log's
// transient subject, which a restart purges (PurgeTransient), and its
// callback does not wait for a group-commit fsync.
func (r Reservation) AppendTransient(name string, rec []byte, done func(seq uint64, err error)) {
	r.append(name, transientSubject(name), true, rec, done)
}

func (r Reservation) append(name, subject string, nosync bool, rec []byte, done func(seq uint64, err error)) {
	s := r.s
	if err := checkName(name); err != nil {
		r.Release()
		go done(0, err)
		return
	}
	a := &s.appender
	a.mu.Lock()
	a.reserved--
	if a.closed {
		a.nbytes -= r.size
		if r.transient {
			a.tbytes -= r.size
		}
		a.cond.Broadcast()
		a.mu.Unlock()
		go done(0, ErrClosed)
		return
	}
	id := a.next
	a.next++
	lane := a.lanes[name]
	if lane == nil {
		lane = &logLane{writer: a.leastBusyLocked()}
		a.lanes[name] = lane
	}
	lane.pending++
	a.wbytes[lane.writer] += r.size
	now := time.Now()
	p := pendingAppend{done: done, deadline: now.Add(ackTimeout).UnixNano(), size: r.size, log: name, writer: lane.writer, nosync: nosync, transient: r.transient}
	if s.Replicated(name) {
		// The PubAck of a replicated log means stored on a quorum; the
		// group syncer's fsync of this node's block adds nothing.
		p.nosync = true
		p.retryUntil, p.subject, p.rec = now.Add(leaderWait).UnixNano(), subject, rec
	}
	a.pending[id] = p
	a.inflight.Add(1)
	w := a.writers[lane.writer]
	a.mu.Unlock()

	var buf [64]byte
	reply := string(strconv.AppendUint(append(buf[:0], a.prefix...), id, 10))
	err := w.PublishRequest(subject, reply, rec)
	if err == nil {
		a.inflight.Done()
		return
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
		err = ErrClosed
	}
	// Rare path: complete from a short-lived store goroutine, never from the caller's.
	a.mu.Lock()
	p, ok := a.pending[id]
	if ok && !p.taken {
		p.taken = true
		a.pending[id] = p
	} else {
		ok = false
	}
	a.mu.Unlock()
	if !ok {
		a.inflight.Done()
		return
	}
	go func() {
		defer a.inflight.Done()
		a.cbMu.Lock()
		p.done(0, err)
		a.cbMu.Unlock()
		a.finish(id)
	}()
}

// Flush waits until every Append issued before the call has had its callback
// run (and return).
func (s *Store) Flush() error { return s.FlushWithin(0) }

// FlushWithin is Flush that gives up after d (0: no limit) with ErrTimeout.
func (s *Store) FlushWithin(d time.Duration) error {
	a := &s.appender
	var expired atomic.Bool
	if d > 0 {
		t := time.AfterFunc(d, func() {
			expired.Store(true)
			a.mu.Lock()
			a.cond.Broadcast()
			a.mu.Unlock()
		})
		defer t.Stop()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	target := a.next
	for a.low < target {
		if expired.Load() {
			return ErrTimeout
		}
		a.cond.Wait()
	}
	if a.closed {
		return ErrClosed
	}
	return nil
}

// leastBusyLocked is the writer with the fewest outstanding bytes.
func (a *appender) leastBusyLocked() int {
	best := 0
	for i, n := range a.wbytes {
		if n < a.wbytes[best] {
			best = i
		}
	}
	return best
}

// finish removes a completed entry and advances low.
func (a *appender) finish(id uint64) {
	a.mu.Lock()
	a.finishLocked(id)
	a.mu.Unlock()
}

func (a *appender) finishLocked(id uint64) {
	p, ok := a.pending[id]
	if !ok {
		return
	}
	delete(a.pending, id)
	a.nbytes -= p.size
	if p.transient {
		a.tbytes -= p.size
	}
	a.wbytes[p.writer] -= p.size
	if lane := a.lanes[p.log]; lane != nil {
		if lane.pending--; lane.pending == 0 {
			delete(a.lanes, p.log)
		}
	}
	if id == a.low {
		for a.low < a.next {
			if _, ok := a.pending[a.low]; ok {
				break
			}
			a.low++
		}
	}
	a.cond.Broadcast()
}

type taken struct {
	id uint64
	p  pendingAppend
}

// takeExpiredLocked marks every entry whose deadline passed, in id order.
func (a *appender) takeExpiredLocked(now int64, out []taken) []taken {
	for id := a.low; id < a.next; id++ {
		p, ok := a.pending[id]
		if !ok || p.taken {
			continue
		}
		if p.deadline > now {
			break
		}
		p.taken = true
		a.pending[id] = p
		out = append(out, taken{id, p})
	}
	return out
}

// onAck runs on the subscription's goroutine (owned by nats.go).
func (a *appender) onAck(m *nats.Msg) {
	if len(m.Subject) <= len(a.prefix) {
		return
	}
	id, err := strconv.ParseUint(m.Subject[len(a.prefix):], 10, 64)
	if err != nil {
		return
	}
	seq, aerr := parsePubAck(m)
	if errors.Is(aerr, errNoLeader) && a.retryLater(id, m.Subject) {
		return
	}

	a.cbMu.Lock()
	defer a.cbMu.Unlock()
	var expired []taken
	a.mu.Lock()
	if p, ok := a.pending[a.low]; ok && !p.taken && p.deadline <= time.Now().UnixNano() {
		expired = a.takeExpiredLocked(time.Now().UnixNano(), nil)
	}
	p, ok := a.pending[id]
	if ok && !p.taken {
		p.taken = true
		a.pending[id] = p
	} else {
		ok = false
	}
	a.mu.Unlock()
	if a.group != nil {
		// Through the syncer, in order: the callback waits for an fsync.
		// A transient record's callback does not: nothing waits for it
		// to be durable.
		items := make([]syncItem, 0, len(expired)+1)
		for _, t := range expired {
			items = append(items, syncItem{id: t.id, p: t.p, err: ErrTimeout})
		}
		if ok && !p.nosync {
			items = append(items, syncItem{id: id, p: p, seq: seq, err: aerr})
			ok = false
		}
		if len(items) > 0 {
			a.group.push(items...)
		}
		if ok {
			p.done(seq, aerr)
			a.finish(id)
		}
		return
	}
	for _, t := range expired {
		t.p.done(0, ErrTimeout)
		a.finish(t.id)
	}
	if ok {
		p.done(seq, aerr)
		a.finish(id)
	}
}

// retryLater publishes a replicated log's append again after
// leaderRetry when the log had no leader to take it (no responders, or
// JetStream's "temporarily unavailable"): nobody stored the record, so a
// second publish cannot duplicate it. It reports false when the entry is
// not a replicated one or its retry time is over (the caller then
// completes it with the error). A timeout is never retried: the record
// may have been stored.
func (a *appender) retryLater(id uint64, reply string) bool {
	a.mu.Lock()
	p, ok := a.pending[id]
	retry := ok && !p.taken && p.rec != nil && time.Now().Add(leaderRetry).UnixNano() < p.retryUntil && !a.closed
	a.mu.Unlock()
	if !retry {
		return false
	}
	time.AfterFunc(leaderRetry, func() {
		a.mu.Lock()
		p, ok := a.pending[id]
		ok = ok && !p.taken && !a.closed
		var w *nats.Conn
		if ok {
			w = a.writers[p.writer]
		}
		a.mu.Unlock()
		if ok {
			// An error (the connection closed) leaves the entry to close or the sweep.
			_ = w.PublishRequest(p.subject, reply, p.rec)
		}
	})
	return true
}

// sweep fails appends whose ack did not come within the timeout. It is the
// store's own goroutine; close stops it.
func (a *appender) sweep() {
	defer a.sweeper.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var buf []taken
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.cbMu.Lock()
		a.mu.Lock()
		buf = a.takeExpiredLocked(time.Now().UnixNano(), buf[:0])
		a.mu.Unlock()
		for _, e := range buf {
			e.p.done(0, ErrTimeout)
			a.finish(e.id)
		}
		a.cbMu.Unlock()
	}
}

// close stops new appends, waits up to wait for outstanding ones, fails the
// rest with ErrClosed and stops the store's goroutines (except the nats.go
// subscription goroutine, which ends with the connection).
func (a *appender) close(wait time.Duration) {
	a.mu.Lock()
	a.closed = true
	a.cond.Broadcast()
	a.mu.Unlock()
	a.inflight.Wait() // no Append is between registering and publishing any more

	// Wait for acks of what is already published.
	deadline := time.Now().Add(wait)
	timer := time.AfterFunc(wait, func() {
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	})
	a.mu.Lock()
	for len(a.pending) > 0 && time.Now().Before(deadline) {
		a.cond.Wait()
	}
	a.mu.Unlock()
	timer.Stop()

	close(a.stop)
	a.sweeper.Wait()
	if a.sub != nil {
		_ = a.sub.Unsubscribe()
	}
	if a.group != nil {
		a.group.stop() // runs the callbacks it already holds
	}

	// Fail whatever is left.
	a.cbMu.Lock()
	a.mu.Lock()
	var rest []taken
	for id := a.low; id < a.next; id++ {
		if p, ok := a.pending[id]; ok && !p.taken {
			p.taken = true
			a.pending[id] = p
			rest = append(rest, taken{id, p})
		}
	}
	a.mu.Unlock()
	for _, e := range rest {
		e.p.done(0, ErrClosed)
		a.finish(e.id)
	}
	a.cbMu.Unlock()
}

// errNoLeader is an append nobody stored: no stream listens on the
// subject (503 no responders), which for a replicated log also means
// "between two leaders". It is ErrNotFound for callers.
var errNoLeader = fmt.Errorf("%w (no stream leader took the record)", ErrNotFound)

var (
	seqKey   = []byte(`"seq":`)
	errorKey = []byte(`"error"`)
)

// parsePubAck extracts the stream sequence from a JetStream PubAck
// ({"stream":"WL_x","seq":12}) or the error it carries.
func parsePubAck(m *nats.Msg) (uint64, error) {
	d := m.Data
	if len(d) == 0 {
		// A status-only message, e.g. 503 no responders: no stream for
		// that subject, or a replicated log between two leaders.
		if st := m.Header.Get("Status"); st == "503" {
			return 0, errNoLeader
		} else if st != "" {
			return 0, fmt.Errorf("jsstore: append failed: status %s %s", st, m.Header.Get("Description"))
		}
		return 0, errors.New("jsstore: empty ack")
	}
	if bytes.Contains(d, errorKey) {
		var r struct {
			Error *struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(d, &r); err == nil && r.Error != nil {
			if r.Error.Code == 503 {
				return 0, fmt.Errorf("%w: %s (code %d/%d)", errNoLeader, r.Error.Description, r.Error.Code, r.Error.ErrCode)
			}
			return 0, fmt.Errorf("jsstore: append failed: %s (code %d/%d)", r.Error.Description, r.Error.Code, r.Error.ErrCode)
		}
		return 0, fmt.Errorf("jsstore: bad ack %q", d)
	}
	i := bytes.Index(d, seqKey)
	if i < 0 {
		return 0, fmt.Errorf("jsstore: bad ack %q", d)
	}
	var seq uint64
	n := 0
	for j := i + len(seqKey); j < len(d) && d[j] >= '0' && d[j] <= '9'; j++ {
		seq = seq*10 + uint64(d[j]-'0')
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("jsstore: bad ack %q", d)
	}
	return seq, nil
}
