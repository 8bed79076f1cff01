package mapping

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is what every front publishes and receives. After Publish the
// core shares it between queues and never changes it: fronts must not
// either.
type Message struct {
	Exchange   string
	RoutingKey string
	Properties Properties
	Body       []byte

	// PublishID, when a front sets it, is stored in the message's record
	// (persistent messages in durable queues; at most 255 bytes) and given
	// back after a restart by Router.TakeRecoveredPublishIDs, so that the
	// front can recognise a retry of a publish that was stored before the
	// restart (REST's Idempotency-Key). Consumers never see it.
	PublishID string

	ts int64 // unix ns when published; TTLs count from here

	recOnce sync.Once
	rec     []byte
}

func (m *Message) publishedAt() int64 {
	if m.ts == 0 {
		m.ts = time.Now().UnixNano()
	}
	return m.ts
}

// Refusal says why the core refused a publish. Every front maps it to its
// own answer in one table (AMQP reply code or basic.nack, HTTP status with
// a JSON reason, WS error frame, STOMP ERROR), so that the same failure
// means the same on every front.
type Refusal uint8

const (
	NotRefused          Refusal = iota
	RefusedAlarm                // a resource alarm (memory, disk) is on: retry later
	RefusedQueueFull            // a target queue is full and has x-overflow reject-publish
	RefusedStoreFailure         // a target queue could not store the message
	RefusedAccess               // no write permission, internal exchange
	RefusedBadMessage           // too large, headers nested too deep, bad user_id or expiration
	RefusedNotFound             // the exchange does not exist
)

var refusalNames = [...]string{"", "alarm", "queue_full", "store_failure", "access_refused", "bad_message", "not_found"}

// String is the refusal's name in JSON answers ("alarm", "queue_full", ...).
func (r Refusal) String() string {
	if int(r) < len(refusalNames) {
		return refusalNames[r]
	}
	return "unknown"
}

// Retryable reports whether the same publish may succeed later without
// change (alarm, full queue): HTTP fronts add Retry-After.
func (r Refusal) Retryable() bool { return r == RefusedAlarm || r == RefusedQueueFull }

// Outcome is the core's answer to a publish.
type Outcome struct {
	// Routed: a queue (or direct reply-to channel) took the message;
	// false with no refusal is an unroutable message (dropped, or
	// returned to a mandatory publisher by its front).
	Routed  bool
	Refused Refusal
	Reason  *Error // why, for a person; nil when not refused
}

// Err is the refusal as an error (nil when not refused): a
// *PublishRefused, whose Kind is that of Reason.
func (o Outcome) Err() error {
	if o.Refused == NotRefused {
		return nil
	}
	return &PublishRefused{Refusal: o.Refused, Err: o.Reason}
}

// PublishRefused is a refused publish as an error.
type PublishRefused struct {
	Refusal Refusal
	Err     *Error
}

func (e *PublishRefused) Error() string { return e.Err.Text }
func (e *PublishRefused) Unwrap() error { return e.Err }

// RefusalOf returns the refusal behind err (NotRefused when err is not a
// refused publish).
func RefusalOf(err error) Refusal {
	var pr *PublishRefused
	if errors.As(err, &pr) {
		return pr.Refusal
	}
	return NotRefused
}

func refuse(r Refusal, err *Error) Outcome { return Outcome{Refused: r, Reason: err} }

// storeTracker counts the store writes of one publish and reports once all
// have finished. queueFull is set before the finish of the write that
// learnt of it (by Publish, or by a forward's answer, linkpublish.go), so
// the last finish reads it.
type storeTracker struct {
	pending   atomic.Int32
	failed    atomic.Bool
	routed    bool
	queueFull atomic.Pointer[string] // a queue that refused the message (reject-publish)
	vhost     string
	done      func(Outcome)
}

// setFull records the first queue that refused the message.
func (t *storeTracker) setFull(queue string) {
	if t != nil {
		t.queueFull.CompareAndSwap(nil, &queue)
	}
}

