package jsstore

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Leadership of replicated logs. JetStream announces a new stream leader
// with an advisory, and a leader that lost its quorum with another; both
// are core NATS messages (at most once), so the watcher also reconciles
// every reconcileInterval from this node's own Raft groups (an in-process
// call), and a missed advisory costs at most that long. The owner of the
// queue (mapping/ownership.go) hears of every change through one
// callback.

const (
	leaderAdvisory     = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."
	quorumLostAdvisory = "$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST."
	reconcileInterval  = time.Second
	// stepDownWait bounds how long Close waits for the logs this node
	// leads to elect another leader.
	stepDownWait = 3 * time.Second
)

// LeaderFunc is told that log is now led by node leader ("" while it has
// no leader). It runs on the watcher's goroutine, one call at a time, and
// may call the store (reads, appends) but not WatchLeaders or Close.
type LeaderFunc func(log, leader string)

// leaderWatch is the watcher's state; its goroutine is started by
// WatchLeaders and stopped by Close (stopLeaders).
type leaderWatch struct {
	mu   sync.Mutex
	logs map[string]*trackedLog // tracked replicated logs
	fn   LeaderFunc
	subs []*nats.Subscription
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

type trackedLog struct {
	leader   string // last reported
	reported bool
}

// WatchLeaders starts reporting leadership changes of the tracked
// replicated logs (TrackLog) to fn. It is called once; on a single node
// it does nothing.
func (s *Store) WatchLeaders(fn LeaderFunc) error {
	if s.cluster == nil {
		return nil
	}
	w := &s.leaders
	w.mu.Lock()
	if w.fn != nil || w.quit != nil {
		w.mu.Unlock()
		return nil
	}
	w.fn = fn
	if w.logs == nil {
		w.logs = map[string]*trackedLog{}
	}
	w.kick = make(chan struct{}, 1)
	w.quit = make(chan struct{})
	w.done = make(chan struct{})
	w.mu.Unlock()
	for _, subj := range []string{leaderAdvisory + "*", quorumLostAdvisory + "*"} {
		sub, err := s.nc.Subscribe(subj, func(m *nats.Msg) {
			var adv struct {
				Stream string `json:"stream"`
			}
			if json.Unmarshal(m.Data, &adv) == nil && strings.HasPrefix(adv.Stream, streamPrefix+ReplicatedPrefix) {
				w.poke()
			}
		})
		if err != nil {
			s.stopLeaders()
			return s.wrap(err)
		}
		w.mu.Lock()
		w.subs = append(w.subs, sub)
		w.mu.Unlock()
	}
	go s.watchLeaders(w.quit, w.done)
	return nil
}

func (w *leaderWatch) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// TrackLog makes the watcher report the leader of replicated log name,
// the first time soon after the call.
func (s *Store) TrackLog(name string) {
	if !s.Replicated(name) {
		return
	}
	w := &s.leaders
	w.mu.Lock()
	if w.logs == nil {
		w.logs = map[string]*trackedLog{}
	}
	if w.logs[name] == nil {
		w.logs[name] = &trackedLog{}
	}
	kick := w.kick
	w.mu.Unlock()
	if kick != nil {
		w.poke()
	}
}

// tracked lists the tracked logs (a copy: callers use it unlocked).
func (w *leaderWatch) tracked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.logs))
	for n := range w.logs {
		names = append(names, n)
	}
	return names
}

// UntrackLog stops reporting name (its queue is gone).
func (s *Store) UntrackLog(name string) {
	w := &s.leaders
	w.mu.Lock()
	delete(w.logs, name)
	w.mu.Unlock()
}

// watchLeaders is the watcher's goroutine; stopLeaders closes quit and
// waits for done.
func (s *Store) watchLeaders(quit <-chan struct{}, done chan<- struct{}) {
	w := &s.leaders
	defer close(done)
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	s.reconcileLeaders(quit) // logs tracked before the watcher started
	for {
		select {
		case <-quit:
			return
		case <-w.kick:
		case <-t.C:
		}
		s.reconcileLeaders(quit)
	}
}

// reconcileLeaders reports every tracked log whose leader changed since
// its last report.
func (s *Store) reconcileLeaders(quit <-chan struct{}) {
	w := &s.leaders
	names := w.tracked()
	if len(names) == 0 {
		return
	}
	local := s.localClusterInfo()
	for _, name := range names {
		select {
		case <-quit:
			return
		default:
		}
		ci, ok := local[name]
		w.mu.Lock()
		tl := w.logs[name]
		leaderless := tl != nil && tl.reported && tl.leader == ""
		w.mu.Unlock()
		if !ok || ci.leader == "" && leaderless {
			// No replica here (a cluster larger than the log), or this
			// replica still knows no leader since it reported none (it
			// may lag long after a partition heals while the others
			// elected one): ask.
			asked, err := s.logCluster(name)
			if err != nil && !ok {
				continue
			}
			if err == nil {
				ci = asked
			}
		}
		w.mu.Lock()
		tl = w.logs[name]
		changed := tl != nil && (!tl.reported || tl.leader != ci.leader)
		if changed {
			tl.leader, tl.reported = ci.leader, true
		}
		fn := w.fn
		w.mu.Unlock()
		if changed {
			fn(name, ci.leader)
		}
	}
}

// stopLeaders stops the watcher and waits for its goroutine (and so for
// a callback in progress).
func (s *Store) stopLeaders() {
	w := &s.leaders
	w.mu.Lock()
	subs := w.subs
	w.subs = nil
	quit, done := w.quit, w.done
	w.quit = nil
	w.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	if quit != nil {
		close(quit)
		<-done
	}
}

// stepDownLeaders asks every tracked log this node leads for another
// leader, and waits (up to stepDownWait) until this node leads none of
// them: on a graceful shutdown the queues fail over in about a second
// instead of the 4 to 9 s of an election after a crash.
func (s *Store) stepDownLeaders() {
	if s.cluster == nil {
		return
	}
	var led []string
	for _, name := range s.leaders.tracked() {
		if s.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, streamName(name)) {
			led = append(led, name)
		}
	}
	for _, name := range led {
		if err := s.ns.JetStreamStepdownStream(server.DEFAULT_GLOBAL_ACCOUNT, streamName(name)); err != nil {
			s.log.Warn("step down of a replicated log failed", "log", name, "err", err)
		}
	}
	deadline := time.Now().Add(stepDownWait)
	for _, name := range led {
		for s.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, streamName(name)) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Crash stops the embedded server at once, as a killed process stops:
// no leader step-down, no flush of pending appends, the routes simply
// drop. It exists for fault tests of a cluster run in one process; Close
// still releases the rest afterwards.
func (s *Store) Crash() {
	s.stopLeaders()
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
