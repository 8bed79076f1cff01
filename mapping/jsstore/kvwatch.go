package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names one of the store's metadata buckets.
type Bucket uint8

const (
	// Durable is the metadata bucket ("warren_meta"): file storage; in a
	// cluster replicated to min(3, cluster size) nodes.
	Durable Bucket = iota
	// Live holds a cluster's transient topology ("warren_live"). It is
	// file storage like Durable: a replicated memory stream cannot elect
	// a leader once a majority of its nodes restarted (their Raft logs
	// are empty, and nats-server does not let an empty log vote), which
	// kept a restarted node from starting. Transient queues go away as
	// in RabbitMQ all the same: a node deletes its own at start and the
	// others' once they are silent (mapping/cluster.go reapTransient). It
	// exists only in a cluster.
	Live
)

// liveBucket is the transient topology bucket of a cluster.
const liveBucket = "warren_live"

// lastRevTimeout bounds KVLastRev: a lookup waits for it, and while a
// bucket elects a new leader the answer can take long.
const lastRevTimeout = 2 * time.Second

// ErrExists is returned by KVCreate for a key that already has a value.
var ErrExists = errors.New("jsstore: key exists")

// ErrRevision is returned by KVUpdate when the key changed since the
// revision given.
var ErrRevision = errors.New("jsstore: key changed meanwhile")

// ErrNoKey is returned by KVGet for a key without a value.
var ErrNoKey = errors.New("jsstore: no such key")

// KVEntry is one change of a metadata key: its value and the bucket's
// revision (stream sequence) of the change; Deleted for a delete or
// purge.
type KVEntry struct {
	Key     string
	Value   []byte
	Rev     uint64
	Deleted bool
}

// Clustered reports whether the store is a cluster node.
func (s *Store) Clustered() bool { return s.cluster != nil }

func (s *Store) bucket(b Bucket) (jetstream.KeyValue, error) {
	if b == Live {
		if s.live == nil {
			return nil, ErrNotClustered
		}
		return s.live, nil
	}
	return s.kv, nil
}

// kvWrite runs one write of bucket b (retried while nobody listens)
// and makes it durable as MetaPut does.
func (s *Store) kvWrite(b Bucket, write func(ctx context.Context, kv jetstream.KeyValue) (uint64, error)) (uint64, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.writeCtx()
	defer cancel()
	var rev uint64
	err = retryNoStream(ctx, func() (err error) { rev, err = write(ctx, kv); return err })
	if c := cutOffCause(ctx); c != nil && err != nil {
		return 0, c
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, ErrExists
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, ErrRevision
	case err == nil && b == Durable:
		err = s.syncMeta(rev)
	}
	return rev, s.wrap(err)
}

// KVCreate stores val under key if the key has no value (a deleted key
// counts as none) and returns the revision; ErrExists otherwise.
func (s *Store) KVCreate(b Bucket, key string, val []byte) (uint64, error) {
	return s.kvWrite(b, func(ctx context.Context, kv jetstream.KeyValue) (uint64, error) { return kv.Create(ctx, key, val) })
}

// KVUpdate replaces key's value if its revision is still rev;
// ErrRevision otherwise.
func (s *Store) KVUpdate(b Bucket, key string, val []byte, rev uint64) (uint64, error) {
	rev, err := s.kvWrite(b, func(ctx context.Context, kv jetstream.KeyValue) (uint64, error) { return kv.Update(ctx, key, val, rev) })
	if errors.Is(err, ErrExists) {
		err = ErrRevision
	}
	return rev, err
}

// KVPut stores val under key whatever was there and returns the revision.
func (s *Store) KVPut(b Bucket, key string, val []byte) (uint64, error) {
	return s.kvWrite(b, func(ctx context.Context, kv jetstream.KeyValue) (uint64, error) { return kv.Put(ctx, key, val) })
}

// KVGet reads key's value and revision; ErrNoKey when it has none.
func (s *Store) KVGet(b Bucket, key string) (KVEntry, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return KVEntry{}, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return KVEntry{}, ErrNoKey
	}
	if err != nil {
		return KVEntry{}, s.wrap(err)
	}
	return KVEntry{Key: e.Key(), Value: e.Value(), Rev: e.Revision()}, nil
}

