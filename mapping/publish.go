package mapping

import (
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

// storeTracker counts the store writes of one publish and reports once all
// have finished.
type storeTracker struct {
	pending atomic.Int32
	failed  atomic.Bool
	done    func(ok bool)
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
	if t.pending.Add(-1) == 0 {
		t.done(!t.failed.Load())
	}
}

// Publish routes m from the channel. It returns whether any queue (or
// direct reply-to channel) took the message. done, when not nil, is called
// exactly once when every target queue has stored the message (ok=true)
// or one failed; it may be called before Publish returns, and from
// another goroutine.
func (ch *Channel) Publish(m *Message, done func(ok bool)) (bool, error) {
	vh := ch.vh
	if int64(len(m.Body)) > vh.r.cfg.MaxMessageSize {
		return false, errorf(KindPreconditionFailed, "message size %d is larger than configured max size %d", len(m.Body), vh.r.cfg.MaxMessageSize)
	}
	p := &m.Properties
	p.Normalize()
	if p.UserID != "" && p.UserID != ch.conn.user {
		return false, errorf(KindPreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", p.UserID, ch.conn.user)
	}
	if e := p.Expiration; e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err != nil || n < 0 {
			return false, errorf(KindPreconditionFailed, "invalid expiration '%s': not a non-negative number of milliseconds", e)
		}
	}
	m.ts = time.Now().UnixNano()
	if p.ReplyTo == DirectReplyTo {
		ch.mu.Lock()
		key := ch.replyKey
		ch.mu.Unlock()
		if key == "" {
			return false, errorf(KindPreconditionFailed, "fast reply consumer does not exist")
		}
		p.ReplyTo = key
	}

	if m.Exchange == "" && strings.HasPrefix(m.RoutingKey, DirectReplyTo+".") {
		ok := vh.deliverReply(m)
		if done != nil {
			done(true)
		}
		return ok, nil
	}

	if err := ch.allowPublish(m.Exchange); err != nil {
		return false, err
	}
	vh.r.stats.Published.Add(1)
	vh.mu.RLock()
	e, ok := vh.exchanges[m.Exchange]
	if !ok {
		vh.mu.RUnlock()
		return false, noExchange(vh.name, m.Exchange)
	}
	if e.spec.Internal {
		vh.mu.RUnlock()
		return false, errorf(KindAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", m.Exchange, vh.name)
	}
	qs := vh.routeLocked(e, m)
	vh.mu.RUnlock()

	var t *storeTracker
	if done != nil {
		t = &storeTracker{done: done}
		t.pending.Store(1)
	}
	prepareRecord(m, qs)
	accepted := true
	for _, q := range qs {
		ok, full := q.enqueue(m, t)
		accepted = accepted && ok
		if full && len(qs) == 1 && q.flowCandidate(ch.conn) {
			ch.flowQueue.Store(q)
		}
	}
	t.finish(accepted)
	if len(qs) > 0 {
		vh.r.stats.Routed.Add(1)
	}
	return len(qs) > 0, nil
}

// routeLocked returns the queues m reaches from e: through its routing key
// and any CC/BCC keys, following exchange-to-exchange bindings, and the
// alternate exchange when nothing matched. Called with vh.mu held. A BCC
// header is removed from m before it is stored.
func (vh *VHost) routeLocked(e *exchange, m *Message) []*Queue {
	var xbuf [4]*exchange
	var qbuf [8]*Queue
	out := queueSet{list: qbuf[:0]}
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
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return errorf(KindCommandInvalid, "channel is closed")
	}
	if _, dup := ch.consumers[tag]; dup || tag == ch.replyTag {
		ch.mu.Unlock()
		return errorf(KindNotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	c := &Consumer{q: q, ch: ch, tag: tag, noAck: noAck, exclusive: exclusive, prefetch: ch.prefetch}
	if v, ok := args["x-priority"]; ok {
		p, isInt := asInt(v)
		if !isInt {
			ch.mu.Unlock()
			return errorf(KindPreconditionFailed, "invalid arg 'x-priority' for consumer: expected an integer, got %T", v)
		}
		c.priority = p
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
	ch.replyKey = randomName(DirectReplyTo + ".")
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
	q.mu.Lock()
	defer q.unlockAndDeadLetter()
	if q.deleted {
		return d, 0, false, nil
	}
	q.touchLocked()
	q.expireLocked()
	if q.ready.len() == 0 {
		return d, 0, false, nil
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
	return d, q.ready.len(), true, nil
}
