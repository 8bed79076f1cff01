package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// serverNamePrefix starts the names of server-named queues.
const serverNamePrefix = "amq.gen-"

// QueueInfo is what queue.declare-ok reports.
type QueueInfo struct {
	Name      string
	Messages  int
	Consumers int
}

// DeclareExchange creates an exchange, or checks that an existing one is
// equivalent. passive only checks existence. A new exchange is routed
// through on every running node once it returns (spread, linkmeta.go).
func (ch *Channel) DeclareExchange(s ExchangeSpec, passive bool) error {
	created, err := ch.declareExchange(s, passive)
	if created {
		ch.vh.r.spreadLatest(s.Durable)
	}
	return err
}

func (ch *Channel) declareExchange(s ExchangeSpec, passive bool) (created bool, err error) {
	vh := ch.vh
	if passive {
		if s.Name == "" {
			return false, errorf(KindAccessRefused, "operation not permitted on the default exchange")
		}
		if vh.exchangeOrSync(s.Name) == nil {
			return false, noExchange(vh.name, s.Name)
		}
		return false, nil
	}
	if err := validName(s.Name); err != nil {
		return false, errorf(KindPreconditionFailed, "invalid exchange name: %v", err)
	}
	if !validExchangeType(s.Type) {
		return false, errorf(KindCommandInvalid, "unknown exchange type '%s'", s.Type)
	}
	if err := ch.allowed(Configure, ResourceExchange, s.Name); err != nil {
		return false, err
	}
	if e := vh.exchange(s.Name); e != nil {
		return false, e.equivalent(s)
	}
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	if e := vh.exchange(s.Name); e != nil {
		return false, e.equivalent(s)
	}
	if reservedName(s.Name) || s.Name == "" {
		return false, errorf(KindAccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", s.Name)
	}
	e := newExchange(vh, s)
	won, winner, err := vh.r.claimExchange(vh, e)
	if err != nil {
		return false, err
	}
	if !won {
		// Another node declared it first: its exchange stands.
		x, err := vh.adoptLocked(winner, exchangeKey(vh.name, s.Name))
		if err != nil {
			return false, err
		}
		return false, x.(*exchange).equivalent(s)
	}
	vh.mu.Lock()
	vh.exchanges[s.Name] = e
	vh.mu.Unlock()
	return true, nil
}

// adoptLocked applies the record that won a name (claim) and returns
// its exchange or queue; vh.topoMu is held.
func (vh *VHost) adoptLocked(c claimed, key string) (any, error) {
	k, err := parseMetaKey(key)
	if err != nil {
		return nil, errorf(KindInternal, "%v", err)
	}
	x, err := vh.applyTopologyLocked(c.b, k, c.e)
	if err == nil && x == nil {
		err = fmt.Errorf("not applied")
	}
	if err != nil {
		return nil, errorf(KindInternal, "'%s' was declared concurrently on another node and its record cannot be read: %v", k.parts[1], err)
	}
	return x, nil
}

// exchange looks an exchange up under a read lock.
func (vh *VHost) exchange(name string) *exchange {
	vh.mu.RLock()
	defer vh.mu.RUnlock()
	return vh.exchanges[name]
}

// exchangeOrSync looks an exchange up and, on a miss in a cluster, once
// more after the metadata barrier (one declared on another node a
// moment ago is found). vh.topoMu must not be held: the watcher needs it.
func (vh *VHost) exchangeOrSync(name string) *exchange {
	if e := vh.exchange(name); e != nil || !vh.r.barrier() {
		return e
	}
	return vh.exchange(name)
}

// queueOrSync is exchangeOrSync for queues.
func (vh *VHost) queueOrSync(name string) *Queue {
	if q := vh.queue(name); q != nil || !vh.r.barrier() {
		return q
	}
	return vh.queue(name)
}

// metaWrites are the store writes of a topology change, collected while
// vh.mu is held and made after it is released, still under vh.topoMu:
// routing never waits for a store write, and the writer lock keeps the
// store in the order of the changes.
type metaWrites []func()

// add queues a write; a nil w (a change another node made, applied
// here) writes nothing: that node writes the records.
func (w *metaWrites) add(f func()) {
	if w != nil {
		*w = append(*w, f)
	}
}

func (w *metaWrites) run() {
	for _, f := range *w {
		f()
	}
}

// DeleteExchange deletes an exchange and its bindings.
func (ch *Channel) DeleteExchange(name string, ifUnused bool) error {
	vh := ch.vh
	if name == "" || reservedName(name) {
		return errorf(KindAccessRefused, "operation not permitted on the default exchange or 'amq.*' exchanges ('%s')", name)
	}
	if err := ch.allowed(Configure, ResourceExchange, name); err != nil {
		return err
	}
	vh.exchangeOrSync(name)
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	var w metaWrites
	defer w.run()
	vh.mu.Lock()
	defer vh.mu.Unlock()
	e, ok := vh.exchanges[name]
	if !ok {
		// RabbitMQ answers delete-ok for a missing exchange.
		return nil
	}
	if ifUnused && len(e.bindings) > 0 {
		return errorf(KindPreconditionFailed, "exchange '%s' in vhost '%s' in use", name, vh.name)
	}
	vh.deleteExchangeLocked(e, &w)
	return nil
}

// deleteExchangeLocked runs with vh.topoMu and vh.mu held.
func (vh *VHost) deleteExchangeLocked(e *exchange, w *metaWrites) {
	for _, b := range slices.Clone(e.bindings) {
		vh.unbindLocked(b, w)
	}
	for _, b := range slices.Clone(e.incoming) {
		vh.unbindLocked(b, w)
	}
	delete(vh.exchanges, e.spec.Name)
	w.add(func() { vh.r.deleteExchangeRecord(vh, e) })
}

// DeclareQueue creates a queue (server-named when s.Name is empty), or
// checks an existing one. passive only checks existence.
func (ch *Channel) DeclareQueue(s QueueSpec, passive bool) (QueueInfo, error) {
	vh := ch.vh
	if passive {
		if strings.HasPrefix(s.Name, DirectReplyTo+".") {
			ok := vh.replyConsumed(s.Name)
			if node := vh.r.replyNode(s.Name); node != "" {
				ok = vh.r.link.replyConsumed(node, vh, s.Name) // another node's key
			}
			if !ok {
				return QueueInfo{}, noQueue(vh.name, s.Name)
			}
			return QueueInfo{Name: s.Name}, nil
		}
		q, err := ch.lookupQueue(s.Name)
		if err != nil {
			return QueueInfo{}, err
		}
		// The counts live on the queue's home: while that node is down
		// the answer is RabbitMQ's 404 for a queue whose home is down
		// (link.request, or here when it went down during the request).
		m, c, err := ch.countsAnywhere(q)
		if err != nil {
			if derr := q.homeDown(); derr != nil { // went down meanwhile
				return QueueInfo{}, derr
			}
			return QueueInfo{}, err
		}
		return QueueInfo{Name: q.name, Messages: m, Consumers: c}, nil
	}
	serverNamed := s.Name == ""
	if serverNamed {
		s.Name = randomName(serverNamePrefix)
	} else if reservedName(s.Name) {
		return QueueInfo{}, errorf(KindAccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", s.Name)
	} else if err := validName(s.Name); err != nil {
		return QueueInfo{}, errorf(KindPreconditionFailed, "invalid queue name: %v", err)
	}
	s = withDefaultType(s, vh.DefaultQueueType())
	if err := checkQueueType(s, vh.name, serverNamed); err != nil {
		return QueueInfo{}, err
	}
	if err := validateQueueArgs(s.Args); err != nil {
		return QueueInfo{}, err
	}
	if err := checkGroupSize(s, vh.name); err != nil {
		return QueueInfo{}, err
	}
	if err := checkQueueProperties(s, vh.name); err != nil {
		return QueueInfo{}, err
	}
	if err := ch.allowed(Configure, ResourceQueue, s.Name); err != nil {
		return QueueInfo{}, err
	}
	if q := vh.queue(s.Name); q != nil {
		info, err := ch.redeclare(q, s)
		if !errors.Is(err, ErrNotFound) || q.atHome() || vh.r.link == nil || q.homeDown() != nil {
			return info, err
		}
		// The home deleted it a moment ago (auto-delete, expiry, a
		// delete on another node) and this node has not applied that
		// yet: once it has, the declare creates the queue anew, as on
		// one node. A copy still there after the wait keeps the 404.
		if q = vh.waitGone(q); q != nil {
			return ch.redeclare(q, s)
		}
	}
	if s.Node != "" && vh.r.link != nil && !vh.r.isNode(s.Node) {
		return QueueInfo{}, errorf(KindPreconditionFailed, "cannot declare queue '%s' on node '%s': no such node in the cluster", s.Name, s.Node)
	}
	if nodes := vh.r.placement(s); nodes != nil {
		return ch.declareElsewhere(nodes, s)
	}
	return ch.declareHere(s)
}

// declareHere declares a queue homed on this node (s checked, and not
// known here a moment ago).
func (ch *Channel) declareHere(s QueueSpec) (QueueInfo, error) {
	vh := ch.vh
	vh.topoMu.Lock()
	if q := vh.queue(s.Name); q != nil {
		vh.topoMu.Unlock()
		return ch.redeclare(q, s)
	}
	q, won, err := vh.createQueue(ch, s)
	vh.topoMu.Unlock()
	if err != nil {
		return QueueInfo{}, err
	}
	if !won {
		return ch.redeclare(q, s) // another node declared it first
	}
	// Every running node routes to it once declare-ok is sent (an RPC
	// reply to a fresh callback queue may be published on any node).
	vh.r.spreadLatest(q.durableLog())
	if q.owner != nil {
		c := ch.conn
		c.mu.Lock()
		closed := c.closed
		c.exclusive[q] = struct{}{}
		c.mu.Unlock()
		if closed {
			vh.deleteQueue(q)
			return QueueInfo{}, errorf(KindResourceLocked, "connection closed while declaring queue '%s'", s.Name)
		}
	}
	ch.setLastQueue(q.name)
	return QueueInfo{Name: q.name}, nil
}

// waitGone waits (at most goneWait) until this node has applied the
// deletion of q, and returns the queue of that name then: nil once q is
// gone, q itself when it is still there, or a queue declared since.
func (vh *VHost) waitGone(q *Queue) *Queue {
	deadline := time.Now().Add(goneWait)
	for {
		vh.r.barrier()
		cur := vh.queue(q.name)
		if cur != q || time.Now().After(deadline) {
			return cur
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goneWait bounds waitGone: the home writes a deletion's record right
// after it deleted the queue.
const goneWait = 2 * time.Second

// queue looks a queue up under a read lock.
func (vh *VHost) queue(name string) *Queue {
	vh.mu.RLock()
	defer vh.mu.RUnlock()
	return vh.queues[name]
}

// redeclare answers queue.declare for an existing queue.
func (ch *Channel) redeclare(q *Queue, s QueueSpec) (QueueInfo, error) {
	if q.owner != nil && q.owner != ch.conn {
		return QueueInfo{}, lockedQueue(ch.vh.name, q.name)
	}
	if err := q.equivalent(s); err != nil {
		return QueueInfo{}, err
	}
	if err := q.homeDown(); err != nil {
		return QueueInfo{}, err
	}
	ch.setLastQueue(q.name)
	q.mu.Lock()
	q.touchLocked()
	q.mu.Unlock()
	m, c, err := ch.countsAnywhere(q)
	if err != nil {
		return QueueInfo{}, err
	}
	return QueueInfo{Name: q.name, Messages: m, Consumers: c}, nil
}

// createQueue makes a new queue, its record and its log; it runs with
// vh.topoMu held, so nobody on this node creates the same name
// meanwhile, and does the store writes without vh.mu. In a cluster
// another node may have claimed the name: then won is false and q is
// that node's queue (to compare with s). The record is written before
// the log: a log without a record would be taken for an orphan.
func (vh *VHost) createQueue(ch *Channel, s QueueSpec) (q *Queue, won bool, err error) {
	vh.mu.RLock()
	n := len(vh.queues)
	vh.mu.RUnlock()
	if max := vh.r.cfg.Limits.MaxQueues; max > 0 && n >= max {
		return nil, false, errorf(KindPreconditionFailed, "cannot declare queue '%s': queue limit in vhost '%s' (%d) is reached", s.Name, vh.name, max)
	}
	q = newQueue(vh, s)
	if s.Exclusive {
		q.owner = ch.conn
	} else if s.Durable {
		q.logName = vh.r.newQueueLog(vh, s)
	}
	won, winner, err := vh.r.claimQueue(vh, q)
	if err != nil {
		return nil, false, err
	}
	if !won {
		x, err := vh.adoptLocked(winner, queueKey(vh.name, s.Name))
		if err != nil {
			return nil, false, err
		}
		return x.(*Queue), false, nil
	}
	if q.durableLog() {
		if err := vh.r.createDurableLog(q); err != nil {
			vh.r.deleteQueueRecord(vh, q)
			return nil, false, errorf(KindInternal, "cannot create storage for queue '%s': %v", s.Name, err)
		}
		q.log.floor = 1
		vh.r.trackQuorum(q)
	}
	vh.mu.Lock()
	vh.queues[s.Name] = q
	vh.mu.Unlock()
	q.mu.Lock()
	q.armIdleLocked()
	q.mu.Unlock()
	return q, true, nil
}

func (ch *Channel) setLastQueue(name string) {
	ch.mu.Lock()
	ch.lastQueue = name
	ch.mu.Unlock()
}

// queueName resolves the empty name to the channel's last declared queue,
// as AMQP allows.
func (ch *Channel) queueName(name string) string {
	if name != "" {
		return name
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.lastQueue
}

// lookupQueue finds a queue this channel may use (exclusive queues only
// from their own connection).
func (ch *Channel) lookupQueue(name string) (*Queue, error) {
	name = ch.queueName(name)
	q := ch.vh.queueOrSync(name)
	if q == nil {
		return nil, noQueue(ch.vh.name, name)
	}
	if q.owner != nil && q.owner != ch.conn {
		return nil, lockedQueue(ch.vh.name, name)
	}
	return q, nil
}

func (q *Queue) equivalent(s QueueSpec) error {
	diff := func(arg string, got, cur any) error {
		return errorf(KindPreconditionFailed, "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'", arg, q.name, q.vh.name, got, cur)
	}
	switch {
	case s.Durable != q.spec.Durable:
		return diff("durable", s.Durable, q.spec.Durable)
	case s.Exclusive != q.spec.Exclusive:
		return lockedQueue(q.vh.name, q.name)
	case s.AutoDelete != q.spec.AutoDelete:
		return diff("auto_delete", s.AutoDelete, q.spec.AutoDelete)
	}
	got, cur := sameDefaultType(s.Args, q.spec.Args)
	if k, ok := argsDiffer(got, cur); ok {
		return argMismatch("queue", q.name, q.vh.name, k, got, cur)
	}
	return nil
}

// DeleteQueue deletes a queue and returns how many ready messages it held.
func (ch *Channel) DeleteQueue(name string, ifUnused, ifEmpty bool) (int, error) {
	name = ch.queueName(name)
	q := ch.vh.queueOrSync(name)
	if q == nil {
		// RabbitMQ answers delete-ok with 0 for a missing queue.
		return 0, nil
	}
	if q.owner != nil && q.owner != ch.conn {
		return 0, lockedQueue(ch.vh.name, name)
	}
	if err := ch.allowed(Configure, ResourceQueue, name); err != nil {
		return 0, err
	}
	if !q.atHome() && ch.vh.r.link != nil {
		return ch.deleteRemote(q, ifUnused, ifEmpty)
	}
	q.mu.Lock()
	ready, consumers := q.readyLenLocked(), len(q.consumers)
	q.mu.Unlock()
	if ifUnused && consumers > 0 {
		return 0, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' in use", name, ch.vh.name)
	}
	if ifEmpty && ready > 0 {
		return 0, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' not empty", name, ch.vh.name)
	}
	return ch.vh.deleteQueue(q), nil
}

// deleteQueue removes q with its bindings, cancels its consumers and drops
// its messages. It returns the ready count it had.
func (vh *VHost) deleteQueue(q *Queue) int {
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	return vh.deleteQueueLocked(q, true)
}

// deleteQueueLocked is deleteQueue with vh.topoMu held. write is false
// for a deletion another node made: its records are that node's to
// delete, and only the home deletes the queue's log.
func (vh *VHost) deleteQueueLocked(q *Queue, write bool) int {
	var w *metaWrites
	if write {
		w = &metaWrites{}
	}
	vh.mu.Lock()
	if vh.queues[q.name] != q {
		vh.mu.Unlock()
		return 0
	}
	delete(vh.queues, q.name)
	for _, b := range slices.Clone(q.bindings) {
		vh.unbindLocked(b, w)
	}
	q.mu.Lock()
	q.deleted = true
	n := q.readyLenLocked()
	q.ready.clear()
	q.clearPagedLocked()
	pageLog := q.pageLog
	q.stopTimersLocked()
	q.cancelConsumersLocked()
	q.mu.Unlock()
	vh.mu.Unlock()
	if q.owner != nil {
		q.owner.mu.Lock()
		delete(q.owner.exclusive, q)
		q.owner.mu.Unlock()
	}
	if q.durableLog() {
		vh.r.janitor.forget(q)
	}
	if write {
		w.run() // bindings first: a binding's record never outlives its ends
		vh.r.deleteQueueRecord(vh, q)
	} else {
		// Deleted by another node, which deleted a replicated log itself.
		vh.r.forgetQuorum(q)
		if q.durableLog() && q.atHome() && !vh.r.store.Replicated(q.logName) {
			vh.r.dropQueueLog(vh, q)
		}
	}
	if pageLog != "" {
		vh.r.janitor.forget(q)
		if err := vh.r.store.DeleteLog(pageLog); err != nil {
			vh.r.log.Error("delete page log", "queue", q.name, "err", err)
		}
	}
	return n
}

// PurgeQueue drops the ready messages of a queue and returns how many.
func (ch *Channel) PurgeQueue(name string) (int, error) {
	q, err := ch.lookupQueue(name)
	if err != nil {
		return 0, err
	}
	if err := ch.allowed(Read, ResourceQueue, q.name); err != nil {
		return 0, err
	}
	if !q.atHome() && ch.vh.r.link != nil {
		return ch.purgeRemote(q)
	}
	q.mu.Lock()
	n, rg := q.purgeLocked()
	q.mu.Unlock()
	if rg.Count > 0 && q.durableLog() {
		// Written before purge-ok: a restart must not bring them back.
		if err := q.notePurged(rg); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// BindQueue binds a queue to an exchange; in a cluster every running
// node routes through the binding when it returns (spread, linkmeta.go).
func (ch *Channel) BindQueue(queue, exchangeName, key string, args Table) error {
	sp, err := ch.bindQueue(queue, exchangeName, key, args)
	ch.vh.r.spread(sp)
	return err
}

func (ch *Channel) bindQueue(queue, exchangeName, key string, args Table) (spreadRev, error) {
	q, err := ch.lookupQueue(queue)
	if err != nil {
		return spreadRev{}, err
	}
	if exchangeName == "" {
		return spreadRev{}, errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	if err := ch.allowBinding(ResourceQueue, q.name, exchangeName); err != nil {
		return spreadRev{}, err
	}
	vh := ch.vh
	vh.exchangeOrSync(exchangeName)
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	vh.mu.RLock()
	e, ok := vh.exchanges[exchangeName]
	gone := vh.queues[q.name] != q
	vh.mu.RUnlock()
	if !ok {
		return spreadRev{}, noExchange(vh.name, exchangeName)
	}
	if gone {
		return spreadRev{}, noQueue(vh.name, q.name)
	}
	return vh.bind(&binding{src: e, key: key, args: args, queue: q})
}

// UnbindQueue removes a queue binding. As in RabbitMQ 3.x, a missing
// binding, queue or exchange is not an error: what is gone is unbound
// (aio-pika's RPC close unbinds its reply queue after deleting it).
func (ch *Channel) UnbindQueue(queue, exchangeName, key string, args Table) error {
	q, err := ch.lookupQueue(queue)
	if err != nil && KindOf(err) != KindNotFound {
		return err
	}
	if exchangeName == "" {
		return errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	if err := ch.allowBinding(ResourceQueue, ch.queueName(queue), exchangeName); err != nil {
		return err
	}
	if q == nil {
		return nil
	}
	vh := ch.vh
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	var w metaWrites
	defer w.run()
	vh.mu.Lock()
	defer vh.mu.Unlock()
	e, ok := vh.exchanges[exchangeName]
	if !ok {
		return nil
	}
	if b := e.findBinding(&binding{src: e, key: key, args: args, queue: q}); b != nil {
		vh.unbindLocked(b, &w)
	}
	return nil
}

// BindExchange binds destination to source (exchange-to-exchange).
func (ch *Channel) BindExchange(destination, source, key string, args Table) error {
	var sp spreadRev
	err := ch.exchangeBinding(destination, source, key, args, &sp)
	ch.vh.r.spread(sp) // every running node routes through it (linkmeta.go)
	return err
}

// UnbindExchange removes an exchange-to-exchange binding; a missing
// binding, source or destination is not an error (RabbitMQ 3.x).
func (ch *Channel) UnbindExchange(destination, source, key string, args Table) error {
	return ch.exchangeBinding(destination, source, key, args, nil)
}

// exchangeBinding binds (sp set: the write to spread goes there) or
// unbinds (sp nil).
func (ch *Channel) exchangeBinding(destination, source, key string, args Table, sp *spreadRev) error {
	bind := sp != nil
	if destination == "" || source == "" {
		return errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	if err := ch.allowBinding(ResourceExchange, destination, source); err != nil {
		return err
	}
	vh := ch.vh
	vh.exchangeOrSync(source)
	vh.exchangeOrSync(destination)
	vh.topoMu.Lock()
	defer vh.topoMu.Unlock()
	vh.mu.RLock()
	src, srcOK := vh.exchanges[source]
	dst, dstOK := vh.exchanges[destination]
	vh.mu.RUnlock()
	if !srcOK || !dstOK {
		if !bind {
			return nil // as UnbindQueue: unbinding what is gone is unbind-ok
		}
		if !srcOK {
			return noExchange(vh.name, source)
		}
		return noExchange(vh.name, destination)
	}
	b := &binding{src: src, key: key, args: args, dstEx: dst}
	if bind {
		var err error
		*sp, err = vh.bind(b)
		return err
	}
	var w metaWrites
	defer w.run()
	vh.mu.Lock()
	defer vh.mu.Unlock()
	if old := src.findBinding(b); old != nil {
		vh.unbindLocked(old, &w)
	}
	return nil
}

// bind adds b; it runs with vh.topoMu held (its ends cannot go away
// meanwhile) and stores a durable binding before routing can see it. The
// caller spreads the returned write once it released vh.topoMu.
func (vh *VHost) bind(b *binding) (spreadRev, error) {
	vh.mu.RLock()
	exists := b.src.findBinding(b) != nil
	vh.mu.RUnlock()
	if exists {
		return spreadRev{}, nil
	}
	if b.src.spec.Type == TypeHeaders {
		if err := validXMatch(b.args); err != nil {
			return spreadRev{}, errorf(KindPreconditionFailed, "%v", err)
		}
	}
	sp, err := vh.r.putBinding(vh, b)
	if err != nil {
		return spreadRev{}, err
	}
	vh.mu.Lock()
	b.src.addBinding(b)
	if b.metaKey != "" && vh.r.meta != nil {
		vh.bindIdx[b.metaKey] = b
	}
	vh.mu.Unlock()
	return sp, nil
}

// unbindLocked runs with vh.topoMu and vh.mu held; the record's deletion
// goes to w.
func (vh *VHost) unbindLocked(b *binding, w *metaWrites) {
	b.src.removeBinding(b)
	if b.metaKey != "" && vh.bindIdx[b.metaKey] == b {
		delete(vh.bindIdx, b.metaKey)
	}
	w.add(func() { vh.r.deleteBindingRecord(vh, b) })
	if b.src.spec.AutoDelete && len(b.src.bindings) == 0 && vh.exchanges[b.src.spec.Name] == b.src {
		vh.deleteExchangeLocked(b.src, w)
	}
}
