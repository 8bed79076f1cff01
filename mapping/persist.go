package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Metadata keys in the store's KV buckets (see README.md):
//
//	v.<vhost>                       vhost record
//	x.<vhost>.<exchange>            exchange
//	q.<vhost>.<queue>               queue
//	b.<vhost>.<sha256 of binding>   binding
//
// Names are escaped with escapeToken so that any AMQP name is a valid key.
// On a single node only durable topology has records (bucket warren_meta);
// in a cluster transient topology has them too, in the memory bucket
// warren_live, so that every node can route to it (metawatch.go).
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
	Log        string `json:"log,omitempty"`
	// Durable, for a record of the transient bucket (those of the durable
	// bucket are all durable): a durable exclusive queue has no log.
	Durable   bool   `json:"durable,omitempty"`
	Exclusive bool   `json:"exclusive,omitempty"`
	Owner     string `json:"owner,omitempty"` // an exclusive queue's connection, for listings
	// Home is the node that declared the queue and dispatches it (home.go);
	// "" on a single node. Type is its x-queue-type (classic, quorum).
	Home string `json:"home,omitempty"`
	Type string `json:"type,omitempty"`
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
	_, err := r.putRecord(jsstore.Durable, key, v)
	return err
}

// putRecord stores v under key in bucket b (whatever was there) and
// returns the revision, which it notes as applied here: the caller
// applies the change itself (metawatch.go).
func (r *Router) putRecord(b jsstore.Bucket, key string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, errorf(KindInternal, "encode %s: %v", key, err)
	}
	if r.meta == nil {
		if err := r.store.MetaPut(key, data); err != nil {
			return 0, metaWriteFailed(key, err)
		}
		return 0, nil
	}
	rev, err := r.store.KVPut(b, key, data)
	if err != nil {
		return 0, metaWriteFailed(key, err)
	}
	r.meta.note(b, key, rev)
	return rev, nil
}

// casRecord writes v under key as a change of the version this node has
// applied: a KV create when exists is false, else an update of the
// revision noted for key. When another node changed the key meanwhile
// (and this node has not applied that yet) nothing is written and newer
// is the current entry (Deleted when the key is gone), for the caller
// to apply and build its change on. A single node simply stores v.
func (r *Router) casRecord(b jsstore.Bucket, key string, v any, exists bool) (newer *jsstore.KVEntry, err error) {
	if r.meta == nil {
		_, err := r.putRecord(b, key, v)
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, errorf(KindInternal, "encode %s: %v", key, err)
	}
	var rev uint64
	if exists {
		rev, err = r.store.KVUpdate(b, key, data, r.meta.revOf(b, key))
	} else {
		rev, err = r.store.KVCreate(b, key, data)
	}
	if errors.Is(err, jsstore.ErrRevision) || errors.Is(err, jsstore.ErrExists) {
		e, gerr := r.store.KVGet(b, key)
		if errors.Is(gerr, jsstore.ErrNoKey) {
			return &jsstore.KVEntry{Key: key, Deleted: true}, nil
		}
		if gerr != nil {
			return nil, errorf(KindInternal, "read metadata %s: %v", key, gerr)
		}
		r.meta.note(b, key, e.Rev)
		return &e, nil
	}
	if err != nil {
		return nil, metaWriteFailed(key, err)
	}
	r.meta.note(b, key, rev)
	return nil, nil
}

// metaWriteFailed is the error of a metadata write that failed. A node cut
// off from its cluster says so in its own words (cluster.go checkCutOff).
func metaWriteFailed(key string, err error) *Error {
	if errors.Is(err, jsstore.ErrCutOff) {
		return errorf(KindInternal, "%v", err)
	}
	return errorf(KindInternal, "store metadata %s: %v", key, err)
}

// deleteRecord removes key from bucket b; a missing key is not an error.
func (r *Router) deleteRecord(b jsstore.Bucket, key string) error {
	if r.meta == nil {
		return r.store.MetaDelete(key)
	}
	return r.store.KVDelete(b, key)
}

