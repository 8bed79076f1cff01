package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// In a cluster every node holds the whole model: vhosts, users,
// permissions, exchanges, queues and bindings. A change is written to
// the shared buckets first (KV compare-and-set: a new name with Create,
// so two nodes declaring one name concurrently cannot both win), applied
// by the writing node itself before it answers, and applied on every
// other node by one watcher goroutine per node that follows both buckets
// in revision order (docs/cluster.md "Metadata").
//
// The writer and the watcher apply under the same lock (VHost.topoMu for
// topology, Router.idWriteMu for users, permissions and vhosts), and
// each notes the revision it applied per key: the watcher skips a change
// the writer already applied, and the writer's own change cannot be
// applied by the watcher before the writer is done with it.

// metaState is a cluster node's metadata follower; nil on a single node.
type metaState struct {
	r *Router

	mu      sync.Mutex
	revs    map[string]uint64 // bucket letter + key → newest revision applied here
	applied [2]uint64         // per bucket: the last revision the watcher has processed
	// startRevs are the buckets' last revisions when recover began:
	// Open returns once the watcher has applied them (waitStart).
	startRevs [2]uint64
	advance   chan struct{} // closed (and replaced) when applied moves
	// purged (while the node starts) are the queues' purged ranges by
	// key, for loadHomeQueues; starting is true until Open has them.
	purged   map[string][]byte
	starting atomic.Bool
	// leftover (while the node starts; the watcher's) are this node's
	// transient queues of its previous run, whose bindings the replay
	// deletes.
	leftover map[[2]string]bool

	// ws are the watches; only the watcher goroutine touches them.
	ws [2]*jsstore.KVWatcher
	// rewatch asks the watcher to watch again: a watch's consumer lives
	// on one node and stalls (until nats.go notices missed heartbeats,
	// some 10 s) when that node goes away.
	rewatch    chan struct{}
	quit, done chan struct{}
	started    bool
	// applyDelay (tests only) slows every apply down, to show that a
	// lookup does not depend on how fast the watcher is.
	applyDelay atomic.Int64
}

// barrierWait bounds how long a lookup miss waits for the watcher;
// after stallAfter without reaching its target the watch is made again.
// freshFor is how long a barrier's result counts as fresh for an
// unroutable publish (unroutable-by-design traffic pays one barrier per
// vhost per freshFor, not one per message).
const (
	barrierWait = 2 * time.Second
	stallAfter  = 300 * time.Millisecond
	freshFor    = 50 * time.Millisecond
	// stallCheck: how often the watcher compares itself with the
	// buckets when nobody asks (deletions wait for no barrier).
	stallCheck = 2 * time.Second
)

