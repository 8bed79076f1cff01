package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Metadata keys in the store's KV bucket (see README.md):
//
//	v.<vhost>                       vhost record
//	x.<vhost>.<exchange>            durable exchange
//	q.<vhost>.<queue>               durable queue
//	b.<vhost>.<sha256 of binding>   binding between durable ends
//
// Names are escaped with escapeToken so that any AMQP name is a valid key.
const defaultVHost = "/"

type exchangeRecord struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	Args       []byte `json:"args,omitempty"` // AMQP field-table encoding keeps value types
}

type queueRecord struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Args       []byte `json:"args,omitempty"`
	Log        string `json:"log"`
}

type bindingRecord struct {
	VHost       string `json:"vhost"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ToExchange  bool   `json:"to_exchange,omitempty"`
	Key         string `json:"key"`
	Args        []byte `json:"args,omitempty"`
}

func exchangeKey(vh, name string) string { return "x." + escapeToken(vh) + "." + escapeToken(name) }
func queueKey(vh, name string) string    { return "q." + escapeToken(vh) + "." + escapeToken(name) }

func (r *Router) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errorf(KindInternal, "encode %s: %v", key, err)
	}
	if err := r.store.MetaPut(key, b); err != nil {
		return errorf(KindInternal, "store metadata %s: %v", key, err)
	}
	return nil
}

func encodeArgs(t Table) ([]byte, error) {
	if len(t) == 0 {
		return nil, nil
	}
	return AppendTable(nil, t)
}

func decodeArgs(b []byte) (Table, error) {
	if len(b) == 0 {
		return nil, nil
	}
	t, _, err := ReadTable(b)
	return t, err
}

func (r *Router) putExchange(vh *VHost, e *exchange) error {
	args, err := encodeArgs(e.spec.Args)
	if err != nil {
		return errorf(KindPreconditionFailed, "exchange arguments: %v", err)
	}
	return r.putJSON(exchangeKey(vh.name, e.spec.Name), exchangeRecord{
		VHost: vh.name, Name: e.spec.Name, Type: e.spec.Type,
		AutoDelete: e.spec.AutoDelete, Internal: e.spec.Internal, Args: args,
	})
}

func (r *Router) deleteExchangeRecord(vh *VHost, e *exchange) {
	if err := r.store.MetaDelete(exchangeKey(vh.name, e.spec.Name)); err != nil {
		r.log.Error("delete exchange record", "exchange", e.spec.Name, "err", err)
	}
}

func (r *Router) putQueue(vh *VHost, q *Queue) error {
	args, err := encodeArgs(q.spec.Args)
	if err != nil {
		return errorf(KindPreconditionFailed, "queue arguments: %v", err)
	}
	return r.putJSON(queueKey(vh.name, q.name), queueRecord{
		VHost: vh.name, Name: q.name, AutoDelete: q.spec.AutoDelete, Args: args, Log: q.logName,
	})
}

func (r *Router) deleteQueueRecord(vh *VHost, q *Queue) {
	r.forgetQuorum(q)
	if err := r.store.MetaDelete(queueKey(vh.name, q.name)); err != nil {
		r.log.Error("delete queue record", "queue", q.name, "err", err)
	}
	if err := r.store.DeleteLog(q.logName); err != nil {
		r.log.Error("delete queue log", "queue", q.name, "err", err)
	}
	q.pageMu.Lock()
	if len(q.purged) > 0 {
		q.purged = nil
		if err := r.store.MetaDelete(purgedKey(vh.name, q.name)); err != nil {
			r.log.Error("delete purged ranges", "queue", q.name, "err", err)
		}
	}
	q.pageMu.Unlock()
}

// durableBinding: a binding survives a restart when both of its ends do.
func (r *Router) durableBinding(b *binding) bool {
	if !b.src.spec.Durable {
		return false
	}
	if b.queue != nil {
		return b.queue.durableLog()
	}
	return b.dstEx.spec.Durable
}

func (r *Router) bindingKey(vh *VHost, b *binding, args []byte) string {
	h := sha256.New()
	kind := "q"
	if b.dstEx != nil {
		kind = "e"
	}
	for _, s := range []string{b.src.spec.Name, kind, b.destName(), b.key} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(args)
	return "b." + escapeToken(vh.name) + "." + hex.EncodeToString(h.Sum(nil)[:20])
}

func (r *Router) putBinding(vh *VHost, b *binding) error {
	args, err := encodeArgs(b.args)
	if err != nil {
		return errorf(KindPreconditionFailed, "binding arguments: %v", err)
	}
	return r.putJSON(r.bindingKey(vh, b, args), bindingRecord{
		VHost: vh.name, Source: b.src.spec.Name, Destination: b.destName(),
		ToExchange: b.dstEx != nil, Key: b.key, Args: args,
	})
}

func (r *Router) deleteBindingRecord(vh *VHost, b *binding) {
	args, _ := encodeArgs(b.args)
	if err := r.store.MetaDelete(r.bindingKey(vh, b, args)); err != nil {
		r.log.Error("delete binding record", "err", err)
	}
}

// Message record versions: 2 is version, publish time, exchange, routing
// key, properties (AMQP content-header encoding) and body; 3 adds the
// PublishID (a length byte and the bytes) after the publish time. Only
// messages with a PublishID use 3, so version 2 readers' records stay
// as they were.
const (
	recordV2 = 2
	recordV3 = 3
)

// record is the message's log encoding (see recordV2). It is built once
// per message, however many durable queues store it.
func (m *Message) record() []byte {
	m.recOnce.Do(func() {
		m.rec = m.encodeRecord()
		// Keep one copy of the body: the record's tail. This runs before
		// the message is shared (prepareRecord), so nobody reads Body yet.
		m.Body = m.rec[len(m.rec)-len(m.Body) : len(m.rec) : len(m.rec)]
	})
	return m.rec
}

// logRecord is the record to append for m: the one prepareRecord built,
// or, when the message was shared before anyone knew it would be stored
// (a queue started paging meanwhile), a copy that leaves m alone.
func (m *Message) logRecord() []byte {
	if m.rec != nil {
		return m.rec
	}
	return m.encodeRecord()
}

func (m *Message) encodeRecord() []byte {
	{
		b := make([]byte, 0, 16+len(m.PublishID)+len(m.Exchange)+len(m.RoutingKey)+len(m.Body)+64)
		if id := m.PublishID; id != "" && len(id) <= 255 {
			b = append(b, recordV3)
			b = binary.BigEndian.AppendUint64(b, uint64(m.publishedAt()))
			b = append(b, byte(len(id)))
			b = append(b, id...)
		} else {
			b = append(b, recordV2)
			b = binary.BigEndian.AppendUint64(b, uint64(m.publishedAt()))
		}
		b = append(b, byte(len(m.Exchange)))
		b = append(b, m.Exchange...)
		b = append(b, byte(len(m.RoutingKey)))
		b = append(b, m.RoutingKey...)
		b = append(b, 0, 0, 0, 0)
		at := len(b)
		var err error
		b, err = AppendProperties(b, &m.Properties)
		if err != nil {
			// Properties came from a decoder, so they encode; keep the
			// body rather than lose the message.
			b = b[:at]
		}
		binary.BigEndian.PutUint32(b[at-4:], uint32(len(b)-at))
		return append(b, m.Body...)
	}
}

// prepareRecord builds the store record of a message before any queue or
// consumer can see it, when it will be stored: persistent and bound for a
// durable queue, or bound for a queue that is likely to page it.
func prepareRecord(m *Message, qs []*Queue) {
	persistent := m.Properties.Persistent()
	for _, q := range qs {
		if persistent && q.durableLog() || q.pagingHint.Load() {
			m.record()
			return
		}
	}
}

func decodeRecord(rec []byte) (*Message, error) {
	bad := errors.New("truncated message record")
	if len(rec) < 10 || rec[0] != recordV2 && rec[0] != recordV3 {
		return nil, fmt.Errorf("unknown message record version")
	}
	ts := int64(binary.BigEndian.Uint64(rec[1:]))
	p := 9
	str := func() (string, error) {
		if p >= len(rec) {
			return "", bad
		}
		n := int(rec[p])
		p++
		if p+n > len(rec) {
			return "", bad
		}
		s := string(rec[p : p+n])
		p += n
		return s, nil
	}
	var id string
	if rec[0] == recordV3 {
		var err error
		if id, err = str(); err != nil {
			return nil, err
		}
	}
	ex, err := str()
	if err != nil {
		return nil, err
	}
	rk, err := str()
	if err != nil {
		return nil, err
	}
	if p+4 > len(rec) {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint32(rec[p:]))
	p += 4
	if n > len(rec)-p {
		return nil, bad
	}
	m := &Message{Exchange: ex, RoutingKey: rk, PublishID: id, ts: ts}
	if n > 0 {
		if m.Properties, err = ReadProperties(rec[p : p+n]); err != nil {
			return nil, err
		}
	}
	m.Body = rec[p+n:]
	m.rec = rec
	m.recOnce.Do(func() {})
	return m, nil
}

// recover rebuilds every vhost from the metadata bucket and replays the
// logs of durable queues.
func (r *Router) recover() error {
	if err := r.loadIdentity(); err != nil {
		return err
	}
	xs, err := r.store.MetaList("x.")
	if err != nil {
		return err
	}
	qs, err := r.store.MetaList("q.")
	if err != nil {
		return err
	}
	bs, err := r.store.MetaList("b.")
	if err != nil {
		return err
	}
	ds, err := r.store.MetaList("d.")
	if err != nil {
		return err
	}
	vhost := func(name string) *VHost {
		vh := r.vhosts[name]
		if vh == nil {
			vh = newVHost(r, name)
			r.vhosts[name] = vh
		}
		return vh
	}
	for key, val := range xs {
		var rec exchangeRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			r.log.Error("skipping unreadable exchange record", "key", key, "err", err)
			continue
		}
		args, err := decodeArgs(rec.Args)
		if err != nil {
			r.log.Error("skipping exchange with unreadable arguments", "exchange", rec.Name, "err", err)
			continue
		}
		vh := vhost(rec.VHost)
		vh.exchanges[rec.Name] = newExchange(vh, ExchangeSpec{Name: rec.Name, Type: rec.Type, Durable: true, AutoDelete: rec.AutoDelete, Internal: rec.Internal, Args: args})
	}
	used := map[string]bool{}
	total := 0
	for key, val := range qs {
		var rec queueRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			r.log.Error("skipping unreadable queue record", "key", key, "err", err)
			continue
		}
		args, err := decodeArgs(rec.Args)
		if err != nil {
			r.log.Error("skipping queue with unreadable arguments", "queue", rec.Name, "err", err)
			continue
		}
		vh := vhost(rec.VHost)
		q := newQueue(vh, QueueSpec{Name: rec.Name, Durable: true, AutoDelete: rec.AutoDelete, Args: args})
		q.logName = rec.Log
		if err := r.store.CreateLog(q.logName); err != nil {
			return fmt.Errorf("queue %q: %w", rec.Name, err)
		}
		if r.store.Replicated(q.logName) {
			// A quorum queue's home is its log's leader: the leadership
			// watcher loads it here if that is this node (ownership.go).
			r.trackQuorum(q)
			vh.queues[q.name] = q
			continue
		}
		pk := purgedKey(rec.VHost, rec.Name)
		n, err := r.replay(q, ds[pk])
		delete(ds, pk)
		if err != nil {
			r.log.Error("queue log damaged; serving what could be read", "queue", rec.Name, "err", err)
		}
		total += n
		used[q.logName] = true
		vh.queues[q.name] = q
	}
	for key, val := range bs {
		var rec bindingRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			r.log.Error("skipping unreadable binding record", "key", key, "err", err)
			continue
		}
		vh := vhost(rec.VHost)
		src := vh.exchanges[rec.Source]
		args, err := decodeArgs(rec.Args)
		if src == nil || err != nil {
			r.log.Warn("dropping binding whose source is gone", "source", rec.Source)
			r.store.MetaDelete(key)
			continue
		}
		b := &binding{src: src, key: rec.Key, args: args}
		if rec.ToExchange {
			b.dstEx = vh.exchanges[rec.Destination]
		} else {
			b.queue = vh.queues[rec.Destination]
		}
		if b.dstEx == nil && b.queue == nil {
			r.log.Warn("dropping binding whose destination is gone", "destination", rec.Destination)
			r.store.MetaDelete(key)
			continue
		}
		src.addBinding(b)
	}
	for key := range ds {
		r.store.MetaDelete(key) // purged ranges of a queue that is gone
	}
	if logs, err := r.store.Logs(); err == nil {
		for _, l := range logs {
			if !used[l] {
				r.log.Info("removing log of a deleted queue", "log", l)
				r.store.DeleteLog(l)
			}
		}
	}
	// Start the clocks of the recovered queues: x-expires, and TTLs that
	// ran out while Warren was down (those are dead-lettered now).
	for _, vh := range r.vhosts {
		for _, q := range vh.queues {
			q.mu.Lock()
			q.armIdleLocked()
			q.mu.Unlock()
			q.kick()
		}
	}
	r.log.Info("recovered", "queues", len(qs), "exchanges", len(xs), "bindings", len(bs), "messages", total)
	return nil
}

// replay loads q's log at start. Recovered messages may have been
// delivered before the restart, so they are marked redelivered. Transient
// records (paged transient messages) are purged first: a restart drops
// transient messages, as RabbitMQ does. A pageable queue reads only its
// window; the rest of its log stays paged (pager.go). It returns the
// number of messages the queue holds.
func (r *Router) replay(q *Queue, purged []byte) (int, error) {
	if err := r.store.PurgeTransient(q.logName); err != nil {
		return 0, err
	}
	first, last, count, err := r.store.LogState(q.logName)
	if err != nil {
		return 0, err
	}
	q.log.floor = first
	if first == 0 {
		q.log.floor = last + 1
	}
	if purged != nil {
		count -= min(count, q.loadPurged(purged, first))
	}
	q.page.redeliverBelow = last + 1
	next := q.log.floor
	n := 0
	load := func(seq uint64, rec []byte) {
		// Gaps are records deleted one by one before the restart.
		q.log.forgetRange(next, seq-1)
		if past := q.page.pastPurged(seq); past != seq {
			next = past
			return
		}
		next = seq + 1
		m, err := decodeRecord(rec)
		if err != nil {
			r.log.Error("dropping unreadable message record", "queue", q.name, "seq", seq, "err", err)
			q.log.forget(seq)
			return
		}
		if m.PublishID != "" {
			r.recoveredID(q.vh.name, m)
		}
		qm := q.loadedMsg(m, seq, false)
		q.nextSeq++
		qm.seq = q.nextSeq
		q.ready.push(qm)
		n++
	}
	if !q.pageable() {
		err = r.store.Replay(q.logName, func(seq uint64, rec []byte) error {
			load(seq, rec)
			return nil
		})
	} else {
		err = r.replayWindow(q, count, last, load)
	}
	if q.page.on {
		if n > 0 {
			q.page.bytes = q.ready.bytes / int64(n) * int64(q.page.n)
		}
		n += q.page.n
		r.recoverPagedIDs(q)
	} else {
		// Records deleted one by one at the end of the log are gaps too.
		q.log.forgetRange(next, last)
	}
	if len(q.log.done) > 0 || len(q.log.ranges) > 0 {
		q.log.dirty = true
		r.janitor.mark(q)
	}
	q.updateHintLocked()
	return n, err
}

// replayWindow reads the first window of a pageable queue's log and
// leaves the rest paged.
func (r *Router) replayWindow(q *Queue, count, last uint64, load func(seq uint64, rec []byte)) error {
	from, read := q.log.floor, 0
	c := q.windowLocked() // no consumers yet
	for read < c.n && q.ready.bytes < c.bytes {
		recs, err := r.store.ReadBatch(q.logName, from, min(c.refillBatch()*4, c.n-read), refillBytes)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if q.page.pastPurged(rec.Seq) == rec.Seq {
				read++
			}
			load(rec.Seq, rec.Data)
		}
		from = q.page.pastPurged(recs[len(recs)-1].Seq + 1)
	}
	if uint64(read) < count {
		p := &q.page
		p.on = true
		p.cursor = from
		p.acked = last
		p.n = int(count) - read
	}
	return nil
}

// recoveredIDScan bounds how many paged records a restart reads to find
// the PublishIDs of the last ten minutes.
const recoveredIDScan = 1 << 16

// recoverPagedIDs collects the PublishIDs of paged records published in
// the last ten minutes (the window's were taken as it was read).
func (r *Router) recoverPagedIDs(q *Queue) {
	since := time.Now().Add(-recoveredPublishAge)
	from, scanned := uint64(0), 0
	for scanned < recoveredIDScan {
		var recs []jsstore.Record
		var err error
		if from == 0 {
			recs, err = r.store.ReadSince(q.logName, since, 512, refillBytes)
		} else {
			recs, err = r.store.ReadBatch(q.logName, from, 512, refillBytes)
		}
		if err != nil {
			r.log.Warn("reading publish IDs of paged messages", "queue", q.name, "err", err)
			return
		}
		if len(recs) == 0 {
			return
		}
		for _, rec := range recs {
			scanned++
			if rec.Seq < q.page.cursor || len(rec.Data) == 0 || rec.Data[0] != recordV3 {
				continue
			}
			if m, err := decodeRecord(rec.Data); err == nil {
				r.recoveredID(q.vh.name, m)
			}
		}
		from = recs[len(recs)-1].Seq + 1
	}
	r.log.Warn("publish IDs of older paged messages not recovered", "queue", q.name, "scanned", scanned)
}

// RecoveredPublish is a PublishID found in a durable queue's log at start.
type RecoveredPublish struct {
	VHost     string
	ID        string
	Published time.Time
}

// recoveredPublishAge bounds how old a recovered PublishID may be to be
// kept for the fronts: their deduplication windows are shorter.
const recoveredPublishAge = 10 * time.Minute

// recoveredID notes the PublishID of a replayed message (once per vhost
// and ID, however many queues hold the message).
func (r *Router) recoveredID(vhost string, m *Message) {
	at := time.Unix(0, m.ts)
	if time.Since(at) > recoveredPublishAge {
		return
	}
	r.recoveredMu.Lock()
	defer r.recoveredMu.Unlock()
	if r.recovered == nil {
		r.recovered = map[[2]string]time.Time{}
	}
	r.recovered[[2]string{vhost, m.PublishID}] = at
}

// TakeRecoveredPublishIDs returns the PublishIDs of the messages replayed
// at start (published in the last ten minutes), oldest first, and forgets
// them: a front calls it once.
func (r *Router) TakeRecoveredPublishIDs() []RecoveredPublish {
	r.recoveredMu.Lock()
	defer r.recoveredMu.Unlock()
	out := make([]RecoveredPublish, 0, len(r.recovered))
	for k, at := range r.recovered {
		out = append(out, RecoveredPublish{VHost: k[0], ID: k[1], Published: at})
	}
	r.recovered = nil
	slices.SortFunc(out, func(a, b RecoveredPublish) int { return a.Published.Compare(b.Published) })
	return out
}
