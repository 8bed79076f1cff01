package mapping

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Quorum queues in a cluster (mapping/README.md "Replicated quorum
// queues"): a durable quorum queue's log is a replicated stream (R3, or
// the cluster size when smaller), and its home is the node whose
// embedded server leads that stream's Raft group. The store's
// leadership watcher (jsstore/leaders.go) reports every change; this
// file moves the home with it:
//
//   - takeover (this node became the leader): the queue is loaded from
//     its log as a restart loads it (window, paged rest, purged runs),
//     every message marked redelivered (the old home may have delivered
//     it), its clocks start and it dispatches to local consumers;
//   - release (another node leads, or none does): the queue stops here:
//     its local consumers stay subscribed, as RabbitMQ's quorum queue
//     consumers do across a leader change: each becomes a consumer
//     served through the link by the new home (handOverConsumersLocked),
//     their unacked deliveries stay in their channels' books but
//     settling one does nothing (the new home has loaded them and
//     delivers them again, redelivered), and the in-memory window is
//     dropped.
//
// JetStream fences a deposed leader: it cannot commit, so an append it
// still makes gets no PubAck and its publisher no confirm (the appender
// only reports success on a PubAck, jsstore/append.go).

// quorumLogName is the replicated log of quorum queue (vhost, queue): the
// same name on every node (the stream is shared), which a node's own
// logs (8 hex digits of the node and '-') can never have. It is the one
// place that names it.
func quorumLogName(vhost, queue string) string {
	return jsstore.ReplicatedPrefix + logName(vhost, queue)
}

// replicatedQuorum reports whether declaring s makes a replicated log:
// a durable quorum queue of a cluster node. On a single node a quorum
// queue is a durable queue on the node's own log, as before.
func (r *Router) replicatedQuorum(s QueueSpec) bool {
	return r.cfg.Cluster != nil && s.Durable && !s.Exclusive && queueTypeOf(s.Args) == QueueTypeQuorum
}

// durableLogName names the log of a new durable queue.
func (r *Router) durableLogName(vhost string, s QueueSpec) string {
	if r.replicatedQuorum(s) {
		return quorumLogName(vhost, s.Name)
	}
	return r.store.LogPrefix() + logName(vhost, s.Name) // prefix: per node in a cluster
}

// ownership is the router's set of replicated queues; its mutex is a
// leaf (taken alone, never with a queue's).
type ownership struct {
	mu     sync.Mutex
	queues map[string]*Queue   // replicated log -> its queue on this node
	loaded map[*Queue]struct{} // queues this node took over (it is their home)
}

// leaderMoveWait bounds how long a declare waits for the new log's
// leader to move to the declaring node.
const leaderMoveWait = 10 * time.Second

// takeoverWait bounds how long a takeover waits for its log's state; past
// it the node steps down so that another one can serve the queue.
const takeoverWait = 30 * time.Second

// createDurableLog creates q's log at declare. A replicated log gets its
// leader on this node when it can (the declaring client is here: RabbitMQ's
// client-local leader locator), so the new queue starts at home.
func (r *Router) createDurableLog(q *Queue) error {
	if !r.store.Replicated(q.logName) {
		return r.store.CreateLog(q.logName)
	}
	size, _ := asInt(q.spec.Args["x-quorum-initial-group-size"])
	if err := r.store.CreateReplicatedLog(q.logName, int(size)); err != nil {
		return err
	}
	self := r.NodeName()
	leader := r.waitLeader(q.logName, func(l string) bool { return l != "" })
	if leader != self {
		if err := r.store.StepDownLog(q.logName, self); err != nil {
			r.log.Warn("could not move a new quorum queue's leader here", "queue", q.name, "leader", leader, "err", err)
		}
		leader = r.waitLeader(q.logName, func(l string) bool { return l == self })
	}
	if leader != "" {
		q.setHome(leader)
	}
	r.own.mu.Lock()
	if leader == self {
		r.own.loaded[q] = struct{}{} // a new log: nothing to load
	}
	r.own.mu.Unlock()
	return nil
}

// waitLeader polls the log's leader until ok accepts it or leaderMoveWait
// passes, and returns the last one seen.
func (r *Router) waitLeader(log string, ok func(string) bool) string {
	deadline := time.Now().Add(leaderMoveWait)
	for {
		l, err := r.store.LogLeader(log)
		if err == nil && ok(l) || time.Now().After(deadline) {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trackQuorum starts following the leadership of q's replicated log (a
// declared, recovered or adopted quorum queue). No-op for other queues.
func (r *Router) trackQuorum(q *Queue) {
	if !r.store.Replicated(q.logName) {
		return
	}
	r.own.mu.Lock()
	if r.own.queues == nil {
		r.own.queues = map[string]*Queue{}
	}
	r.own.queues[q.logName] = q
	r.own.mu.Unlock()
	r.store.TrackLog(q.logName)
}

// forgetQuorum stops following q (deleted).
func (r *Router) forgetQuorum(q *Queue) {
	if !r.store.Replicated(q.logName) {
		return
	}
	r.store.UntrackLog(q.logName)
	r.own.mu.Lock()
	if r.own.queues[q.logName] == q {
		delete(r.own.queues, q.logName)
	}
	delete(r.own.loaded, q)
	r.own.mu.Unlock()
}

// servesHere reports whether this node dispatches q: a replicated
// quorum queue only once this node took it over (a copy whose home is
// elsewhere, or not known yet, must not expire the shared queue);
// any other queue when it is at home.
func (r *Router) servesHere(q *Queue) bool {
	if !r.store.Replicated(q.logName) {
		return q.atHome()
	}
	r.own.mu.Lock()
	defer r.own.mu.Unlock()
	_, ok := r.own.loaded[q]
	return ok
}

// startOwnership starts the leadership watcher on a cluster node.
func (r *Router) startOwnership() error {
	if r.cfg.Cluster == nil {
		return nil
	}
	return r.store.WatchLeaders(r.onLeader)
}

// onLeader is the watcher's callback: log is led by leader now.
func (r *Router) onLeader(log, leader string) {
	r.own.mu.Lock()
	q := r.own.queues[log]
	r.own.mu.Unlock()
	if q == nil || r.closed.Load() {
		return
	}
	from := q.homeNode()
	if leader != "" {
		q.setHome(leader)
	} else if q.atHome() && r.NodeName() != "" {
		// This node led the queue and lost its quorum (a partition): it
		// must stop serving it as home, or, when it hears of the new
		// leader late, it takes publishes into a queue it released.
		q.setNoHome()
	}
	r.homeMoved(q, from, leader)
}

// homeMoved is called after q's home changed from one node to another
// ("" to: no leader for now). The link goes first: this node's consumers
// served by the old home are detached (the watcher attaches them to the
// new one), and when this node was the old home its shadow consumers
// are told the queue moved (their client nodes re-attach), so that the
// release below cancels only the consumers of this node's own clients.
// Then the quorum part loads the queue here or drops it.
func (r *Router) homeMoved(q *Queue, from, to string) {
	if r.link != nil {
		r.link.homeMoved(q, from, to) // linkshadow.go
	}
	r.quorumHomeMoved(q, to)
}

// quorumHomeMoved takes q over when this node is its home now, and
// releases it when this node held it and is not its home any more.
func (r *Router) quorumHomeMoved(q *Queue, to string) {
	if !r.store.Replicated(q.logName) {
		return // only a replicated log has a leader to follow
	}
	self := r.NodeName()
	r.own.mu.Lock()
	_, loaded := r.own.loaded[q]
	r.own.mu.Unlock()
	switch {
	case to == self && !loaded:
		if err := r.takeOver(q); err != nil {
			r.log.Error("quorum queue takeover failed; stepping down", "queue", q.name, "vhost", q.vh.name, "err", err)
			// A node that cannot serve the queue must not hold it.
			_ = r.store.StepDownLog(q.logName, "")
			return
		}
		r.own.mu.Lock()
		if r.own.queues[q.logName] == q {
			r.own.loaded[q] = struct{}{}
		}
		r.own.mu.Unlock()
		r.log.Info("quorum queue leader is here now: queue taken over", "queue", q.name, "vhost", q.vh.name)
	case to != self && loaded:
		r.own.mu.Lock()
		delete(r.own.loaded, q)
		r.own.mu.Unlock()
		r.release(q)
		r.log.Info("quorum queue leader moved away: queue released", "queue", q.name, "vhost", q.vh.name, "leader", to)
	}
}

// takeOver loads q from its replicated log as a restart does (replay,
// replayWindow): the log's records become q's ready messages, paged, and
// a read of the first window starts at once. Every one is marked
// redelivered. Messages this node holds in memory that are already in
// the log are dropped first (they are read back); ones whose record is
// newer, or not written yet, stay behind the paged ones.
func (r *Router) takeOver(q *Queue) error {
	var first, last, count uint64
	var err error
	deadline := time.Now().Add(takeoverWait)
	for {
		// Right after an election the new leader may not answer yet
		// (nor the meta group, when its leader died too): ask again.
		if first, last, count, err = r.store.LogStateWithin(q.logName, 2*time.Second); err == nil || time.Now().After(deadline) || r.closed.Load() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	floor := first
	if first == 0 {
		floor = last + 1
	}
	purged, inPurged := r.purgedForTakeover(q, first)

	q.pageMu.Lock()
	q.purged = purged
	q.pageMu.Unlock()

	q.mu.Lock()
	if q.deleted || r.closed.Load() {
		q.mu.Unlock()
		return nil
	}
	var keep []*qmsg
	for q.ready.len() > 0 {
		if m := q.ready.pop(); m.storeSeq.Load() == 0 || m.storeSeq.Load() > last {
			keep = append(keep, m)
		}
	}
	old := q.page
	for old.spill.len() > 0 {
		if m := old.spill.pop(); m.storeSeq.Load() == 0 || m.storeSeq.Load() > last {
			keep = append(keep, m)
		}
	}
	q.log = logState{floor: floor}
	p := &q.page
	*p = pageState{waiters: old.waiters, on: true, cursor: floor, acked: last, redeliverBelow: last + 1}
	p.n = int(count - min(count, inPurged))
	for _, rg := range purged {
		q.log.forgetRange(rg.First, rg.Last)
		p.purged = append(p.purged, rg)
	}
	for _, m := range keep {
		p.spill.push(m)
		p.spillBytes += int64(len(m.msg.Body))
	}
	if len(q.log.ranges) > 0 {
		q.markDirtyLocked()
	}
	q.armIdleLocked()
	q.updateHintLocked()
	q.dispatchLocked() // starts the read of the first window
	q.unlockAndDeadLetter()
	return nil
}

// purgedForTakeover reads q's purged runs (purged.go) that may still be
// in its log from first on, and how many records they hold. They are in
// the metadata bucket under the queue's key.
func (r *Router) purgedForTakeover(q *Queue, first uint64) ([]purgedRange, uint64) {
	val, err := r.store.MetaValue(purgedKey(q.vh.name, q.name))
	if err != nil {
		r.log.Error("reading purged ranges; purged messages may come back", "queue", q.name, "err", err)
		return nil, 0
	}
	if val == nil {
		return nil, 0
	}
	var rs []purgedRange
	if err := json.Unmarshal(val, &rs); err != nil {
		r.log.Error("unreadable purged ranges; purged messages may come back", "queue", q.name, "err", err)
		return nil, 0
	}
	var keep []purgedRange
	var n uint64
	for _, rg := range rs {
		if first == 0 || rg.Last < first {
			continue
		}
		from, err1 := r.store.CountFrom(q.logName, rg.First)
		after, err2 := r.store.CountFrom(q.logName, rg.Last+1)
		if err := errors.Join(err1, err2); err != nil {
			r.log.Error("counting purged records; the queue's count may be off", "queue", q.name, "err", err)
			continue
		}
		keep = append(keep, rg)
		n += from - after
	}
	return keep, n
}

// release stops q on this node: its consumers here are handed over to
// the new home (handOverConsumersLocked), the window and the paged state
// are dropped (the messages are in the log, which the new home reads),
// and its clocks stop.
func (r *Router) release(q *Queue) {
	q.mu.Lock()
	shadows := q.handOverConsumersLocked()
	q.ready.clear()
	waiters := q.page.waiters
	q.page = pageState{waiters: waiters}
	q.wakePageWaitersLocked()
	// Floor 0: the janitor never purges by floor for q here (it does
	// not know the log any more); a late ack deletes its own record.
	q.log = logState{}
	q.stopTimersLocked()
	q.updateHintLocked()
	q.mu.Unlock()
	for _, c := range shadows {
		// As link.homeMoved does: the client node attaches elsewhere.
		c.ch.dropConsumer(c.tag)
		c.ch.sink.(*shadowSink).cancelFrame(outMoved, c.tag)
	}
}

// handOverConsumersLocked ends q's dispatch to its consumers on this
// node without cancelling them. Each consumer of this node's clients
// becomes a consumer served through the link (linkconsume.go), detached
// for now: the link's watcher attaches it to the new home within a
// second (link.reattach), or makes it local again if the leadership
// comes back here (attachLocal). Its unacked deliveries stay in its
// channel's books as deliveries of an attachment that ended, as for a
// consumer whose home moved: the client may still ack, nack or reject
// them (no unknown-tag error), and that does nothing, because the new
// home loaded every record of the log and redelivers them, marked
// redelivered; settling them here would let a requeue put a message
// into a queue this node no longer dispatches. The consumers of shadow
// channels (other nodes' clients) are returned: the caller drops them
// and tells their nodes the queue moved, with q.mu released.
func (q *Queue) handOverConsumersLocked() (shadows []*Consumer) {
	if q.vh.r.link == nil {
		// No link to serve them through (it starts before ownership,
		// so only a router that failed to start gets here).
		q.cancelConsumersLocked()
		return nil
	}
	self := q.vh.r.NodeName()
	cs := q.consumers
	q.consumers = nil
	q.exclusiveUse = false
	for _, c := range cs {
		ch := c.ch
		ch.mu.Lock()
		switch {
		case ch.closed || ch.consumers[c.tag] != c:
		case isShadowSink(ch.sink):
			shadows = append(shadows, c)
		default:
			ch.remoteLocked()
			rc := &remoteConsumer{readyDone: true}
			for _, d := range ch.unacked[ch.unackHead:] {
				if d != nil && d.c == c && d.home == "" {
					d.home, d.gen, d.m = self, rc.gen, nil
					q.unacked--
				}
			}
			rc.gen++ // the deliveries above belong to the attachment that ended
			c.unacked = 0
			c.remote = rc
		}
		ch.mu.Unlock()
	}
	return shadows
}

func isShadowSink(s Sink) bool {
	_, ok := s.(*shadowSink)
	return ok
}

// cancelConsumersLocked removes every consumer of q and tells each
// one's channel (basic.cancel to the client): the queue is deleted.
func (q *Queue) cancelConsumersLocked() {
	cs := q.consumers
	q.consumers = nil
	for _, c := range cs {
		c.ch.mu.Lock()
		if c.ch.consumers[c.tag] == c {
			delete(c.ch.consumers, c.tag)
			c.ch.sink.Cancelled(c.tag, queueDeleted(q))
		}
		c.ch.mu.Unlock()
	}
}

// replicas is a quorum queue's Raft group as the management API
// shows it: the leader (its home), the members and those that are
// current. ok is false for a queue without a replicated log.
func (q *Queue) replicas() (leader string, members, online []string, ok bool) {
	r := q.vh.r
	if !r.store.Replicated(q.logName) {
		return "", nil, nil, false
	}
	leader, members, online, err := r.store.LogMembers(q.logName)
	if err != nil {
		return q.homeNode(), nil, nil, true
	}
	return leader, members, online, true
}
