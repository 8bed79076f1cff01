package mapping

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// ClusterConfig makes this Warren one node of a cluster; see
// jsstore.ClusterConfig and docs/cluster.md. The nodes form one NATS
// cluster with clustered JetStream, know about each other and share the
// metadata (metawatch.go); each queue's messages are on its home node.
type ClusterConfig = jsstore.ClusterConfig

// ClusterStatus is the NATS side of the cluster as this node sees it.
type ClusterStatus = jsstore.ClusterStatus

// Heartbeats: every node publishes its NodeStats every hbInterval; a
// node that has a route and was heard from within hbTimeout is running.
const (
	hbSubject  = "warren.node.hb"
	hbInterval = time.Second
	hbTimeout  = 5 * time.Second
)

// NodeInfo is one node of the cluster (the only node on a single node).
type NodeInfo struct {
	Name    string
	Self    bool
	Running bool
	// Stats is the node's last heartbeat (this node's own, fresh, for
	// Self); nil for a node never heard from since this node started.
	Stats *NodeStats
	// LastSeen is how long ago its last heartbeat arrived (0 for Self).
	LastSeen time.Duration
	// The NATS view (zero on a single node).
	RouteConnected bool
	MetaLeader     bool
	MetaCurrent    bool
	MetaOffline    bool
	MetaLag        uint64
	// For Self: route connections refused (wrong secret, TLS) since
	// start, and the last one as logged.
	RoutesRefused int
	LastRefused   string
	// For Self: why definitions cannot be changed from this node now
	// (it hears no other node and has no route to any: checkCutOff), "" when they can.
	CutOff string
}

// heartbeat is what a node publishes on hbSubject.
type heartbeat struct {
	Node        string    `json:"node"`
	Incarnation uint64    `json:"incarnation"` // random per process start
	Stats       NodeStats `json:"stats"`
	// Stopping is a node's last heartbeat at a graceful stop, sent once
	// its link is closed: nothing that incarnation was asked will be
	// answered, so the others need not wait hbTimeout to know it.
	Stopping bool `json:"stopping,omitempty"`
}

// clusterState collects the other nodes' heartbeats. Its goroutine (the
// publisher) is started by startCluster and stopped by stopCluster.
type clusterState struct {
	node        string
	incarnation uint64
	stopListen  func()
	// reaping: a reapTransient goroutine runs (at most one; it deletes
	// through the store and must not hold up the heartbeats); reapers
	// is waited for by stopCluster.
	reaping atomic.Bool
	reapers sync.WaitGroup
	cutOff  atomic.Bool // what checkCutOff last told the store
	// since is when this node began to listen to heartbeats: before
	// hbTimeout has passed since, a node not heard from yet is not
	// known to be down (recover may take long, so not Router.started).
	since      time.Time
	quit, done chan struct{}

	mu    sync.Mutex
	heard map[string]heardNode
	// said is, by node, the last incarnation that said it stops (its
	// Stopping heartbeat): kept when the node's next process is heard,
	// so that the link still knows what that incarnation left
	// unanswered.
	said map[string]stoppedNode
}

type heardNode struct {
	at time.Time
	hb heartbeat
}

// running reports whether the node was heard from within hbTimeout
// before now, and has not said it stops.
func (h heardNode) running(now time.Time) bool {
	return !h.hb.Stopping && now.Sub(h.at) < hbTimeout
}

// startCluster starts the heartbeats when the router runs in a cluster.
func (r *Router) startCluster() error {
	if r.cfg.Cluster == nil {
		return nil
	}
	var b [8]byte
	rand.Read(b[:])
	cs := &clusterState{node: r.cfg.Cluster.NodeName, incarnation: binary.BigEndian.Uint64(b[:]),
		quit: make(chan struct{}), done: make(chan struct{}), heard: map[string]heardNode{}, said: map[string]stoppedNode{},
		since: time.Now()}
	stop, err := r.store.Listen(hbSubject, func(data []byte) {
		var hb heartbeat
		if json.Unmarshal(data, &hb) != nil || hb.Node == "" || hb.Node == cs.node {
			return
		}
		now := time.Now()
		cs.mu.Lock()
		cs.heard[hb.Node] = heardNode{at: now, hb: hb}
		if hb.Stopping {
			cs.said[hb.Node] = stoppedNode{inc: hb.Incarnation, at: now}
		}
		cs.mu.Unlock()
		if !hb.Stopping && cs.cutOff.Load() {
			r.checkCutOff(cs) // heard again: writes go to the cluster at once
		}
	})
	if err != nil {
		return err
	}
	cs.stopListen = stop
	r.cluster = cs // before the link's handlers may look at it
	if err := r.startLink(cs); err != nil {
		r.cluster = nil
		stop()
		return err
	}
	go r.heartbeatLoop(cs)
	return nil
}

