package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned (or passed to Append callbacks) once the store is closed.
var ErrClosed = errors.New("jsstore: store closed")

// ErrNotFound is returned for a log that does not exist.
var ErrNotFound = errors.New("jsstore: log not found")

// ErrTimeout is passed to an Append callback when JetStream did not
// acknowledge the record within the ack timeout.
var ErrTimeout = errors.New("jsstore: append timed out")

const (
	metaBucket    = "warren_meta"
	streamPrefix  = "WL_"
	subjectPrefix = "warren.log."

	defaultMaxPayload = 64 << 20 // nats-server's hard cap
	maxPendingAppends = 64 << 10
	appendWriters     = 3 // connections that publish appends (see logLane)
	maxPendingBytes   = 64 << 20
	maxTransientBytes = 8 << 20 // of which records nobody waits for (ReserveTransient)
	ackTimeout        = 30 * time.Second
	apiTimeout        = 30 * time.Second
)

// Config configures Open.
type Config struct {
	Dir        string       // data directory; JetStream files under Dir/jetstream. Required.
	MaxPayload int32        // largest log record; 0 → 64 MiB
	SyncAlways bool         // fsync every write; default: JetStream's sync interval
	Logger     *slog.Logger // nil → slog.Default()
	// Cluster, when set, makes this store one node of a NATS cluster
	// (cluster.go); nil is a single node.
	Cluster *ClusterConfig
}

// Store is an open JetStream store. All methods are safe for concurrent use.
type Store struct {
	log *slog.Logger
	ns  *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue // the metadata bucket (Durable)
	// live is a cluster's transient topology bucket (Live); nil on a
	// single node.
	live jetstream.KeyValue

	ncClosed chan struct{} // closed by nats.go's ClosedHandler
	writers  []*nats.Conn  // extra connections that publish appends

	connOpts  []nats.Option  // the in-process connections' options (bus.go opens one more)
	cluster   *ClusterConfig // nil on a single node
	logPrefix string         // see logPrefix in cluster.go
	refused   *routeRefusals // route connections refused (cluster only)

	appender
	leaders leaderWatch // replicated logs' leaders (leaders.go)
	cut     cutOff      // SetCutOff (cutoff.go)

	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded nats-server, connects to it in-process and
// opens (or creates) the metadata bucket.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("jsstore: Config.Dir is required")
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = defaultMaxPayload
	}
	if cfg.MaxPayload > defaultMaxPayload {
		return nil, fmt.Errorf("jsstore: MaxPayload %d above the 64 MiB limit", cfg.MaxPayload)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg = lg.With("component", "jetstream")

	opts := &server.Options{
		ServerName: "warren",
		DontListen: true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		MaxPayload: cfg.MaxPayload,
		MaxPending: 256 << 20,
		// Per-stream ingest queue: larger than what the appender lets be outstanding.
		StreamMaxBufferedMsgs: 2 * maxPendingAppends,
		StreamMaxBufferedSize: 2*maxPendingBytes + 2*int64(cfg.MaxPayload),
	}
	if err := checkLayout(cfg.Dir, cfg.Cluster); err != nil {
		return nil, err
	}
	var connOpts []nats.Option // the in-process connections'
	refused := &routeRefusals{}
	if cfg.Cluster != nil {
		c := *cfg.Cluster
		cfg.Cluster = &c
		tok, err := clusterOptions(opts, cfg.Cluster)
		if err != nil {
			return nil, err
		}
		connOpts = append(connOpts, nats.Token(tok))
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("jsstore: nats-server: %w", err)
	}
	if cfg.Cluster != nil {
		ns.SetLoggerV2(clusterLogger{slogAdapter{lg}, refused}, false, false, false)
	} else {
		ns.SetLoggerV2(slogAdapter{lg}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("jsstore: nats-server not ready within 10s")
	}
	if cfg.Cluster != nil {
		if err := waitForMeta(ns, cfg.Cluster, lg, refused); err != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, err
		}
	}

	s := &Store{log: lg, ns: ns, ncClosed: make(chan struct{}), cluster: cfg.Cluster, logPrefix: logPrefix(cfg.Cluster), refused: refused}
	fail := func(err error) (*Store, error) {
		for _, w := range s.writers {
			w.Close()
		}
		if s.nc != nil {
			s.nc.Close()
			<-s.ncClosed
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}

	nc, err := nats.Connect("", append([]nats.Option{
		nats.InProcessServer(ns),
		nats.Name("warren-jsstore"),
		nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(s.ncClosed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			lg.Error("nats client error", "subject", subj, "err", err)
		}),
	}, connOpts...)...)
	if err != nil {
		return fail(fmt.Errorf("jsstore: connect: %w", err))
	}
	s.nc = nc
	s.connOpts = connOpts
	if s.js, err = jetstream.New(nc); err != nil {
		return fail(fmt.Errorf("jsstore: jetstream: %w", err))
	}
	if cfg.Cluster != nil {
		s.js = newPlacedJS(s.js, ns, cfg.Cluster)
	}
	if cfg.Cluster != nil {
		s.kv, s.live, err = openClusterBuckets(s.js.(*placedJS).JetStream, cfg.Cluster)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		s.kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: metaBucket, History: 1, Storage: jetstream.FileStorage})
		cancel()
	}
	if err != nil {
		return fail(fmt.Errorf("jsstore: metadata buckets: %w", err))
	}
	for range appendWriters - 1 {
		w, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(ns), nats.Name("warren-jsstore-writer"), nats.NoReconnect()}, connOpts...)...)
		if err != nil {
			return fail(fmt.Errorf("jsstore: connect writer: %w", err))
		}
		s.writers = append(s.writers, w)
	}
	if cfg.SyncAlways {
		s.appender.group = newGroupSyncer(&s.appender, cfg.Dir)
	}
	if err := s.appender.start(nc, s.writers); err != nil {
		return fail(err)
	}
	return s, nil
}

