package mapping

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// DefaultMaxMessageSize is the largest message body accepted when
// Config.MaxMessageSize is zero.
const DefaultMaxMessageSize = 16 << 20

// Config configures the routing core. Only DataDir is required.
type Config struct {
	DataDir        string
	SyncAlways     bool  // fsync every store write (see mapping/README.md)
	MaxMessageSize int64 // 0 → DefaultMaxMessageSize
	Logger         *slog.Logger
	// Cluster, when set, makes this router one node of a cluster
	// (cluster.go); nil is a single node.
	Cluster *ClusterConfig
	// DefaultUser and DefaultPass are created (administrator, full
	// permissions on "/") on the first start; "" means guest/guest.
	DefaultUser string
	DefaultPass string
	// DefaultVHost is the vhost created on the first start; "" means "/".
	DefaultVHost string
	// DefaultQueueType is the x-queue-type given to a declaration without
	// one when the type can hold the queue (qtype.go): QueueTypeClassic
	// ("" too) or QueueTypeQuorum.
	DefaultQueueType string
	// LoopbackUsers may only connect from loopback; nil means ["guest"].
	LoopbackUsers []string
	Alarms        AlarmConfig
	Limits        Limits
	Paging        PagingConfig // how many ready messages stay in memory
	// Placement says which node homes a new queue in a cluster
	// (placement.go); the zero value homes it on the declaring node.
	Placement PlacementConfig
}

// Limits bound what clients can create; zero means no limit.
type Limits struct {
	MaxConnections int // per vhost
	MaxQueues      int // per vhost
}

// Router is the routing core: every front talks to it, it talks to the
// store. It owns the vhosts and, through them, every exchange, queue,
// binding and consumer.
type Router struct {
	cfg    Config
	log    *slog.Logger
	store  *jsstore.Store
	closed atomic.Bool

	mu     sync.RWMutex
	vhosts map[string]*VHost

	janitor *janitor
	// Paging (pager.go): body bytes of ready messages in memory over all
	// queues, the goroutines reading paged messages, and a counter that
	// names page logs.
	windowBytes atomic.Int64
	pagers      sync.WaitGroup
	pageLogs    atomic.Uint64
	id          identity
	stats       Stats
	alarms      alarms

	connMu sync.Mutex
	conns  map[*Conn]struct{}

	// PublishIDs replayed at start, until a front takes them (persist.go).
	recoveredMu sync.Mutex
	recovered   map[[2]string]time.Time // (vhost, ID) -> published

	cluster *clusterState // heartbeats (cluster.go); nil on a single node
	meta    *metaState    // the metadata watcher (metawatch.go); nil on a single node
	// idWriteMu serialises changes of users, permissions and vhosts:
	// held across the store write and the change in memory (by the
	// watcher too). It is taken while holding no other core lock, and
	// comes before VHost.topoMu (a vhost's deletion deletes its queues).
	idWriteMu sync.Mutex
	// paramWatch is told of parameters changed on other nodes
	// (WatchParameters).
	paramWatch atomic.Pointer[func(Parameter, bool)]
	own        ownership // replicated quorum queues (ownership.go)
	link       *link     // the node link (link.go); nil on a single node
	started    time.Time
}

// Open starts the store, loads the metadata, replays durable queues and
// returns a router ready to serve.
func Open(cfg Config) (*Router, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("mapping: Config.DataDir is required")
	}
	cfg.Paging = cfg.Paging.withDefaults()
	if err := cfg.Placement.Check(); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	st, err := jsstore.Open(jsstore.Config{Dir: cfg.DataDir, SyncAlways: cfg.SyncAlways, Logger: cfg.Logger, Cluster: cfg.Cluster})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	r := &Router{cfg: cfg, log: cfg.Logger, store: st, vhosts: map[string]*VHost{}, conns: map[*Conn]struct{}{}, started: time.Now()}
	r.own = ownership{queues: map[string]*Queue{}, loaded: map[*Queue]struct{}{}}
	r.janitor = newJanitor(r)
	if cfg.Cluster != nil {
		r.meta = newMetaState(r)
	}
	r.startAlarms()
	purged, err := r.recover()
	if err != nil {
		err = fmt.Errorf("recover the definitions and queues: %w", err)
	} else {
		purged, complete := r.startMetaWatch(purged)
		if err = r.loadHomeQueues(purged, complete); err != nil {
			err = fmt.Errorf("recover the queues: %w", err)
		} else if err = r.startCluster(); err != nil {
			err = fmt.Errorf("join the cluster's heartbeats and node link: %w", err)
		}
	}
	if err == nil {
		if err = r.startOwnership(); err != nil {
			err = fmt.Errorf("watch the quorum queues' leaders: %w", err)
		}
	}
	if err != nil {
		r.stopMetaWatch()
		r.janitor.stop()
		r.stopAlarms()
		st.Close()
		return nil, err
	}
	return r, nil
}

// MaxMessageSize is the largest body the core accepts.
func (r *Router) MaxMessageSize() int64 { return r.cfg.MaxMessageSize }

// Healthy reports nil while the router serves.
func (r *Router) Healthy() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return nil
}

// VHost returns the named vhost, or a KindNotAllowed error as AMQP's
// connection.open needs it.
func (r *Router) VHost(name string) (*VHost, error) {
	vh := r.vhostIfAny(name)
	if vh == nil && r.barrier() {
		vh = r.vhostIfAny(name) // created on another node a moment ago
	}
	if vh == nil {
		return nil, errorf(KindNotAllowed, "vhost %s not found", name)
	}
	return vh, nil
}

// closeWait bounds each wait of Close for the store: outstanding writes,
// then the store's own shutdown.
const closeWait = 10 * time.Second

// Close stops the janitor, waits (a bounded time) for pending store
// writes and closes the store. Fronts must be shut down first.
func (r *Router) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	// Queue timers (TTL, x-expires) must not act on a closed store.
	r.mu.RLock()
	for _, vh := range r.vhosts {
		vh.mu.RLock()
		for _, q := range vh.queues {
			q.mu.Lock()
			q.stopTimersLocked()
			q.mu.Unlock()
		}
		vh.mu.RUnlock()
	}
	r.mu.RUnlock()
	r.janitor.stop()
	r.stopAlarms()
	r.stopLink()
	r.stopCluster()
	r.stopMetaWatch()
	if err := r.store.FlushWithin(closeWait); err != nil {
		r.log.Warn("store writes still pending at shutdown", "err", err)
	}
	r.janitor.runOnce(true) // apply deletes whose writes just finished
	err := r.store.CloseWithin(closeWait)
	r.pagers.Wait() // their reads fail fast on a closed store
	return err
}