// recordBucket is the bucket of a durable or transient entity's record;
// ok is false when it has none (transient topology of a single node).
func (r *Router) recordBucket(durable bool) (b jsstore.Bucket, ok bool) {
	if durable {
		return jsstore.Durable, true
	}
	return jsstore.Live, r.meta != nil
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

func (vh *VHost) exchangeRecord(e *exchange) (exchangeRecord, error) {
	args, err := encodeArgs(e.spec.Args)
	if err != nil {
		return exchangeRecord{}, errorf(KindPreconditionFailed, "exchange arguments: %v", err)
	}
	return exchangeRecord{
		VHost: vh.name, Name: e.spec.Name, Type: e.spec.Type,
		AutoDelete: e.spec.AutoDelete, Internal: e.spec.Internal, Args: args,
	}, nil
}

// claimExchange writes the record of a new exchange e (none when it has
// none). In a cluster another node may claim the name first: then won is
// false and winner is the record that stands, to apply and compare.
func (r *Router) claimExchange(vh *VHost, e *exchange) (won bool, winner claimed, err error) {
	b, ok := r.recordBucket(e.spec.Durable)
	if !ok {
		return true, claimed{}, nil
	}
	rec, err := vh.exchangeRecord(e)
	if err != nil {
		return false, claimed{}, err
	}
	return r.claim(b, exchangeKey(vh.name, e.spec.Name), rec)
}

func (r *Router) deleteExchangeRecord(vh *VHost, e *exchange) {
	b, ok := r.recordBucket(e.spec.Durable)
	if !ok {
		return
	}
	if err := r.deleteRecord(b, exchangeKey(vh.name, e.spec.Name)); err != nil {
		r.log.Error("delete exchange record", "exchange", e.spec.Name, "err", err)
	}
}

func (vh *VHost) queueRecord(q *Queue) (queueRecord, error) {
	args, err := encodeArgs(q.spec.Args)
	if err != nil {
		return queueRecord{}, errorf(KindPreconditionFailed, "queue arguments: %v", err)
	}
	rec := queueRecord{VHost: vh.name, Name: q.name, AutoDelete: q.spec.AutoDelete, Args: args, Log: q.logName}
	if vh.r.meta != nil {
		rec.Durable, rec.Exclusive = q.spec.Durable, q.spec.Exclusive
		if q.owner != nil {
			rec.Owner = q.owner.info.Name
		}
		rec.Home, rec.Type = q.homeNode(), queueTypeOf(q.spec.Args)
	}
	return rec, nil
}

// claimQueue writes the record of a new queue, as claimExchange.
func (r *Router) claimQueue(vh *VHost, q *Queue) (won bool, winner claimed, err error) {
	b, ok := r.recordBucket(q.durableLog())
	if !ok {
		return true, claimed{}, nil
	}
	rec, err := vh.queueRecord(q)
	if err != nil {
		return false, claimed{}, err
	}
	if strings.HasPrefix(q.name, serverNamePrefix) {
		// A server-generated name (clients cannot declare amq.*) is
		// this node's alone: no compare-and-set, one write.
		_, err := r.putRecord(b, queueKey(vh.name, q.name), rec)
		return err == nil, claimed{}, err
	}
	return r.claim(b, queueKey(vh.name, q.name), rec)
}

// deleteQueueRecord deletes q's record; at its home also its log and
// its purged runs (a copy elsewhere leaves the log to the home, which
// deletes it when it applies the deletion, or at its next start).
func (r *Router) deleteQueueRecord(vh *VHost, q *Queue) {
	r.forgetQuorum(q)
	b, ok := r.recordBucket(q.durableLog())
	if !ok {
		return
	}
	if err := r.deleteRecord(b, queueKey(vh.name, q.name)); err != nil {
		r.log.Error("delete queue record", "queue", q.name, "err", err)
	}
	// A replicated log is shared: the node that deletes the queue deletes
	// it, wherever the queue's home is.
	if q.durableLog() && (q.atHome() || r.store.Replicated(q.logName)) {
		r.dropQueueLog(vh, q)
	}
}

// dropQueueLog deletes a deleted queue's log and its purged runs.
func (r *Router) dropQueueLog(vh *VHost, q *Queue) {
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

// newQueueLog names the log of a new durable queue. Log names are
// cluster-wide, so a node's classic queues carry its Store.LogPrefix;
// a replicated quorum queue's log is shared (durableLogName, ownership.go).
func (r *Router) newQueueLog(vh *VHost, s QueueSpec) string {
	return r.durableLogName(vh.name, s)
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

// putBinding stores b's record (when it has one) and notes its key on b.
// putBinding writes b's record and returns the write for spread.
func (r *Router) putBinding(vh *VHost, b *binding) (spreadRev, error) {
	bk, ok := r.recordBucket(r.durableBinding(b))
	if !ok {
		return spreadRev{}, nil
	}
	args, err := encodeArgs(b.args)
	if err != nil {
		return spreadRev{}, errorf(KindPreconditionFailed, "binding arguments: %v", err)
	}
	b.metaKey = r.bindingKey(vh, b, args)
	rev, err := r.putRecord(bk, b.metaKey, bindingRecord{
		VHost: vh.name, Source: b.src.spec.Name, Destination: b.destName(),
		ToExchange: b.dstEx != nil, Key: b.key, Args: args,
	})
	return spreadRev{bk, rev}, err
}

func (r *Router) deleteBindingRecord(vh *VHost, b *binding) {
	bk, ok := r.recordBucket(r.durableBinding(b))
	if !ok {
		return
	}
	args, _ := encodeArgs(b.args)
	if err := r.deleteRecord(bk, r.bindingKey(vh, b, args)); err != nil {
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

// loaded is a record read at start, with its bucket.
type loaded struct {
	b jsstore.Bucket
	e jsstore.KVEntry
}

// listRecords reads every record whose key starts with prefix: from the
// metadata bucket, and in a cluster from the transient bucket too. What
// recovery applies of them it notes (noteLoaded); the watcher replays the
// buckets from their first revision and skips only that. A record the
// listing held but recovery could not apply (a binding whose queue the
// listing of queues, read a moment before from a lagging replica, did
// not hold yet) is applied by the replay.
func (r *Router) listRecords(prefix string) ([]loaded, error) {
	if r.meta == nil {
		m, err := r.store.MetaList(prefix)
		if err != nil {
			return nil, err
		}
		out := make([]loaded, 0, len(m))
		for k, v := range m {
			out = append(out, loaded{jsstore.Durable, jsstore.KVEntry{Key: k, Value: v}})
		}
		return out, nil
	}
	var out []loaded
	for _, b := range []jsstore.Bucket{jsstore.Durable, jsstore.Live} {
		es, err := r.store.KVList(b, prefix)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out = append(out, loaded{b, e})
		}
	}
	if f := listFilterForTest; f != nil {
		out = f(r.NodeName(), prefix, out)
	}
	return out, nil
}

// noteLoaded notes that recovery applied it, so that the watcher's replay
// skips it (no-op on a single node).
func (r *Router) noteLoaded(it loaded) { r.meta.note(it.b, it.e.Key, it.e.Rev) }

// listFilterForTest, when set (tests only, before a node opens), edits
// what that node's start-up listings return: it plays a lagging replica.
var listFilterForTest func(node, prefix string, l []loaded) []loaded

// startRevWait bounds how long a starting node asks for a bucket's last
// revision: right after the cluster formed, the bucket's stream may not
// have a leader yet, and one request (lastRevTimeout) then times out.
const startRevWait = 30 * time.Second

// startLastRev is KVLastRev for a starting node: asked again until the
// bucket answers or startRevWait has passed.
func (r *Router) startLastRev(b jsstore.Bucket) (uint64, error) {
	deadline := time.Now().Add(startRevWait)
	for {
		last, err := r.store.KVLastRev(b)
		if err == nil || time.Now().After(deadline) {
			return last, err
		}
		r.log.Info("metadata bucket not answering yet; asking again", "bucket", b, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// recover rebuilds every vhost from the metadata buckets (loadHomeQueues
// then loads the logs of this node's durable queues) and returns the
// queues' purged ranges by key. In a cluster it also makes the copies of
// other nodes' queues, deletes this node's transient records of its
// previous run (their connections are gone), and records where the
// watcher starts.
func (r *Router) recover() (purged map[string][]byte, err error) {
	if m := r.meta; m != nil {
		// The buckets answer (their streams have leaders) before they
		// are listed. The watcher then starts from their first revision,
		// not from the last one now: a listing reads whichever replica
		// its consumer was placed on, and a replica that is still
		// catching up (this node's own, right after a restart) lists
		// less than the leader holds. Replaying the buckets (one record
		// per key) fills what a listing missed; what it held is skipped
		// (note, seen), and Open waits for the replay to reach the last
		// revisions read here (waitStart).
		for _, b := range []jsstore.Bucket{jsstore.Durable, jsstore.Live} {
			last, err := r.startLastRev(b)
			if err != nil {
				return nil, err
			}
			m.startRevs[b] = last
		}
	}
	if err := r.loadIdentity(); err != nil {
		return nil, err
	}
	xs, err := r.listRecords("x.")
	if err != nil {
		return nil, err
	}
	qs, err := r.listRecords("q.")
	if err != nil {
		return nil, err
	}
	bs, err := r.listRecords("b.")
	if err != nil {
		return nil, err
	}
	dl, err := r.listRecords("d.")
	if err != nil {
		return nil, err
	}
	vhost := func(name string) *VHost {
		vh := r.vhosts[name]
		if vh == nil {
			vh = newVHost(r, name)
			r.vhosts[name] = vh
		}
		return vh
	}
	for _, it := range xs {
		var rec exchangeRecord
		if err := json.Unmarshal(it.e.Value, &rec); err != nil {
			r.log.Error("skipping unreadable exchange record", "key", it.e.Key, "err", err)
			continue
		}
		vh := vhost(rec.VHost)
		e, err := vh.exchangeFromRecord(it.b, rec)
		if err != nil {
			r.log.Error("skipping exchange with unreadable arguments", "exchange", rec.Name, "err", err)
			continue
		}
		vh.exchanges[rec.Name] = e
		r.noteLoaded(it)
	}
	leftover := map[[2]string]bool{} // this node's transient queues of its previous run
	me := r.NodeName()
	for _, it := range qs {
		var rec queueRecord
		if err := json.Unmarshal(it.e.Value, &rec); err != nil {
			r.log.Error("skipping unreadable queue record", "key", it.e.Key, "err", err)
			continue
		}
		if it.b == jsstore.Live && rec.Home == me {
			leftover[[2]string{rec.VHost, rec.Name}] = true
			r.noteLoaded(it) // its record is deleted below
			continue
		}
		vh := vhost(rec.VHost)
		q, err := vh.queueFromRecord(it.b, rec)
		if err != nil {
			r.log.Error("skipping queue with unreadable arguments", "queue", rec.Name, "err", err)
			continue
		}
		if r.store.Replicated(q.logName) {
			// A quorum queue's home is its log's leader, whichever node
			// declared it: the leadership watcher loads it here if that
			// is this node (ownership.go).
			r.trackQuorum(q)
		}
		// Another node's queue is a copy; this node's own durable queues
		// are loaded from their logs by loadHomeQueues.
		vh.queues[q.name] = q
		r.noteLoaded(it)
	}
	for _, it := range bs {
		var rec bindingRecord
		if err := json.Unmarshal(it.e.Value, &rec); err != nil {
			r.log.Error("skipping unreadable binding record", "key", it.e.Key, "err", err)
			continue
		}
		vh := vhost(rec.VHost)
		b, err := vh.bindingFromRecordLocked(rec)
		if err != nil {
			// In a cluster a binding whose end is missing may be another
			// node's change in progress, or an end that this listing
			// missed and the watcher's replay brings: only this node's
			// own leftovers' bindings are deleted.
			if r.meta == nil || leftover[[2]string{rec.VHost, rec.Destination}] && !rec.ToExchange {
				r.log.Warn("dropping binding", "reason", err)
				r.deleteRecord(it.b, it.e.Key)
				r.noteLoaded(it)
			}
			continue
		}
		if r.meta != nil {
			b.metaKey = it.e.Key
			vh.bindIdx[it.e.Key] = b
		}
		b.src.addBinding(b)
		r.noteLoaded(it)
	}
	for key := range leftover {
		r.log.Info("removing a transient queue of this node's previous run", "vhost", key[0], "queue", key[1])
		r.deleteRecord(jsstore.Live, queueKey(key[0], key[1]))
	}
	if r.meta != nil {
		r.meta.leftover = leftover // for the replay's bindings to them
	}
	ds := map[string][]byte{}
	for _, it := range dl {
		ds[it.e.Key] = it.e.Value
		r.noteLoaded(it)
	}
	r.log.Info("recovered definitions", "queues", len(qs), "exchanges", len(xs), "bindings", len(bs))
	return ds, nil
}

// loadHomeQueues loads this node's own durable queues from their logs,
// once the model is complete: on a single node right after recover, in
// a cluster once the watcher's replay has reached the revisions recover
// began from (complete false: it did not in startRevWait). purged holds
// the queues' purged ranges by key. Logs that no queue of the model
// names are deleted, but only from a complete model: a listing that
// missed a queue (a lagging replica) must not cost its messages.
func (r *Router) loadHomeQueues(purged map[string][]byte, complete bool) error {
	var home, all []*Queue
	used := map[string]bool{}
	r.mu.RLock()
	for _, vh := range r.vhosts {
		vh.mu.RLock()
		for _, q := range vh.queues {
			all = append(all, q)
			if q.logName == "" {
				continue
			}
			used[q.logName] = true
			if q.atHome() && !r.store.Replicated(q.logName) {
				home = append(home, q)
			}
		}
		vh.mu.RUnlock()
	}
	r.mu.RUnlock()
	total := 0
	for _, q := range home {
		if err := r.store.CreateLog(q.logName); err != nil {
			return fmt.Errorf("queue %q: %w", q.name, err)
		}
		pk := purgedKey(q.vh.name, q.name)
		n, err := r.replay(q, purged[pk])
		delete(purged, pk)
		if err != nil {
			r.log.Error("queue log damaged; serving what could be read", "queue", q.name, "err", err)
		}
		total += n
	}
	if r.meta == nil {
		for key := range purged {
			r.store.MetaDelete(key) // purged ranges of a queue that is gone
		}
	}
	// Logs no queue names are left by deleted queues (in a cluster the
	// store lists only this node's own logs, which only it creates).
	if logs, err := r.store.Logs(); err == nil && complete {
		for _, l := range logs {
			if !used[l] {
				r.log.Info("removing log of a deleted queue", "log", l)
				r.store.DeleteLog(l)
			}
		}
	} else if !complete {
		r.log.Warn("metadata not complete at start: logs of deleted queues are kept until the next start")
	}
	// Start the clocks of the recovered queues: x-expires, and TTLs that
	// ran out while Warren was down (those are dead-lettered now).
	for _, q := range all {
		if !q.atHome() {
			continue
		}
		q.mu.Lock()
		q.armIdleLocked()
		q.mu.Unlock()
		q.kick()
	}
	r.log.Info("recovered", "home_queues", len(home), "messages", total)
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
