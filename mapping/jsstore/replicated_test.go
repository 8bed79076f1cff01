package jsstore

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// leaderLog records what a store's leadership callback reported.
type leaderLog struct {
	mu   sync.Mutex
	last map[string]string
}

func (l *leaderLog) set(log, leader string) {
	l.mu.Lock()
	l.last[log] = leader
	l.mu.Unlock()
}

func (l *leaderLog) get(log string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[log]
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type acked struct {
	seq uint64
	rec string
}

// appendAll appends recs to log and returns the acknowledged ones and
// how many failed.
func appendAll(s *Store, log string, recs []string) ([]acked, int) {
	var mu sync.Mutex
	var ok []acked
	failed := 0
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		s.Append(log, []byte(r), func(seq uint64, err error) {
			mu.Lock()
			if err == nil {
				ok = append(ok, acked{seq, r})
			} else {
				failed++
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	return ok, failed
}

// TestReplicatedLogFailover: a replicated log created from one node (and
// again, idempotently, from another) gets three replicas; records
// appended with PubAcks survive the crash of the leader's node; the log
// gets a new leader, which the survivors' leadership callbacks report;
// appends started right after the crash are retried until it is there;
// every acknowledged record is readable from the new leader; the
// per-node orphan sweep (Logs) never lists the replicated log; purge
// and single deletes work on it.
func TestReplicatedLogFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	stores := openCluster(t, freePorts(t, 3), "s3cret")
	const name = ReplicatedPrefix + "orders_0123456789abcdef"
	seen := make([]*leaderLog, len(stores))
	for i, s := range stores {
		seen[i] = &leaderLog{last: map[string]string{}}
		if err := s.WatchLeaders(seen[i].set); err != nil {
			t.Fatal(err)
		}
	}
	if err := stores[0].CreateReplicatedLog(name, 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := stores[1].CreateReplicatedLog(name, 5); err != nil {
		t.Fatalf("create again from n2: %v", err)
	}
	for _, s := range stores {
		s.TrackLog(name)
	}
	leader, members, _, err := stores[2].LogMembers(name)
	if err != nil || leader == "" || len(members) != 3 {
		t.Fatalf("members: leader %q members %v err %v; want a leader and 3 members", leader, members, err)
	}
	for i, s := range stores {
		waitFor(t, 10*time.Second, fmt.Sprintf("n%d's callback reports %s", i+1, leader), func() bool { return seen[i].get(name) == leader })
		logs, err := s.Logs()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(logs, name) {
			t.Fatalf("n%d's Logs (the orphan sweep's list) holds the replicated log: %v", i+1, logs)
		}
	}

	var all []acked
	var batch []string
	for i := range 50 {
		batch = append(batch, fmt.Sprintf("before-%d", i))
	}
	got, failed := appendAll(stores[0], name, batch)
	if failed != 0 {
		t.Fatalf("%d appends failed with a leader in place", failed)
	}
	all = append(all, got...)

	li := slices.IndexFunc(stores, func(s *Store) bool { return s.cluster.NodeName == leader })
	stores[li].Crash()
	var rest []int
	for i := range stores {
		if i != li {
			rest = append(rest, i)
		}
	}
	w := stores[rest[0]]
	// Appends right after the crash: the log has no leader; they are
	// retried, and either acknowledged (then they must be readable) or
	// failed, never acknowledged without being stored.
	batch = batch[:0]
	for i := range 20 {
		batch = append(batch, fmt.Sprintf("during-%d", i))
	}
	got, _ = appendAll(w, name, batch)
	all = append(all, got...)

	var newLeader string
	waitFor(t, 20*time.Second, "a new leader", func() bool {
		l, err := w.LogLeader(name)
		if err == nil && l != "" && l != leader {
			newLeader = l
			return true
		}
		return false
	})
	for _, i := range rest {
		waitFor(t, 10*time.Second, fmt.Sprintf("n%d's callback reports the new leader %s", i+1, newLeader), func() bool { return seen[i].get(name) == newLeader })
	}
	batch = batch[:0]
	for i := range 50 {
		batch = append(batch, fmt.Sprintf("after-%d", i))
	}
	got, failed = appendAll(w, name, batch)
	if failed != 0 {
		t.Fatalf("%d appends failed after the new leader %s was elected", failed, newLeader)
	}
	all = append(all, got...)

	ni := slices.IndexFunc(stores, func(s *Store) bool { return s.cluster.NodeName == newLeader })
	ns := stores[ni]
	recs, err := ns.ReadBatch(name, 1, 1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	have := map[uint64]string{}
	for _, r := range recs {
		have[r.Seq] = string(r.Data)
	}
	for _, a := range all {
		if have[a.seq] != a.rec {
			t.Fatalf("acknowledged record %q (seq %d) reads back as %q", a.rec, a.seq, have[a.seq])
		}
	}
	if len(recs) < 100 {
		t.Fatalf("read %d records, want at least the 100 appended with a leader in place", len(recs))
	}

	// The janitor's operations on the new leader's node.
	if err := ns.PurgeBelow(name, 11); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if err := ns.DeleteSeq(name, 20); err != nil {
		t.Fatalf("delete seq: %v", err)
	}
	first, _, count, err := ns.LogState(name)
	if err != nil || first != 11 || count != uint64(len(recs))-11 {
		t.Fatalf("after purge below 11 and delete of 20: first %d count %d err %v; want 11 and %d", first, count, err, len(recs)-11)
	}
}

// TestReplicatedAppendWaitsForALeader: an append made while a replicated
// log has no leader (two of its three nodes crashed) is not failed at
// once: it is retried, and acknowledged once a crashed node is back and
// a leader is elected; the record is then readable.
func TestReplicatedAppendWaitsForALeader(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	addrs := freePorts(t, 3)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	cfg := func(i int) Config {
		return Config{Dir: dirs[i], Logger: quietLogger(), Cluster: &ClusterConfig{
			NodeName: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Peers: addrs, Secret: "s3cret", FormTimeout: 20 * time.Second,
		}}
	}
	stores := openClusterWith(t, 3, cfg)
	const name = ReplicatedPrefix + "wait_0123456789abcdef"
	if err := stores[0].CreateReplicatedLog(name, 0); err != nil {
		t.Fatal(err)
	}
	if got, failed := appendAll(stores[0], name, []string{"first"}); failed != 0 || len(got) != 1 {
		t.Fatalf("first append: %v, %d failed", got, failed)
	}
	leader, err := stores[0].LogLeader(name)
	if err != nil {
		t.Fatal(err)
	}
	li := slices.IndexFunc(stores, func(s *Store) bool { return s.cluster.NodeName == leader })
	other := (li + 1) % 3
	survivor := stores[(li+2)%3]
	stores[li].Crash()
	stores[other].Crash()

	type result struct {
		seq uint64
		err error
	}
	res := make(chan result, 1)
	survivor.Append(name, []byte("while-leaderless"), func(seq uint64, err error) { res <- result{seq, err} })
	select {
	case r := <-res:
		t.Fatalf("append with no leader completed at once: seq %d err %v", r.seq, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	stores[other].Close()
	back, err := Open(cfg(other))
	if err != nil {
		t.Fatalf("reopen n%d: %v", other+1, err)
	}
	stores[other] = back
	r := <-res
	if r.err != nil {
		t.Fatalf("append made while the log had no leader: %v (want it acknowledged once a leader is back)", r.err)
	}
	recs, err := survivor.ReadBatch(name, r.seq, 1, 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Data) != "while-leaderless" {
		t.Fatalf("record %d reads back as %v (err %v)", r.seq, recs, err)
	}
}