// Close flushes pending appends (bounded by the ack timeout), fails the rest
// with ErrClosed, closes the connection and shuts the server down, waiting
// for all of it. It is idempotent.
func (s *Store) Close() error { return s.CloseWithin(ackTimeout) }

// CloseWithin is Close that waits at most d for outstanding appends and
// at most d for the connection to drain.
func (s *Store) CloseWithin(d time.Duration) error {
	s.closeOnce.Do(func() {
		s.stopLeaders()
		s.stepDownLeaders() // before the appends finish: theirs fail over (503 retry)
		s.appender.close(d)
		for _, w := range s.writers {
			w.Close() // nothing outstanding: close waited for the PubAcks
		}
		if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.nc.Close()
		}
		select {
		case <-s.ncClosed:
		case <-time.After(d):
			s.nc.Close()
			<-s.ncClosed
		}
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
	return s.closeErr
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), apiTimeout)
}

func (s *Store) isClosed() bool {
	s.appender.mu.Lock()
	defer s.appender.mu.Unlock()
	return s.appender.closed
}

func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
		return ErrClosed
	}
	return err
}

// ---- metadata ----

// MetaPut stores val under key.
func (s *Store) MetaPut(key string, val []byte) error {
	_, err := s.KVPut(Durable, key, val)
	return err
}

// syncMeta makes a metadata change (the bucket's record seq) durable
// when the store syncs always. In a cluster the bucket is replicated and
// a write is answered once a quorum of replicas has it; this node's
// copy may lag, so its files are not what to fsync.
func (s *Store) syncMeta(seq uint64) error {
	if g := s.appender.group; g != nil && s.cluster == nil {
		return g.syncStream("KV_"+s.kv.Bucket(), seq)
	}
	return nil
}

