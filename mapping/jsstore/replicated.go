package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Replicated logs (cluster mode only) hold quorum queues: one stream per
// queue with up to three replicas on different nodes, no placement tag,
// and a name that is the same on every node (so any node creates or finds
// the same stream). Their names start with ReplicatedPrefix, which a
// node's own logs never do: those start with 8 hex digits and '-'
// (logPrefix), and 'q' is not a hex digit.
//
// What a PubAck means for them: JetStream sends it once the record is in
// the Raft log of a majority of the stream's replicas. The group syncer
// (groupsync.go) fsyncs this node's block files, which proves nothing for
// a replicated stream (the block may not even be written yet, and the
// copies that make the record safe are the followers'), so appends to a
// replicated log never wait for it. The embedded server keeps
// Options.SyncAlways off even with Config.SyncAlways: that option is
// server-wide (nats-server stream.go: every stream's file store and every
// Raft WAL, jetstream_cluster.go) and would make every write of the
// node's own R1 logs an fsync of its own, the cost the group syncer
// exists to avoid. So with --sync always a quorum queue's confirm means
// "written to the Raft log of a majority of its nodes": it survives the
// crash (kill -9) of any number of processes and the loss of a minority of
// machines, and not a simultaneous power loss of a majority.
const ReplicatedPrefix = "qq-"

// defaultReplicas is a replicated log's size when the caller does not
// ask for one (RabbitMQ's quorum queues default to three members too).
const defaultReplicas = 3

// leaderWait bounds how long an append to a replicated log is retried
// while the log has no leader: a Raft election takes 4 to 9 s after the
// leader's death (nats-server raft.go election timeouts).
const leaderWait = 10 * time.Second

// leaderRetry is the pause between those retries (nats.go's js.Publish
// waits as long after a 503).
const leaderRetry = 250 * time.Millisecond

// Replicated reports whether name is a replicated log of this cluster
// node (always false on a single node).
func (s *Store) Replicated(name string) bool {
	return s.cluster != nil && strings.HasPrefix(name, ReplicatedPrefix)
}

// ClusterSize is the number of nodes in the JetStream meta group (1 on a
// single node).
func (s *Store) ClusterSize() int {
	if s.cluster == nil {
		return 1
	}
	if jsz, err := s.ns.Jsz(nil); err == nil && jsz.Meta != nil && jsz.Meta.Size > 0 {
		return jsz.Meta.Size
	}
	return len(s.cluster.Peers)
}

// CreateReplicatedLog creates the replicated log name (which must start
// with ReplicatedPrefix) with replicas copies (0 → 3), bounded by the
// cluster size, or finds it when it exists: any node may call it with the
// same name, and a log that exists with another size is kept as it is.
func (s *Store) CreateReplicatedLog(name string, replicas int) error {
	if s.cluster == nil {
		return errors.New("jsstore: replicated logs need a cluster")
	}
	if !strings.HasPrefix(name, ReplicatedPrefix) {
		return fmt.Errorf("jsstore: replicated log %q does not start with %q", name, ReplicatedPrefix)
	}
	if err := checkName(name); err != nil {
		return err
	}
	if replicas <= 0 {
		replicas = defaultReplicas
	}
	replicas = max(1, min(replicas, s.ClusterSize()))
	cfg := logConfig(name)
	cfg.Replicas = replicas
	// Right after a node joins, the meta leader may not count it yet
	// ("insufficient resources", "no suitable peers"): retry for a while.
	err := s.createStream(cfg, s.js.CreateStream, func(err error) bool {
		return !errors.Is(err, ErrNoQuorum) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse)
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

// StepDownLog asks the log's Raft group for a new leader, preferring the
// node named preferred when it is one of its replicas ("" for any). It
// returns once the request was answered, not once the new leader runs.
func (s *Store) StepDownLog(name, preferred string) error {
	if !s.Replicated(name) {
		return fmt.Errorf("jsstore: %q is not a replicated log", name)
	}
	var req []byte
	if preferred != "" {
		req = fmt.Appendf(nil, `{"placement":{"preferred":%q}}`, preferred)
	}
	return s.api("$JS.API.STREAM.LEADER.STEPDOWN."+streamName(name), req)
}

// LogLeader reports which node leads the replicated log now ("" while
// it has none).
func (s *Store) LogLeader(name string) (string, error) {
	ci, err := s.logCluster(name)
	if err != nil {
		return "", err
	}
	return ci.leader, nil
}

// LogMembers reports a replicated log's leader, its members (the nodes
// holding a replica, leader first) and the members that are current (the
// leader and the followers caught up with it).
func (s *Store) LogMembers(name string) (leader string, members, online []string, err error) {
	ci, err := s.logCluster(name)
	if err != nil {
		return "", nil, nil, err
	}
	if ci.leader != "" {
		members = append(members, ci.leader)
		online = append(online, ci.leader)
	}
	for _, p := range ci.replicas {
		members = append(members, p.name)
		if p.current {
			online = append(online, p.name)
		}
	}
	return ci.leader, members, online, nil
}

// clusterInfo is a replicated log's Raft group: its leader and the other
// replicas.
type clusterInfo struct {
	leader   string
	replicas []replicaInfo
}

type replicaInfo struct {
	name    string
	current bool // caught up and not offline
}

// logCluster is a replicated log's group: from this node's own replica
// when this node leads it (an in-process call; the leader is the one
// that knows whether followers are current), else from the leader
// through the stream info API.
func (s *Store) logCluster(name string) (clusterInfo, error) {
	if !s.Replicated(name) {
		return clusterInfo{}, fmt.Errorf("jsstore: %q is not a replicated log", name)
	}
	if ci, ok := s.localClusterInfo()[name]; ok && ci.leader == s.cluster.NodeName {
		return ci, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return clusterInfo{}, ErrNotFound
	}
	if err != nil {
		return clusterInfo{}, s.wrap(err)
	}
	var ci clusterInfo
	if c := st.CachedInfo().Cluster; c != nil {
		ci.leader = c.Leader
		for _, p := range c.Replicas {
			ci.replicas = append(ci.replicas, replicaInfo{name: p.Name, current: p.Current && !p.Offline})
		}
	}
	return ci, nil
}

// localClusterInfo is the group of every replicated log this node holds
// a replica of, by log name, as this node's Raft groups know it (an
// in-process call, no request). A follower's leader is the one it last
// heard from; it becomes "" when the follower starts an election.
func (s *Store) localClusterInfo() map[string]clusterInfo {
	out := map[string]clusterInfo{}
	if s.cluster == nil {
		return out
	}
	jsz, err := s.ns.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil || jsz == nil {
		return out
	}
	for _, a := range jsz.AccountDetails {
		for _, st := range a.Streams {
			name, ok := strings.CutPrefix(st.Name, streamPrefix)
			if !ok || !strings.HasPrefix(name, ReplicatedPrefix) || st.Cluster == nil {
				continue
			}
			ci := clusterInfo{leader: st.Cluster.Leader}
			for _, p := range st.Cluster.Replicas {
				ci.replicas = append(ci.replicas, replicaInfo{name: p.Name, current: p.Current && !p.Offline})
			}
			out[name] = ci
		}
	}
	return out
}
