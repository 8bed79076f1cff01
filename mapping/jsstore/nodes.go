package jsstore

import (
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

// ClusterStatus is what this node's nats-server knows about the cluster.
type ClusterStatus struct {
	Clustered  bool   // false on a single node (the rest is then empty)
	Name       string // cluster name
	Node       string // this node's name
	MetaLeader string // node that leads the JetStream meta group; "" while there is none
	MetaSize   int    // nodes in the meta group as this node knows it
	Quorum     int    // nodes the meta group needs to have a leader
	Peers      []PeerStatus
	// RoutesRefused counts route connections refused (wrong secret, TLS
	// failure) in either direction since start; LastRefused is the last
	// one as nats-server logged it.
	RoutesRefused int
	LastRefused   string
}

// PeerStatus is one node of the cluster as this node sees it: every
// member of the JetStream meta group and every node with a route.
type PeerStatus struct {
	Name           string
	Self           bool
	RouteConnected bool          // this node has a route to it (always true for Self)
	MetaLeader     bool          // it leads the JetStream meta group
	MetaCurrent    bool          // the meta leader sees it caught up (known on the leader and for Self)
	MetaOffline    bool          // the meta group considers it offline
	MetaActive     time.Duration // since the meta leader last heard from it (as known here)
	MetaLag        uint64
}

// ClusterStatus reports the cluster's routes and JetStream meta group.
func (s *Store) ClusterStatus() ClusterStatus {
	c := s.cluster
	if c == nil {
		return ClusterStatus{}
	}
	st := ClusterStatus{Clustered: true, Name: c.Name, Node: c.NodeName}
	st.RoutesRefused, st.LastRefused = s.refused.get()
	peers := map[string]*PeerStatus{c.NodeName: {Name: c.NodeName, Self: true, RouteConnected: true}}
	peer := func(name string) *PeerStatus {
		p := peers[name]
		if p == nil {
			p = &PeerStatus{Name: name}
			peers[name] = p
		}
		return p
	}
	for _, n := range connectedRoutes(s.ns) {
		peer(n).RouteConnected = true
	}
	if jsz, err := s.ns.Jsz(nil); err == nil && jsz.Meta != nil {
		m := jsz.Meta
		st.MetaLeader, st.MetaSize, st.Quorum = m.Leader, m.Size, m.QuorumNeeded
		if m.Leader != "" {
			peer(m.Leader).MetaLeader = true
		}
		for _, r := range m.Replicas {
			p := peer(r.Name)
			p.MetaCurrent, p.MetaOffline, p.MetaActive, p.MetaLag = r.Current, r.Offline, r.Active, r.Lag
		}
	}
	peers[c.NodeName].MetaCurrent = s.ns.JetStreamIsCurrent()
	for _, p := range peers {
		st.Peers = append(st.Peers, *p)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Name < st.Peers[j].Name })
	return st
}

// ---- a small bus over core NATS between the nodes of a cluster ----

// ErrNotClustered is returned by the bus calls on a single node.
var ErrNotClustered = errors.New("jsstore: not in a cluster")

// Broadcast publishes data on subject to every node that listens (core
// NATS: at most once, no persistence).
func (s *Store) Broadcast(subject string, data []byte) error {
	if s.cluster == nil {
		return ErrNotClustered
	}
	return s.wrap(s.nc.Publish(subject, data))
}

// Listen calls fn (on one goroutine of nats.go, one call at a time) for
// every message published on subject by any node, this one included,
// until stop is called or the store closes.
func (s *Store) Listen(subject string, fn func(data []byte)) (stop func(), err error) {
	if s.cluster == nil {
		return nil, ErrNotClustered
	}
	sub, err := s.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, s.wrap(err)
	}
	return func() { sub.Unsubscribe() }, nil
}