func (t *storeTracker) add() {
	if t != nil {
		t.pending.Add(1)
	}
}

func (t *storeTracker) finish(ok bool) {
	if t == nil {
		return
	}
	if !ok {
		t.failed.Store(true)
	}
	if t.pending.Add(-1) != 0 {
		return
	}
	out := Outcome{Routed: t.routed}
	switch full := t.queueFull.Load(); {
	case full != nil:
		out.Refused, out.Reason = RefusedQueueFull, errorf(KindResourceError, "queue '%s' in vhost '%s' is full and refuses new messages (x-overflow reject-publish); retry later", *full, t.vhost)
	case t.failed.Load():
		out.Refused, out.Reason = RefusedStoreFailure, errorf(KindResourceError, "a target queue could not store the message; it was not published")
	}
	t.done(out)
}

// Publish is the one entry point for a message of any front. In order it
// applies the resource alarms, the size and table-depth limits, property
// normalisation (persistent iff delivery mode 2), user_id and expiration
// checks, write permission, routing and storing; queue flow control is
// armed for WaitFlow. A refusal before routing is returned and done is not
// called. Otherwise done, when not nil, is called exactly once with the
// final outcome when every target queue has stored the message, or with
// RefusedQueueFull / RefusedStoreFailure; it may be called before Publish
// returns, and from another goroutine.
func (ch *Channel) Publish(m *Message, done func(Outcome)) Outcome {
	vh := ch.vh
	if o, refused := vh.r.alarmOutcome(); refused {
		return o
	}
	if int64(len(m.Body)) > vh.r.cfg.MaxMessageSize {
		return refuse(RefusedBadMessage, errorf(KindPreconditionFailed, "message size %d is larger than configured max size %d", len(m.Body), vh.r.cfg.MaxMessageSize))
	}
	p := &m.Properties
	p.Normalize()
	if p.Headers != nil && nestsTooDeep(p.Headers, 1) {
		return refuse(RefusedBadMessage, errorf(KindPreconditionFailed, "headers nest tables or arrays deeper than %d levels", MaxTableDepth))
	}
	if p.UserID != "" && p.UserID != ch.conn.user {
		return refuse(RefusedBadMessage, errorf(KindPreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", p.UserID, ch.conn.user))
	}
	if e := p.Expiration; e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err != nil || n < 0 {
			return refuse(RefusedBadMessage, errorf(KindPreconditionFailed, "invalid expiration '%s': not a non-negative number of milliseconds", e))
		}
	}
	m.ts = time.Now().UnixNano()
	if p.ReplyTo == DirectReplyTo {
		ch.mu.Lock()
		key := ch.replyKey
		ch.mu.Unlock()
		if key == "" {
			return refuse(RefusedBadMessage, errorf(KindPreconditionFailed, "fast reply consumer does not exist"))
		}
		p.ReplyTo = key
	}

	if m.Exchange == "" && strings.HasPrefix(m.RoutingKey, DirectReplyTo+".") {
		if node := vh.r.replyNode(m.RoutingKey); node != "" {
			// At most once, as RabbitMQ: the reply is sent, not confirmed.
			vh.r.link.sendReply(node, vh, m)
			if done != nil {
				done(Outcome{Routed: true})
			}
			return Outcome{Routed: true}
		}
		ok := vh.deliverReply(m)
		if done != nil {
			done(Outcome{Routed: ok})
		}
		return Outcome{Routed: ok}
	}

	if err := ch.allowPublish(m.Exchange); err != nil {
		return refuse(RefusedAccess, asError(err))
	}
	vh.r.stats.Published.Add(1)
	var qs []*Queue
	// In a cluster a miss (no such exchange, or no queue bound) is looked
	// at once more after the metadata barrier: what another node just
	// declared and bound is then routed to (metawatch.go). An unroutable
	// message pays it at most once per vhost every freshFor.
	for synced := false; ; synced = true {
		vh.mu.RLock()
		e, ok := vh.exchanges[m.Exchange]
		if !ok {
			vh.mu.RUnlock()
			if !synced && vh.r.barrier() {
				continue
			}
			return refuse(RefusedNotFound, noExchange(vh.name, m.Exchange))
		}
		if e.spec.Internal {
			vh.mu.RUnlock()
			return refuse(RefusedAccess, errorf(KindAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", m.Exchange, vh.name))
		}
		qs = vh.routeLocked(e, m)
		vh.mu.RUnlock()
		if len(qs) > 0 || synced || !vh.r.barrierCached(vh) {
			break
		}
	}

	var t *storeTracker
	if done != nil {
		t = &storeTracker{done: done, routed: len(qs) > 0, vhost: vh.name}
		t.pending.Store(1)
	}
	prepareRecord(m, qs)
	prepareForward(m, qs)
	for _, q := range qs {
		ok, full := q.enqueue(m, t)
		if !ok {
			t.setFull(q.name)
		}
		if full && len(qs) == 1 && q.flowCandidate(ch.conn) {
			ch.flowQueue.Store(q)
		}
	}
	t.finish(true)
	if len(qs) > 0 {
		vh.r.stats.Routed.Add(1)
	}
	return Outcome{Routed: len(qs) > 0}
}

func (r *Router) alarmOutcome() (Outcome, bool) {
	if !r.alarms.active.Load() {
		return Outcome{}, false
	}
	if blocked, reason := r.Blocked(); blocked {
		return refuse(RefusedAlarm, errorf(KindResourceError, "publishing is blocked: %s; retry later", reason)), true
	}
	return Outcome{}, false
}

// AlarmRefusal is the refusal Publish gives while a resource alarm is on
// (nil when none is): for a front that refuses a whole request of several
// messages at once.
func (r *Router) AlarmRefusal() error {
	o, _ := r.alarmOutcome()
	return o.Err()
}

// asError keeps a core *Error and classifies anything else as internal.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(KindInternal, "%v", err)
}

// nestsTooDeep reports whether v holds tables or arrays nested deeper than
// MaxTableDepth, depth being the level of v itself (1 for the headers); it
// stops descending at the limit, so hostile input cannot exhaust the stack.
func nestsTooDeep(v any, depth int) bool {
	each := func(n int, at func(int) any) bool {
		if depth > MaxTableDepth {
			return true
		}
		for i := range n {
			if nestsTooDeep(at(i), depth+1) {
				return true
			}
		}
		return false
	}
	switch x := v.(type) {
	case Table:
		return nestsTooDeep(map[string]any(x), depth)
	case map[string]any:
		if depth > MaxTableDepth {
			return true
		}
		for _, e := range x {
			if nestsTooDeep(e, depth+1) {
				return true
			}
		}
	case []any:
		return each(len(x), func(i int) any { return x[i] })
	case []Table:
		return each(len(x), func(i int) any { return x[i] })
	case []map[string]any:
		return each(len(x), func(i int) any { return x[i] })
	}
	return false
}

// routeLocked returns the queues m reaches from e: through its routing key
// and any CC/BCC keys, following exchange-to-exchange bindings, and the
// alternate exchange when nothing matched. Called with vh.mu held. A BCC
// header is removed from m before it is stored.
func (vh *VHost) routeLocked(e *exchange, m *Message) []*Queue {
	return vh.routeTraced(e, m, nil)
}

// routeTraced is routeLocked that, when tr is not nil, records every hop
// and alternate exchange in it: the routing dry run (TraceRoute) is the
// publish routing itself.
func (vh *VHost) routeTraced(e *exchange, m *Message, tr *RouteTrace) []*Queue {
	var xbuf [4]*exchange
	var qbuf [8]*Queue
	out := queueSet{list: qbuf[:0], tr: tr}
	visited := e.route(m, m.RoutingKey, &out, xbuf[:0])
	if h := m.Properties.Headers; h != nil {
		cc, hasCC := h["CC"].([]any)
		bcc, hasBCC := h["BCC"].([]any)
		if hasCC || hasBCC {
			for _, k := range append(append([]any{}, cc...), bcc...) {
				if key, ok := k.(string); ok {
					e.route(m, key, &out, visited[:0])
				}
			}
			if hasBCC {
				h = maps.Clone(h)
				delete(h, "BCC")
				m.Properties.Headers = h
			}
		}
	}
	// Alternate exchanges, followed until one routes (cycles stop).
	seen := []*exchange{e}
	for cur := e; len(out.list) == 0; {
		ae, ok := cur.spec.Args["alternate-exchange"].(string)
		if !ok {
			break
		}
		next := vh.exchanges[ae]
		if next == nil || slices.Contains(seen, next) {
			break
		}
		seen = append(seen, next)
		if tr != nil {
			tr.AlternateExchanges = append(tr.AlternateExchanges, ae)
			tr.Hops = append(tr.Hops, RouteHop{Exchange: cur.spec.Name, Destination: ae, DestinationType: "exchange", Via: "alternate-exchange", RoutingKey: m.RoutingKey})
		}
		next.route(m, m.RoutingKey, &out, xbuf[:0])
		cur = next
	}
	return out.list
}

// deliverReply hands an RPC reply to the channel that consumes the direct
// reply-to key in its routing key.
func (vh *VHost) deliverReply(m *Message) bool {
	vh.replyMu.RLock()
	ch := vh.replies[m.RoutingKey]
	vh.replyMu.RUnlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || ch.replyKey == "" {
		return false
	}
	ch.nextTag++
	if !ch.sink.Deliver(Delivery{Tag: ch.nextTag, ConsumerTag: ch.replyTag, Message: m}) {
		ch.blocked.Store(true)
	}
	return true
}

// Consume subscribes the channel to a queue. ready is called with the
// consumer tag after the consumer is registered and before its first
// delivery, so that a front can answer (consume-ok) in the right order; it
// runs with core locks held and must not block.
func (ch *Channel) Consume(queue, tag string, noAck, exclusive bool, args Table, ready func(tag string)) error {
	if tag == "" {
		tag = randomName("amq.ctag-")
	}
	if queue == DirectReplyTo {
		return ch.consumeReplies(tag, noAck, ready)
	}
	q, err := ch.lookupQueue(queue)
	if err != nil {
		return err
	}
	if err := ch.allowed(Read, ResourceQueue, q.name); err != nil {
		return err
	}
	prio, err := consumerPriority(args)
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return errorf(KindCommandInvalid, "channel is closed")
	}
	if _, dup := ch.consumers[tag]; dup || tag == ch.replyTag {
		ch.mu.Unlock()
		return errorf(KindNotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	c := &Consumer{q: q, ch: ch, tag: tag, noAck: noAck, exclusive: exclusive, prefetch: ch.prefetch, priority: prio}
	if !q.atHome() && ch.vh.r.link != nil {
		// Served by the queue's home (linkconsume.go).
		c.remote = &remoteConsumer{}
		ch.consumers[tag] = c
		ch.remoteLocked()
		ch.mu.Unlock()
		return ch.consumeRemote(c, ready)
	}
	ch.mu.Unlock()

	q.mu.Lock()
	defer q.unlockAndDeadLetter()
	if q.deleted {
		return noQueue(ch.vh.name, q.name)
	}
	if q.exclusiveUse || (exclusive && len(q.consumers) > 0) {
		return errorf(KindAccessRefused, "queue '%s' in vhost '%s' in exclusive use", q.name, ch.vh.name)
	}
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return errorf(KindCommandInvalid, "channel is closed")
	}
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return errorf(KindNotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	ch.consumers[tag] = c
	ready(tag)
	ch.mu.Unlock()
	q.consumers = append(q.consumers, c)
	q.mixedPriorities = q.mixedPriorities || c.priority != 0
	q.exclusiveUse = exclusive
	if q.idleTimer != nil {
		q.idleTimer.Stop()
	}
	q.dispatchLocked()
	return nil
}

func (ch *Channel) consumeReplies(tag string, noAck bool, ready func(string)) error {
	if !noAck {
		return errorf(KindPreconditionFailed, "reply consumer cannot acknowledge")
	}
	ch.mu.Lock()
	if ch.replyKey != "" {
		ch.mu.Unlock()
		return errorf(KindPreconditionFailed, "reply consumer already set")
	}
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return errorf(KindNotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	ch.replyKey = randomName(ch.vh.r.replyKeyPrefix())
	ch.replyTag = tag
	ready(tag)
	key := ch.replyKey
	ch.mu.Unlock()
	ch.vh.replyMu.Lock()
	ch.vh.replies[key] = ch
	ch.vh.replyMu.Unlock()
	return nil
}

// Cancel ends a consumer. Its unacked messages stay unacked on the
// channel. An unknown tag is not an error (AMQP says so).
func (ch *Channel) Cancel(tag string) {
	ch.mu.Lock()
	if tag != "" && tag == ch.replyTag {
		key := ch.replyKey
		ch.replyKey, ch.replyTag = "", ""
		ch.mu.Unlock()
		ch.vh.replyMu.Lock()
		delete(ch.vh.replies, key)
		ch.vh.replyMu.Unlock()
		return
	}
	c := ch.consumers[tag]
	if c != nil && c.remote != nil {
		ch.mu.Unlock()
		ch.cancelRemote(c) // waits for the home (linkconsume.go)
		return
	}
	delete(ch.consumers, tag)
	ch.mu.Unlock()
	if c != nil && c.q.removeConsumer(c) {
		ch.vh.deleteQueue(c.q)
	}
}

// Get takes one message from a queue (basic.get). ok is false when the
// queue is empty; remaining is the count left after this one.
func (ch *Channel) Get(queue string, noAck bool) (d Delivery, remaining int, ok bool, err error) {
	q, err := ch.lookupQueue(queue)
	if err != nil {
		return d, 0, false, err
	}
	if err := ch.allowed(Read, ResourceQueue, q.name); err != nil {
		return d, 0, false, err
	}
	if !q.atHome() && ch.vh.r.link != nil {
		return ch.getRemote(q, noAck) // a home known to be down: 404 (link.request)
	}
	q.mu.Lock()
	defer q.unlockAndDeadLetter()
	for round := 0; ; round++ {
		if q.deleted {
			return d, 0, false, nil
		}
		q.touchLocked()
		q.expireLocked()
		if q.ready.len() == 0 {
			q.fillLocked()
			q.expireLocked()
		}
		if q.ready.len() > 0 {
			break
		}
		if q.readyLenLocked() == 0 {
			return d, 0, false, nil
		}
		if round == pageWaitRounds {
			return d, 0, false, errorf(KindInternal, "queue '%s' in vhost '%s': its next messages could not be read from the store", q.name, q.vh.name)
		}
		// The next messages are paged: wait for their read, with no
		// lock held.
		wait := q.waitPageLocked()
		q.unlockAndDeadLetter()
		select {
		case <-wait:
		case <-time.After(pageWaitMax):
		}
		q.mu.Lock()
		if ch.vh.r.closed.Load() {
			return d, 0, false, ErrClosed
		}
	}
	m := q.ready.pop()
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		q.ready.insert(m)
		return d, 0, false, errorf(KindCommandInvalid, "channel is closed")
	}
	ch.nextTag++
	d = Delivery{Tag: ch.nextTag, Redelivered: m.redelivered, Message: m.msg}
	q.counters.delivered.Add(1)
	ch.vh.r.stats.Delivered.Add(1)
	if !noAck {
		ch.unacked = append(ch.unacked, &delivery{tag: d.Tag, q: q, c: &Consumer{q: q, ch: ch}, m: m})
		ch.unackedN.Add(1)
		q.unacked++
	}
	ch.mu.Unlock()
	if noAck {
		q.settleLocked(m)
	}
	q.fillLocked()
	return d, q.readyLenLocked(), true, nil
}