func newMetaState(r *Router) *metaState {
	return &metaState{r: r, revs: map[string]uint64{}, advance: make(chan struct{}), rewatch: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

func revKey(b jsstore.Bucket, key string) string {
	if b == jsstore.Live {
		return "L" + key
	}
	return "D" + key
}

// note records that the change of key at rev is applied here.
func (m *metaState) note(b jsstore.Bucket, key string, rev uint64) {
	if m == nil || rev == 0 {
		return
	}
	k := revKey(b, key)
	m.mu.Lock()
	if rev > m.revs[k] {
		m.revs[k] = rev
	}
	m.mu.Unlock()
}

// revOf is the newest revision of key applied here (0: none).
func (m *metaState) revOf(b jsstore.Bucket, key string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revs[revKey(b, key)]
}

// seen reports whether a change of key at rev (or a newer one) is
// already applied here.
func (m *metaState) seen(b jsstore.Bucket, key string, rev uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revs[revKey(b, key)] >= rev
}

func (m *metaState) setApplied(b jsstore.Bucket, rev uint64) {
	m.mu.Lock()
	if rev > m.applied[b] {
		m.applied[b] = rev
		close(m.advance)
		m.advance = make(chan struct{})
	}
	m.mu.Unlock()
}

// caughtUp waits (at most until deadline) until the watcher has
// processed revision want of bucket b.
func (m *metaState) caughtUp(b jsstore.Bucket, want uint64, deadline time.Time) bool {
	for {
		m.mu.Lock()
		done, ch := m.applied[b] >= want, m.advance
		m.mu.Unlock()
		if done {
			return true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-m.quit:
		}
		t.Stop()
	}
}

// sync is the barrier: it reads both buckets' last revisions and waits
// (bounded) until the watcher has applied them, so that everything
// committed on any node before the call is in this node's model.
func (m *metaState) sync() {
	start := time.Now()
	deadline := start.Add(barrierWait)
	for _, b := range []jsstore.Bucket{jsstore.Durable, jsstore.Live} {
		last, err := m.r.store.KVLastRev(b)
		if err != nil {
			m.r.log.Debug("metadata barrier: last revision unknown", "err", err)
			continue
		}
		if m.caughtUp(b, last, start.Add(stallAfter)) {
			continue
		}
		m.nudge()
		if !m.caughtUp(b, last, deadline) {
			m.r.log.Warn("metadata barrier: the watcher is behind", "bucket", b, "want", last)
		}
	}
}

// nudge asks the watcher to watch again.
func (m *metaState) nudge() {
	select {
	case m.rewatch <- struct{}{}:
	default:
	}
}

// barrier is called on a lookup miss: in a cluster it waits for the
// watcher to apply everything committed so far and reports true, and
// the caller looks again. On a single node it reports false.
func (r *Router) barrier() bool {
	if r.meta == nil {
		return false
	}
	r.meta.sync()
	return true
}

// barrierCached is barrier for an unroutable publish: skipped (false)
// when vh had one within freshFor.
func (r *Router) barrierCached(vh *VHost) bool {
	if r.meta == nil || time.Now().UnixNano() < vh.fresh.Load() {
		return false
	}
	r.meta.sync()
	vh.fresh.Store(time.Now().Add(freshFor).UnixNano())
	return true
}

// claimed is the record that won a name another node claimed first.
type claimed struct {
	b jsstore.Bucket
	e jsstore.KVEntry
}

// claim creates key (a new queue's or exchange's record) in bucket b.
// On a single node it simply stores it (the vhost's topoMu already
// makes the name this writer's). In a cluster the name may be taken by
// another node meanwhile, in b or, for the other durability, in the
// other bucket: then won is false and winner is the record that stands.
// When both buckets got a record at once, the one that finds the other
// withdraws its own; if both find each other, both withdraw (and their
// clients get the mismatch error, which a retry resolves).
func (r *Router) claim(b jsstore.Bucket, key string, rec any) (won bool, winner claimed, err error) {
	if r.meta == nil {
		return true, claimed{}, r.putJSON(key, rec)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, claimed{}, errorf(KindInternal, "encode %s: %v", key, err)
	}
	other := jsstore.Live
	if b == jsstore.Live {
		other = jsstore.Durable
	}
	for range 3 {
		rev, err := r.store.KVCreate(b, key, data)
		if errors.Is(err, jsstore.ErrExists) {
			if e, ok := r.readWinner(b, key); ok {
				return false, claimed{b, e}, nil
			}
			continue // deleted meanwhile: claim again
		}
		if err != nil {
			return false, claimed{}, metaWriteFailed(key, err)
		}
		if e, err := r.store.KVGet(other, key); err == nil {
			if err := r.store.KVDelete(b, key); err != nil {
				r.log.Error("withdraw a record", "key", key, "err", err)
			}
			return false, claimed{other, e}, nil
		}
		r.meta.note(b, key, rev)
		return true, claimed{}, nil
	}
	return false, claimed{}, errorf(KindInternal, "'%s' is being declared and deleted concurrently on other nodes; retry", key)
}

// readWinner reads the record that made a create fail. A read may reach
// a replica that has not got it yet, so a miss is retried briefly.
func (r *Router) readWinner(b jsstore.Bucket, key string) (jsstore.KVEntry, bool) {
	for range 20 {
		e, err := r.store.KVGet(b, key)
		if err == nil {
			return e, true
		}
		if !errors.Is(err, jsstore.ErrNoKey) {
			r.log.Warn("read a claimed record", "key", key, "err", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return jsstore.KVEntry{}, false
}

// metaKey is a metadata key split into its parts: kind ('v', 'u', 'p',
// 'x', 'q', 'b', 'd', 'r') and its unescaped name tokens.
type metaKey struct {
	kind  byte
	parts []string
}

// parseMetaKey splits and unescapes a metadata key (persist.go,
// identity.go, params.go). Binding keys end in a hash, kept as it is.
func parseMetaKey(key string) (metaKey, error) {
	toks := strings.Split(key, ".")
	if len(toks) < 2 || len(toks[0]) != 1 {
		return metaKey{}, fmt.Errorf("metadata key %q: no kind", key)
	}
	k := metaKey{kind: toks[0][0]}
	want := map[byte]int{'v': 1, 'u': 1, 'p': 2, 'x': 2, 'q': 2, 'b': 2, 'd': 2, 'r': 3}[k.kind]
	if want == 0 || len(toks)-1 != want {
		return metaKey{}, fmt.Errorf("metadata key %q: want %d name(s) after kind %q", key, want, toks[0])
	}
	for i, t := range toks[1:] {
		if k.kind == 'b' && i == 1 {
			k.parts = append(k.parts, t)
			continue
		}
		s, err := unescapeToken(t)
		if err != nil {
			return metaKey{}, fmt.Errorf("metadata key %q: %w", key, err)
		}
		k.parts = append(k.parts, s)
	}
	return k, nil
}

// startMetaWatch starts the watcher (from the buckets' first revision)
// and waits for it to catch up with what recover began from. It returns
// the queues' purged ranges (recover's, with what the replay brought)
// and whether the model is complete. On a single node it returns purged
// as it is: the local store's listings are complete.
func (r *Router) startMetaWatch(purged map[string][]byte) (map[string][]byte, bool) {
	m := r.meta
	if m == nil {
		return purged, true
	}
	m.mu.Lock()
	m.purged = purged
	m.mu.Unlock()
	m.starting.Store(true)
	m.started = true
	go m.loop()
	complete := m.waitStart()
	m.starting.Store(false)
	m.mu.Lock()
	purged, m.purged = m.purged, nil
	m.mu.Unlock()
	return purged, complete
}

// waitStart waits (at most startRevWait) until the watcher has applied
// every change committed before this node began to recover, so that a
// node that says it is ready knows everything declared while it was
// down, whatever its listings read. It reports whether it got there.
func (m *metaState) waitStart() bool {
	deadline := time.Now().Add(startRevWait)
	complete := true
	for b, want := range m.startRevs {
		if !m.caughtUp(jsstore.Bucket(b), want, deadline) {
			m.r.log.Warn("metadata watcher not caught up at start; serving anyway", "bucket", b, "want", want, "applied", m.appliedRev(jsstore.Bucket(b)))
			complete = false
		}
	}
	return complete
}

// takePurged keeps a queue's purged ranges that the replay brings while
// the node starts (loadHomeQueues reads them); later ones are the
// queue's home's own.
func (m *metaState) takePurged(b jsstore.Bucket, e jsstore.KVEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := revKey(b, e.Key)
	if m.purged == nil || m.revs[k] >= e.Rev {
		return
	}
	m.revs[k] = e.Rev
	if e.Deleted {
		delete(m.purged, e.Key)
	} else {
		m.purged[e.Key] = e.Value
	}
}

func (m *metaState) appliedRev(b jsstore.Bucket) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied[b]
}

func (r *Router) stopMetaWatch() {
	if m := r.meta; m != nil && m.started {
		m.started = false
		close(m.quit)
		<-m.done
	}
}

// loop is the watcher: it applies both buckets' changes until stopped,
// watching again from the last applied revision when a watch ends.
func (m *metaState) loop() {
	defer close(m.done)
	defer func() {
		for _, w := range m.ws {
			if w != nil {
				w.Stop()
			}
		}
	}()
	tick := time.NewTicker(stallCheck)
	defer tick.Stop()
	var lastTick [2]uint64
	for {
		for b, w := range m.ws {
			if w != nil {
				continue
			}
			m.mu.Lock()
			from := m.applied[b]
			m.mu.Unlock()
			w, err := m.r.store.KVWatch(jsstore.Bucket(b), from)
			if err != nil {
				m.r.log.Warn("metadata watch", "bucket", b, "err", err)
				select {
				case <-m.quit:
					return
				case <-time.After(time.Second):
				}
				continue
			}
			m.ws[b] = w
		}
		if m.ws[0] == nil || m.ws[1] == nil {
			continue
		}
		select {
		case <-m.quit:
			return
		case e, ok := <-m.ws[0].Updates():
			m.take(jsstore.Durable, e, ok)
		case e, ok := <-m.ws[1].Updates():
			m.take(jsstore.Live, e, ok)
		case <-m.rewatch:
			m.restartWatches()
		case <-tick.C:
			// Behind the bucket and no progress since the last tick:
			// the watch stalled.
			m.mu.Lock()
			applied := m.applied
			m.mu.Unlock()
			for b := range m.ws {
				if applied[b] == lastTick[b] {
					if last, err := m.r.store.KVLastRev(jsstore.Bucket(b)); err == nil && last > applied[b] {
						m.restartWatches()
						break
					}
				}
			}
			lastTick = applied
		}
	}
}

func (m *metaState) restartWatches() {
	for b, w := range m.ws {
		if w != nil {
			w.Stop()
			m.ws[b] = nil
		}
	}
}

func (m *metaState) take(b jsstore.Bucket, e jsstore.KVEntry, ok bool) {
	if !ok {
		m.ws[b].Stop() // ends its context, which nats.go waits on
		m.ws[b] = nil
		return
	}
	if d := m.applyDelay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	m.r.applyEntry(b, e)
	m.setApplied(b, e.Rev)
}

// catchUpDurable applies the durable bucket's changes up to its last
// revision, from the watcher goroutine: a transient binding (or queue
// of a new vhost) may refer to a durable entity committed before it in
// the other bucket.
func (m *metaState) catchUpDurable() {
	last, err := m.r.store.KVLastRev(jsstore.Durable)
	if err != nil {
		return
	}
	deadline := time.After(barrierWait)
	for {
		m.mu.Lock()
		done := m.applied[jsstore.Durable] >= last
		m.mu.Unlock()
		if done || m.ws[0] == nil {
			return
		}
		select {
		case e, ok := <-m.ws[0].Updates():
			m.take(jsstore.Durable, e, ok)
		case <-deadline:
			return
		case <-m.quit:
			return
		}
	}
}

// applyEntry applies one change of a bucket to this node's model.
func (r *Router) applyEntry(b jsstore.Bucket, e jsstore.KVEntry) {
	k, err := parseMetaKey(e.Key)
	if err != nil {
		r.log.Warn("skipping a metadata change", "err", err)
		return
	}
	switch k.kind {
	case 'v', 'u', 'p':
		r.applyIdentity(b, k, e)
	case 'x', 'q', 'b':
		r.applyTopology(b, k, e)
	case 'r':
		r.applyParameter(b, k, e)
	case 'd':
		// Purged runs are read by the queue's home at its start.
		r.meta.takePurged(b, e)
	}
}

// WatchParameters registers fn, called (from the metadata watcher, with
// no core lock held) for every runtime parameter another node of the
// cluster stores or deletes. Parameters themselves are read from the
// bucket whenever asked; fn is for the component that acts on them (a
// shovel that moved or went away stops here).
func (r *Router) WatchParameters(fn func(p Parameter, deleted bool)) {
	r.paramWatch.Store(&fn)
}

func (r *Router) applyParameter(b jsstore.Bucket, k metaKey, e jsstore.KVEntry) {
	m := r.meta
	if m.seen(b, e.Key, e.Rev) {
		return
	}
	m.note(b, e.Key, e.Rev)
	fn := r.paramWatch.Load()
	if fn == nil {
		return
	}
	p := Parameter{Component: k.parts[0], VHost: k.parts[1], Name: k.parts[2]}
	if !e.Deleted && json.Unmarshal(e.Value, &p) != nil {
		r.log.Warn("skipping an unreadable parameter change", "key", e.Key)
		return
	}
	(*fn)(p, e.Deleted)
}

func (r *Router) vhostIfAny(name string) *VHost {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.vhosts[name]
}

// applyTopology applies an exchange, queue or binding change.
func (r *Router) applyTopology(b jsstore.Bucket, k metaKey, e jsstore.KVEntry) {
	vh := r.vhostIfAny(k.parts[0])
	if vh == nil && !e.Deleted && b == jsstore.Live {
		r.meta.catchUpDurable()
		vh = r.vhostIfAny(k.parts[0])
	}
	if vh == nil {
		return
	}
	if k.kind == 'b' && !e.Deleted && b == jsstore.Live {
		var rec bindingRecord
		if json.Unmarshal(e.Value, &rec) == nil && !vh.bindingEndsKnown(rec) {
			r.meta.catchUpDurable()
		}
	}
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	if _, err := vh.applyTopologyLocked(b, k, e); err != nil {
		r.log.Warn("skipping a metadata change", "key", e.Key, "err", err)
	}
}

func (vh *VHost) bindingEndsKnown(rec bindingRecord) bool {
	vh.mu.RLock()
	defer vh.mu.RUnlock()
	_, src := vh.exchanges[rec.Source]
	dst := false
	if rec.ToExchange {
		_, dst = vh.exchanges[rec.Destination]
	} else {
		_, dst = vh.queues[rec.Destination]
	}
	return src && dst
}

// applyTopologyLocked applies a change under vh.topoMu, unless this node
// applied it (or a newer one) already. It returns the exchange or queue
// the record describes (nil for bindings and deletes).
func (vh *VHost) applyTopologyLocked(b jsstore.Bucket, k metaKey, e jsstore.KVEntry) (any, error) {
	m := vh.r.meta
	if m.seen(b, e.Key, e.Rev) {
		switch k.kind {
		case 'x':
			return vh.exchange(k.parts[1]), nil
		case 'q':
			return vh.queue(k.parts[1]), nil
		}
		return nil, nil
	}
	m.note(b, e.Key, e.Rev)
	if e.Deleted {
		vh.applyDeleteLocked(k, e.Key)
		return nil, nil
	}
	switch k.kind {
	case 'x':
		var rec exchangeRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return nil, err
		}
		if x := vh.exchange(rec.Name); x != nil {
			return x, nil
		}
		x, err := vh.exchangeFromRecord(b, rec)
		if err != nil {
			return nil, err
		}
		vh.mu.Lock()
		vh.exchanges[rec.Name] = x
		vh.mu.Unlock()
		return x, nil
	case 'q':
		var rec queueRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return nil, err
		}
		if q := vh.queue(rec.Name); q != nil {
			return q, nil
		}
		if b == jsstore.Live && rec.Home == vh.r.NodeName() && m.starting.Load() {
			// Only this node writes its queues' records, so one that the
			// start-up replay brings and recover's listing missed is a
			// transient queue of its previous run, as in recover.
			vh.r.log.Info("removing a transient queue of this node's previous run", "vhost", vh.name, "queue", rec.Name)
			vh.r.deleteRecord(b, e.Key)
			if m.leftover == nil {
				m.leftover = map[[2]string]bool{}
			}
			m.leftover[[2]string{vh.name, rec.Name}] = true
			return nil, nil
		}
		q, err := vh.queueFromRecord(b, rec)
		if err != nil {
			return nil, err
		}
		vh.mu.Lock()
		vh.queues[rec.Name] = q
		vh.mu.Unlock()
		vh.r.trackQuorum(q) // a quorum queue's home follows its log's leader
		return q, nil
	case 'b':
		var rec bindingRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return nil, err
		}
		if !rec.ToExchange && m.starting.Load() && m.leftover[[2]string{vh.name, rec.Destination}] {
			vh.r.log.Warn("dropping binding", "reason", fmt.Sprintf("its queue %q was a transient queue of this node's previous run", rec.Destination))
			vh.r.deleteRecord(b, e.Key)
			return nil, nil
		}
		vh.mu.Lock()
		defer vh.mu.Unlock()
		bd, err := vh.bindingFromRecordLocked(rec)
		if err != nil {
			return nil, err
		}
		if bd.src.findBinding(bd) == nil {
			bd.metaKey = e.Key
			bd.src.addBinding(bd)
			vh.bindIdx[e.Key] = bd
		}
	}
	return nil, nil
}

// applyDeleteLocked removes what another node deleted; the records of
// what goes with it (bindings) are that node's to delete, and arrive
// as changes of their own.
func (vh *VHost) applyDeleteLocked(k metaKey, key string) {
	switch k.kind {
	case 'x':
		vh.mu.Lock()
		if x := vh.exchanges[k.parts[1]]; x != nil {
			vh.deleteExchangeLocked(x, nil)
		}
		vh.mu.Unlock()
	case 'q':
		if q := vh.queue(k.parts[1]); q != nil {
			vh.deleteQueueLocked(q, false)
		}
	case 'b':
		vh.mu.Lock()
		if bd := vh.bindIdx[key]; bd != nil {
			vh.unbindLocked(bd, nil)
		}
		vh.mu.Unlock()
	}
}

func (vh *VHost) exchangeFromRecord(b jsstore.Bucket, rec exchangeRecord) (*exchange, error) {
	args, err := decodeArgs(rec.Args)
	if err != nil {
		return nil, fmt.Errorf("exchange %q: arguments: %w", rec.Name, err)
	}
	return newExchange(vh, ExchangeSpec{Name: rec.Name, Type: rec.Type, Durable: b == jsstore.Durable, AutoDelete: rec.AutoDelete, Internal: rec.Internal, Args: args}), nil
}

// queueFromRecord makes the queue a record describes, as a copy when its
// home is another node: no log is created or replayed here (the home
// keeps its messages) and its timers do not run (the home expires it).
func (vh *VHost) queueFromRecord(b jsstore.Bucket, rec queueRecord) (*Queue, error) {
	args, err := decodeArgs(rec.Args)
	if err != nil {
		return nil, fmt.Errorf("queue %q: arguments: %w", rec.Name, err)
	}
	q := newQueue(vh, QueueSpec{Name: rec.Name, Durable: b == jsstore.Durable || rec.Durable, Exclusive: rec.Exclusive, AutoDelete: rec.AutoDelete, Args: args})
	q.logName = rec.Log
	q.setHome(rec.Home)
	if rec.Exclusive {
		// Another node's connection: held by nobody here, so every
		// channel of this node is refused it (405 RESOURCE_LOCKED).
		q.owner = &Conn{vh: vh, info: ConnInfo{Name: rec.Owner}, exclusive: map[*Queue]struct{}{}}
	}
	return q, nil
}

// bindingFromRecordLocked resolves a binding record's ends (vh.mu held).
func (vh *VHost) bindingFromRecordLocked(rec bindingRecord) (*binding, error) {
	src := vh.exchanges[rec.Source]
	if src == nil {
		return nil, fmt.Errorf("binding source exchange %q is gone", rec.Source)
	}
	args, err := decodeArgs(rec.Args)
	if err != nil {
		return nil, fmt.Errorf("binding arguments: %w", err)
	}
	bd := &binding{src: src, key: rec.Key, args: args}
	if rec.ToExchange {
		bd.dstEx = vh.exchanges[rec.Destination]
	} else {
		bd.queue = vh.queues[rec.Destination]
	}
	if bd.dstEx == nil && bd.queue == nil {
		return nil, fmt.Errorf("binding destination %q is gone", rec.Destination)
	}
	return bd, nil
}

// applyIdentity applies a user, permission or vhost change.
func (r *Router) applyIdentity(b jsstore.Bucket, k metaKey, e jsstore.KVEntry) {
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	m := r.meta
	if m.seen(b, e.Key, e.Rev) {
		return
	}
	m.note(b, e.Key, e.Rev)
	var err error
	switch k.kind {
	case 'u':
		if e.Deleted {
			r.forgetUser(k.parts[0])
			return
		}
		var u UserInfo
		if err = json.Unmarshal(e.Value, &u); err == nil {
			r.setUser(&u)
		}
	case 'p':
		if e.Deleted {
			r.id.mu.Lock()
			delete(r.id.perms[k.parts[0]], k.parts[1])
			r.id.gen.Add(1)
			r.id.mu.Unlock()
			return
		}
		var p Permission
		if err = json.Unmarshal(e.Value, &p); err == nil {
			err = r.setPerm(p)
		}
	case 'v':
		if e.Deleted {
			r.forgetVHost(k.parts[0])
			return
		}
		var rec vhostRecord
		if err = json.Unmarshal(e.Value, &rec); err == nil {
			r.setVHost(rec)
		}
	}
	if err != nil {
		r.log.Warn("skipping a metadata change", "key", e.Key, "err", err)
	}
}

// forgetVHost drops a vhost another node deleted: that node deleted its
// exchanges, queues and bindings (their changes came first); the
// connections to it on this node are closed.
func (r *Router) forgetVHost(name string) {
	r.mu.Lock()
	vh := r.vhosts[name]
	delete(r.vhosts, name)
	r.mu.Unlock()
	if vh == nil {
		return
	}
	for _, c := range r.connections() {
		if c.vh == vh {
			c.forceClose("vhost deleted")
		}
	}
	r.id.mu.Lock()
	delete(r.id.perms, name)
	r.id.gen.Add(1)
	r.id.mu.Unlock()
}