// heartbeatLoop publishes this node's stats until stopCluster.
func (r *Router) heartbeatLoop(cs *clusterState) {
	defer close(cs.done)
	t := time.NewTicker(hbInterval)
	defer t.Stop()
	for {
		data, _ := json.Marshal(heartbeat{Node: cs.node, Incarnation: cs.incarnation, Stats: r.LocalStats()})
		if err := r.store.Broadcast(hbSubject, data); err != nil {
			r.log.Debug("heartbeat not sent", "err", err)
		}
		r.checkCutOff(cs)
		if cs.reaping.CompareAndSwap(false, true) {
			cs.reapers.Go(func() {
				defer cs.reaping.Store(false)
				r.reapTransient(cs)
			})
		}
		select {
		case <-cs.quit:
			return
		case <-t.C:
		}
	}
}

func (r *Router) stopCluster() {
	cs := r.cluster
	if cs == nil {
		return
	}
	close(cs.quit)
	<-cs.done
	// The link is closed (stopLink runs first) and no heartbeat follows
	// this one.
	data, _ := json.Marshal(heartbeat{Node: cs.node, Incarnation: cs.incarnation, Stats: r.LocalStats(), Stopping: true})
	if err := r.store.Broadcast(hbSubject, data); err != nil {
		r.log.Debug("last heartbeat not sent", "err", err)
	}
	cs.reapers.Wait()
	cs.stopListen()
}

// checkCutOff tells the store whether this node is cut off from its
// cluster: it has heard no other node for hbTimeout and has no route to
// any. Such a node cannot get a write committed (the metadata buckets
// have at least two replicas in a cluster of two or more nodes); told
// so, the store fails a metadata write at once with the reason, instead
// of waiting out its timeout for "context deadline exceeded" (a declare
// on the cut-off side of a partition, or on the last node left
// running). Heartbeats alone would be wrong while the other nodes'
// Warren is still starting (no heartbeats yet, but their JetStream,
// reached by routes, takes part in writes). Only a heartbeat lifts it
// (heard, below): a route counts from the first INFO, so a connection
// that is accepted and then cut shows up for a moment.
func (r *Router) checkCutOff(cs *clusterState) {
	if r.cfg.Cluster.ConfiguredSize() < 2 || time.Since(cs.since) < hbTimeout {
		return
	}
	now := time.Now()
	heard := false
	cs.mu.Lock()
	for _, h := range cs.heard {
		if h.running(now) {
			heard = true
			break
		}
	}
	cs.mu.Unlock()
	switch {
	case heard && cs.cutOff.Load():
		cs.cutOff.Store(false)
		r.store.SetCutOff(nil)
		r.log.Info("hearing other nodes again: definitions can be changed from this node")
	case !heard && !cs.cutOff.Load() && !r.store.Routed():
		cs.cutOff.Store(true)
		r.store.SetCutOff(fmt.Errorf("%w: node %s hears no other node and has no route to any, so definitions cannot be changed from it until it hears one again", jsstore.ErrCutOff, cs.node))
		r.log.Warn("cut off from the cluster: metadata writes fail at once", "node", cs.node)
	}
}