// metaLastSeq is the sequence of the bucket's newest record (a delete
// marker's sequence is not returned by the KV API).
func (s *Store) metaLastSeq() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	st, err := s.js.Stream(ctx, "KV_"+s.kv.Bucket())
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.LastSeq, nil
}

// MetaValue returns the value of key, nil when it has none. It is one
// direct read of the bucket's stream, with no consumer (MetaList's watch
// creates one, which needs the JetStream meta leader: a takeover must not
// wait for the meta group to elect one).
func (s *Store) MetaValue(key string) ([]byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return e.Value(), nil
}

// MetaDelete removes key; a missing key is not an error.
func (s *Store) MetaDelete(key string) error {
	ctx, cancel := s.writeCtx()
	defer cancel()
	err := retryNoStream(ctx, func() error { return s.kv.Delete(ctx, key) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if c := cutOffCause(ctx); c != nil && err != nil {
		return c
	}
	if err == nil && s.appender.group != nil && s.cluster == nil {
		var seq uint64
		if seq, err = s.metaLastSeq(); err == nil {
			err = s.syncMeta(seq)
		}
	}
	return s.wrap(err)
}

// MetaList returns every current key starting with prefix and its value.
func (s *Store) MetaList(prefix string) (map[string][]byte, error) {
	es, err := s.KVList(Durable, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(es))
	for _, e := range es {
		out[e.Key] = e.Value
	}
	return out, nil
}

// ---- logs: administration ----

func streamName(name string) string  { return streamPrefix + name }
func subjectName(name string) string { return subjectPrefix + name }

// transientSubject is where a log keeps records that a restart drops
// (AppendTransient, PurgeTransient).
func transientSubject(name string) string { return subjectPrefix + name + ".t" }

func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("jsstore: invalid log name %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("jsstore: invalid log name %q", name)
		}
	}
	return nil
}

func logConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName(name),
		Subjects:    []string{subjectName(name), transientSubject(name)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxMsgSize:  -1,
		MaxAge:      0,
		Discard:     jetstream.DiscardOld,
		Replicas:    1,
		AllowDirect: true,
	}
}

// CreateLog creates the log if it does not exist. A replicated log's name
// (ReplicatedPrefix, cluster only) creates or finds a replicated log of the
// default size (CreateReplicatedLog).
func (s *Store) CreateLog(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if s.Replicated(name) {
		return s.CreateReplicatedLog(name, 0)
	}
	// A cluster node's own log is placed on it by its server tag. Right
	// after this node joined, or after the meta leader moved, the meta
	// leader may not have this node's statistics yet and answers "no
	// suitable peers" although the node is up (its own process asks).
	return s.createStream(logConfig(name), s.js.CreateOrUpdateStream, noPeersYet)
}

// createStream calls create with cfg, again every leaderRetry for up to
// leaderWait while the error is one that again reports as passing.
func (s *Store) createStream(cfg jetstream.StreamConfig, create func(context.Context, jetstream.StreamConfig) (jetstream.Stream, error), again func(error) bool) error {
	deadline := time.Now().Add(leaderWait)
	for {
		ctx, cancel := s.ctx()
		_, err := create(ctx, cfg)
		cancel()
		if err == nil || !again(err) || time.Now().After(deadline) || s.isClosed() {
			return s.wrap(err)
		}
		s.log.Debug("stream not created yet; retrying", "stream", cfg.Name, "err", err)
		time.Sleep(leaderRetry)
	}
}

// noPeersYet reports JetStream's "no suitable peers for placement".
func noPeersYet(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.ErrorCode(server.JSClusterNoPeersErrF)
}

// DeleteLog deletes the log; a missing log is not an error.
func (s *Store) DeleteLog(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.js.DeleteStream(ctx, streamName(name))
	s.forgetBlocks(name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return s.wrap(err)
}

// forgetBlocks makes the group syncer let go of a log's block file after
// the log was deleted or purged whole.
func (s *Store) forgetBlocks(name string) {
	if g := s.appender.group; g != nil {
		g.forget(streamName(name))
	}
}

func (s *Store) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	st, err := s.js.Stream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNotFound
	}
	return st, s.wrap(err)
}