// KVDelete removes key; a missing key is not an error.
func (s *Store) KVDelete(b Bucket, key string) error {
	if b == Durable {
		return s.MetaDelete(key)
	}
	kv, err := s.bucket(b)
	if err != nil {
		return err
	}
	ctx, cancel := s.writeCtx()
	defer cancel()
	err = retryNoStream(ctx, func() error { return kv.Delete(ctx, key) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if c := cutOffCause(ctx); c != nil && err != nil {
		return c
	}
	return s.wrap(err)
}

// retryNoStream retries a bucket write that found nobody listening (no
// responders): right after a replicated bucket is made, or while its
// leader moves, the subject's interest may not have reached this node
// yet. Nothing was stored, so writing again is safe.
func retryNoStream(ctx context.Context, write func() error) error {
	for {
		err := write()
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// KVLastRev is the bucket's newest revision (delete markers included):
// a reader that has applied every change up to it has seen every change
// committed before the call.
func (s *Store) KVLastRev(b Bucket) (uint64, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), lastRevTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return 0, s.wrap(err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// KVList returns every current entry whose key starts with prefix, with
// its revision.
func (s *Store) KVList(b Bucket, prefix string) ([]KVEntry, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, err
	}
	filter := ">"
	if i := strings.LastIndexByte(prefix, '.'); i >= 0 {
		filter = prefix[:i+1] + ">"
	}
	// A listing right after the bucket's stream got a leader (a node
	// starting with the cluster) can stall before its first entry: its
	// watch is made again when nothing arrived for kvListStall, for up to
	// apiTimeout. A long listing that makes progress is never cut.
	deadline := time.Now().Add(apiTimeout)
	for {
		entries, err := s.kvListOnce(kv, filter, prefix)
		if !errors.Is(err, errListStalled) {
			return entries, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("jsstore: listing %s stalled for %v", prefix, apiTimeout)
		}
		s.log.Warn("metadata listing stalled; listing again", "prefix", prefix)
	}
}

// kvListStall is how long one attempt of KVList waits for its next entry.
const kvListStall = 5 * time.Second

var errListStalled = errors.New("jsstore: listing stalled")

func (s *Store) kvListOnce(kv jetstream.KeyValue, filter, prefix string) ([]KVEntry, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			// The watch's consumer could not be made in time: the
			// bucket's stream has no leader yet (just formed, or
			// electing). Like a stall, asked again.
			s.log.Info("metadata listing: watch not made yet", "prefix", prefix, "err", err)
			return nil, errListStalled
		}
		return nil, s.wrap(err)
	}
	defer w.Stop()
	stall := time.NewTimer(kvListStall)
	defer stall.Stop()
	var entries []KVEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, ErrClosed
			}
			if e == nil {
				return entries, nil
			}
			if strings.HasPrefix(e.Key(), prefix) {
				entries = append(entries, KVEntry{Key: e.Key(), Value: e.Value(), Rev: e.Revision()})
			}
			stall.Reset(kvListStall)
		case <-stall.C:
			return nil, errListStalled
		}
	}
}

// KVWatcher delivers every change of a bucket after a given revision,
// in revision order, deletes included.
type KVWatcher struct {
	w      jetstream.KeyWatcher
	out    chan KVEntry
	stop   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
}

// Updates is closed when the watch ends (Stop, or the store closed);
// the owner may watch again from the last revision it applied.
func (w *KVWatcher) Updates() <-chan KVEntry { return w.out }

// Stop ends the watch.
func (w *KVWatcher) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.cancel() // nats.go unsubscribes the watch when its context ends
	})
}

// KVWatch watches bucket b from revision after+1 on. The watch lives
// until Stop (its context is the watch's lifetime, so only the creation
// is bounded, by a timer).
func (s *Store) KVWatch(b Bucket, after uint64) (*KVWatcher, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(apiTimeout, cancel)
	w, err := kv.WatchAll(ctx, jetstream.ResumeFromRevision(after+1))
	if !timer.Stop() && err == nil {
		err = context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		return nil, s.wrap(err)
	}
	kw := &KVWatcher{w: w, out: make(chan KVEntry, 64), stop: make(chan struct{}), cancel: cancel}
	go func() { // ends when nats.go closes Updates (unsubscribed) or on Stop
		defer close(kw.out)
		for e := range w.Updates() {
			if e == nil {
				continue // end of the initial values
			}
			op := e.Operation()
			select {
			case kw.out <- KVEntry{Key: e.Key(), Value: e.Value(), Rev: e.Revision(), Deleted: op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge}:
			case <-kw.stop:
				return
			}
		}
	}()
	return kw, nil
}

// openClusterBuckets opens the cluster's shared buckets, creating them
// on the first start with replicas = min(3, the cluster's size). They
// are not placed on this node (that is the point), so they are made
// with the plain JetStream API. Right after the meta group has a leader
// the create may fail (peers not yet known, a replica not yet up), so it
// is retried until the form timeout.
func openClusterBuckets(js jetstream.JetStream, c *ClusterConfig) (meta, live jetstream.KeyValue, err error) {
	replicas := min(3, clusterSize(c))
	deadline := time.Now().Add(c.FormTimeout)
	open := func(cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			kv, err := js.KeyValue(ctx, cfg.Bucket)
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				kv, err = js.CreateKeyValue(ctx, cfg)
				if errors.Is(err, jetstream.ErrBucketExists) {
					kv, err = js.KeyValue(ctx, cfg.Bucket)
				}
			}
			if err == nil {
				// A new replicated bucket takes writes once its stream
				// has elected a leader.
				var st jetstream.Stream
				if st, err = js.Stream(ctx, "KV_"+cfg.Bucket); err == nil {
					if ci := st.CachedInfo().Cluster; ci == nil || ci.Leader == "" {
						err = fmt.Errorf("bucket %s has no leader yet", cfg.Bucket)
					}
				}
			}
			cancel()
			if err == nil || time.Now().After(deadline) {
				return kv, err
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if meta, err = open(jetstream.KeyValueConfig{Bucket: metaBucket, History: 1, Storage: jetstream.FileStorage, Replicas: replicas}); err != nil {
		return nil, nil, err
	}
	if live, err = open(jetstream.KeyValueConfig{Bucket: liveBucket, History: 1, Storage: jetstream.FileStorage, Replicas: replicas}); err != nil {
		return nil, nil, err
	}
	return meta, live, nil
}

// clusterSize is the number of nodes the cluster is formed with: the
// distinct peer addresses, this node's own included.
func clusterSize(c *ClusterConfig) int { return c.ConfiguredSize() }

// ConfiguredSize is the number of distinct route addresses the node is
// configured with, its own included: the cluster's size at its first
// start (more when the peers are proxies in front of the nodes).
func (c *ClusterConfig) ConfiguredSize() int {
	seen := map[string]bool{c.Listen: true}
	for _, p := range c.Peers {
		seen[p] = true
	}
	return len(seen)
}