// nodeRunning reports whether node was heard from within hbTimeout
// (always true for this node).
func (r *Router) nodeRunning(node string) bool {
	cs := r.cluster
	if cs == nil || node == cs.node {
		return true
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	h, ok := cs.heard[node]
	return ok && h.running(time.Now())
}

// nodeIncarnation is the incarnation of node's last heartbeat, 0 when
// none was heard (or node is this one).
func (r *Router) nodeIncarnation(node string) uint64 {
	cs := r.cluster
	if cs == nil {
		return 0
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.heard[node].hb.Incarnation
}

// nodeSilent reports whether node is known to be down: heard from and
// silent for hbTimeout since, or never heard from although this node
// has run for hbTimeout. A node not heard from yet right after this one
// started is not (its first heartbeat may be on its way).
func (r *Router) nodeSilent(node string) bool {
	cs := r.cluster
	if cs == nil || node == cs.node {
		return false
	}
	cs.mu.Lock()
	h, ok := cs.heard[node]
	cs.mu.Unlock()
	if !ok {
		return time.Since(cs.since) >= hbTimeout
	}
	return !h.running(time.Now())
}

// NodeName is this node's name: the configured one in a cluster, "" on a
// single node (the fronts name it themselves, as they always did).
func (r *Router) NodeName() string {
	if r.cfg.Cluster == nil {
		return ""
	}
	return r.cfg.Cluster.NodeName
}

// ClusterStatus reports the routes and the JetStream meta group.
func (r *Router) ClusterStatus() ClusterStatus { return r.store.ClusterStatus() }

// Nodes lists the nodes of the cluster, sorted by name: every node the
// JetStream meta group or a route knows of, and every node heard from.
// On a single node it is this node alone.
func (r *Router) Nodes() []NodeInfo {
	self := r.LocalStats()
	cs := r.cluster
	if cs == nil {
		return []NodeInfo{{Self: true, Running: true, Stats: &self}}
	}
	st := r.store.ClusterStatus()
	nodes := map[string]*NodeInfo{}
	for _, p := range st.Peers {
		nodes[p.Name] = &NodeInfo{Name: p.Name, Self: p.Self, RouteConnected: p.RouteConnected,
			MetaLeader: p.MetaLeader, MetaCurrent: p.MetaCurrent, MetaOffline: p.MetaOffline, MetaLag: p.MetaLag}
	}
	me := nodes[cs.node]
	if me == nil {
		me = &NodeInfo{Name: cs.node, Self: true, RouteConnected: true}
		nodes[cs.node] = me
	}
	me.Running, me.Stats = true, &self
	me.RoutesRefused, me.LastRefused = st.RoutesRefused, st.LastRefused
	if err := r.store.CutOff(); err != nil {
		me.CutOff = err.Error()
	}
	now := time.Now()
	cs.mu.Lock()
	for name, h := range cs.heard {
		n := nodes[name]
		if n == nil {
			n = &NodeInfo{Name: name}
			nodes[name] = n
		}
		stats := h.hb.Stats
		n.Stats, n.LastSeen = &stats, now.Sub(h.at)
		n.Running = n.RouteConnected && h.running(now)
	}
	cs.mu.Unlock()
	out := make([]NodeInfo, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// reapTransient deletes the transient queues (exclusive, non-durable,
// server-named) of nodes not heard from for hbTimeout, with their
// bindings, so that the other nodes stop routing to them, as RabbitMQ
// deletes a node's exclusive queues when it goes down. One node does it:
// the lowest-named live one. A node that restarts deletes its own at
// start (recover); deleting twice is harmless.
func (r *Router) reapTransient(cs *clusterState) {
	now := time.Now()
	if now.Sub(cs.since) < hbTimeout {
		return // not heard from everyone yet
	}
	alive := map[string]bool{cs.node: true}
	lowest := cs.node
	cs.mu.Lock()
	for name, h := range cs.heard {
		if h.running(now) {
			alive[name] = true
			lowest = min(lowest, name)
		}
	}
	cs.mu.Unlock()
	if lowest != cs.node {
		return
	}
	var dead []*Queue
	r.mu.RLock()
	for _, vh := range r.vhosts {
		vh.mu.RLock()
		for _, q := range vh.queues {
			if home := q.homeNode(); home != "" && !alive[home] && !q.durableLog() {
				dead = append(dead, q)
			}
		}
		vh.mu.RUnlock()
	}
	r.mu.RUnlock()
	for _, q := range dead {
		select {
		case <-cs.quit:
			return // shutting down: the next live node finishes
		default:
		}
		r.log.Info("deleting a transient queue of a node that is gone", "vhost", q.vh.name, "queue", q.name, "node", q.homeNode(), "by", cs.node)
		q.vh.deleteQueue(q)
	}
}