// apiError is a JetStream API error response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jsstore: jetstream: %s (%d/%d)", e.Description, e.Code, e.ErrCode)
}

const (
	errCodeStreamNotFound = 10059
	errCodeNoMessageFound = 10037
	errCodeMsgDeleteFail  = 10057
	errCodeSeqNotFound    = 10043
)

// api sends one raw JetStream API request (used for the frequent small
// operations, to avoid the extra stream-info round trip of the jetstream
// package) and returns the decoded error, if any.
func (s *Store) api(subj string, req []byte) error {
	m, err := s.nc.Request(subj, req, apiTimeout)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return errors.New("jsstore: jetstream not available")
		}
		return s.wrap(err)
	}
	var r struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("jsstore: bad api response %q: %w", m.Data, err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == errCodeStreamNotFound {
			return ErrNotFound
		}
		return r.Error
	}
	return nil
}

// PurgeBelow removes every record with sequence < seq.
func (s *Store) PurgeBelow(name string, seq uint64) error {
	if err := checkName(name); err != nil {
		return err
	}
	if seq <= 1 {
		return nil
	}
	return s.api("$JS.API.STREAM.PURGE."+streamName(name), fmt.Appendf(nil, `{"seq":%d}`, seq))
}

// PurgeAll removes every record of the log.
func (s *Store) PurgeAll(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := s.api("$JS.API.STREAM.PURGE."+streamName(name), nil)
	s.forgetBlocks(name)
	return err
}

// DeleteSeq removes one record (without erasing it on disk); a missing
// record is not an error.
func (s *Store) DeleteSeq(name string, seq uint64) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := s.api("$JS.API.STREAM.MSG.DELETE."+streamName(name), fmt.Appendf(nil, `{"seq":%d,"no_erase":true}`, seq))
	var ae *apiError
	if errors.As(err, &ae) && (ae.ErrCode == errCodeNoMessageFound || ae.ErrCode == errCodeSeqNotFound ||
		ae.ErrCode == errCodeMsgDeleteFail && strings.Contains(ae.Description, "not found") ||
		ae.ErrCode == errCodeMsgDeleteFail && strings.Contains(ae.Description, "no message") ||
		ae.ErrCode == errCodeMsgDeleteFail && strings.Contains(ae.Description, "EOF")) { // beyond the last sequence
		return nil
	}
	return err
}

// LogState returns the first and last sequence and the record count of a log.
func (s *Store) LogState(name string) (first, last, count uint64, err error) {
	return s.LogStateWithin(name, apiTimeout)
}

// LogStateWithin is LogState that gives up after d: a replicated log's
// state comes from its leader, and right after an election (or while the
// cluster elects a new meta leader) the request may go unanswered for a
// while; a caller that retries asks again rather than wait out the API
// timeout.
func (s *Store) LogStateWithin(name string, d time.Duration) (first, last, count uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	st, err := s.stream(ctx, name)
	if err != nil {
		return 0, 0, 0, err
	}
	info := st.CachedInfo() // js.Stream just fetched it
	return info.State.FirstSeq, info.State.LastSeq, info.State.Msgs, nil
}

// Logs returns the names of all existing logs.
func (s *Store) Logs() ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	l := s.js.StreamNames(ctx, jetstream.WithStreamListSubject(subjectPrefix+">"))
	var out []string
	for n := range l.Name() {
		if strings.HasPrefix(n, streamPrefix) {
			out = append(out, strings.TrimPrefix(n, streamPrefix))
		}
	}
	if err := l.Err(); err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// slogAdapter routes nats-server log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warnf(f string, v ...any)   { a.l.Warn(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatalf(f string, v ...any)  { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Errorf(f string, v ...any)  { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Debugf(f string, v ...any)  { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Tracef(f string, v ...any)  {}
