package mapping

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Consumers through the home. A client channel consuming a queue homed
// on another node gets a shadow channel there: a real *Channel on a
// hidden Conn whose Sink (shadowSink) sends the deliveries back. Every
// dispatch rule (round robin, prefetch, priorities, single active and
// exclusive consumers, redelivery on close, delivery limit) thus runs on
// the home unchanged. The client channel gives its own delivery tags and
// remembers the home's; acks, nacks, rejects, recover, cancel and close go
// back in order on the home's ".c" subject.

// Shadow-channel operations (first byte of a ".c" frame).
const (
	chanOpConsume byte = 'C' // request: consume-ok (home incarnation) or error
	chanOpGet     byte = 'G' // request: basic.get through the shadow channel
	chanOpCancel  byte = 'X'
	chanOpSettle  byte = 'S'
	chanOpCredit  byte = 'K'
	chanOpQos     byte = 'Q' // global prefetch
	chanOpFlow    byte = 'F' // channel.flow
	chanOpClose   byte = 'Z'
	chanOpDrop    byte = 'R' // a detached consumer: cancel it, requeue its unacked
)

// Frames a home sends a client node (batched on ".d").
const (
	outDeliver  byte = 'D'
	outCancel   byte = 'X' // the home cancelled a consumer (queue deleted), and why
	outCancelOk byte = 'O' // the home ended a consumer the client cancelled
	outMoved    byte = 'M' // the queue's home moved away: attach elsewhere
)

const (
	settleAck byte = iota
	settleRequeue
	settleReject
)

// chanRemote is a client channel's link state; guarded by ch.mu.
type chanRemote struct {
	id uint64
	// homes: the nodes with a shadow channel for this one, and the
	// delivery bytes not yet credited back (owed while the front is full).
	homes map[string]int64
}

// remoteConsumer is a consumer served by a shadow channel; guarded by
// ch.mu.
type remoteConsumer struct {
	home       string
	homeInc    uint64
	attachedAt time.Time
	attached   bool // the home answered consume-ok and is believed alive
	attaching  bool // a consume request is out
	readyDone  bool // the front was told consume-ok
	gen        uint64
	held       []heldDelivery // arrived before consume-ok
	// cancelled is closed when the home confirms a cancel (outCancelOk,
	// after every delivery it made to the consumer) or is declared gone.
	cancelled chan struct{}
}

// detachLocked forgets the consumer's attachment to its home (gone or
// moved): deliveries of that attachment leave the books, a cancel
// waiting for that home returns.
func (rc *remoteConsumer) detachLocked() {
	rc.attached = false
	rc.gen++
	if rc.cancelled != nil {
		close(rc.cancelled)
		rc.cancelled = nil
	}
}

type heldDelivery struct {
	from    string
	homeTag uint64
	d       Delivery
}

// remoteLocked returns the channel's link state, registering the channel
// with the link on first use. Called with ch.mu held.
func (ch *Channel) remoteLocked() *chanRemote {
	if ch.remote == nil {
		l := ch.vh.r.link
		l.chansMu.Lock()
		l.nextChan++
		ch.remote = &chanRemote{id: l.nextChan, homes: map[string]int64{}}
		l.chans[ch.remote.id] = ch
		l.chansMu.Unlock()
	}
	return ch.remote
}

func (l *link) header(b *wbuf, op byte, chanID, homeInc uint64) {
	*b = append(*b, op)
	b.s(l.node)
	b.u(l.inc)
	b.u(chanID)
	b.u(homeInc)
}

func (l *link) sendChan(home string, b wbuf) {
	if err := l.bus.Publish(subjectOf(home, "c"), "", b); err != nil {
		l.r.log.Debug("link: frame not sent", "node", home, "err", err)
	}
}

func consumerPriority(args Table) (int64, error) {
	v, ok := args["x-priority"]
	if !ok {
		return 0, nil
	}
	p, isInt := asInt(v)
	if !isInt {
		return 0, errorf(KindPreconditionFailed, "invalid arg 'x-priority' for consumer: expected an integer, got %T", v)
	}
	return p, nil
}

// consumeRemote attaches a new consumer of a queue homed on another node
// (registered by Consume); it is forgotten when the home refuses it.
func (ch *Channel) consumeRemote(c *Consumer, ready func(string)) error {
	if err := ch.attach(c, ready); err != nil {
		ch.mu.Lock()
		if ch.consumers[c.tag] == c {
			delete(ch.consumers, c.tag)
		}
		ch.mu.Unlock()
		return err
	}
	return nil
}

// attach asks the queue's home for a shadow consumer (or, when the home
// is now this node, makes c a local consumer).
func (ch *Channel) attach(c *Consumer, ready func(string)) error {
	l := ch.vh.r.link
	ch.mu.Lock()
	rc := c.remote
	if rc == nil || ch.closed || ch.consumers[c.tag] != c || rc.attaching {
		ch.mu.Unlock()
		return nil
	}
	rc.attaching = true
	gen := rc.gen
	id := ch.remote.id
	prefetch, global, paused := c.prefetch, ch.globalPrefetch.Load(), ch.paused.Load()
	ch.mu.Unlock()
	rest, home, err := l.request(c.q, "c", func(b *wbuf) {
		l.header(b, chanOpConsume, id, 0)
		b.s(ch.vh.name)
		b.s(ch.conn.user)
		b.s(c.q.name)
		b.s(c.tag)
		b.bool(c.noAck)
		b.bool(c.exclusive)
		b.u(uint64(prefetch))
		b.u(uint64(global))
		b.u(uint64(c.priority))
		b.bool(paused)
	}, func() error { return ch.attachLocal(c, ready) })
	ch.mu.Lock()
	rc.attaching = false
	if err != nil || rest == nil {
		ch.mu.Unlock()
		return err
	}
	inc := rest.u()
	if ch.closed || ch.consumers[c.tag] != c || c.remote != rc || rc.gen != gen {
		// Cancelled, its channel closed (closeRemote did not know this
		// home yet), or its home declared gone, meanwhile.
		closed := ch.closed
		ch.mu.Unlock()
		var b wbuf
		if closed {
			l.header(&b, chanOpClose, id, inc)
		} else {
			l.header(&b, chanOpCancel, id, inc)
			b.s(c.tag)
		}
		l.sendChan(home, b)
		return nil
	}
	rc.home, rc.homeInc, rc.attached, rc.attachedAt = home, inc, true, time.Now()
	if _, ok := ch.remote.homes[home]; !ok {
		ch.remote.homes[home] = 0
	}
	if ready != nil && !rc.readyDone {
		ready(c.tag)
	}
	rc.readyDone = true
	held := rc.held
	rc.held = nil
	var orphans []heldDelivery
	for _, h := range held {
		if h.from != home || !ch.deliverRemoteLocked(c, h.from, h.homeTag, h.d) {
			orphans = append(orphans, h)
		}
	}
	ch.mu.Unlock()
	for _, h := range orphans {
		l.requeueOrphan(ch, h.from, h.homeTag, h.d.Attempt > 0)
	}
	return nil
}

// attachLocal makes c an ordinary consumer of its queue, now homed here.
func (ch *Channel) attachLocal(c *Consumer, ready func(string)) error {
	q := c.q
	if !ch.vh.r.servesHere(q) {
		// A quorum queue whose leadership is here but not loaded yet
		// (takeover), or released while no node leads it: try again on
		// the watcher's next round.
		return errorf(KindResourceError, "queue '%s' in vhost '%s' is not dispatched by any node yet; retry later", q.name, ch.vh.name)
	}
	q.mu.Lock()
	defer q.unlockAndDeadLetter()
	if q.deleted {
		return noQueue(ch.vh.name, q.name)
	}
	if q.exclusiveUse || (c.exclusive && len(q.consumers) > 0) {
		return errorf(KindAccessRefused, "queue '%s' in vhost '%s' in exclusive use", q.name, ch.vh.name)
	}
	ch.mu.Lock()
	if ch.closed || ch.consumers[c.tag] != c {
		ch.mu.Unlock()
		return nil
	}
	if ready != nil && (c.remote == nil || !c.remote.readyDone) {
		ready(c.tag)
	}
	c.remote = nil
	ch.mu.Unlock()
	q.consumers = append(q.consumers, c)
	q.mixedPriorities = q.mixedPriorities || c.priority != 0
	q.exclusiveUse = c.exclusive
	if q.idleTimer != nil {
		q.idleTimer.Stop()
	}
	q.dispatchLocked()
	return nil
}

// deliverRemoteLocked hands a delivery from c's home to the front, with
// this channel's own tag. Called with ch.mu held; false when c is not
// attached to from (the caller requeues it there).
func (ch *Channel) deliverRemoteLocked(c *Consumer, from string, homeTag uint64, d Delivery) bool {
	rc := c.remote
	if ch.closed || rc == nil || !rc.attached || rc.home != from {
		return false
	}
	ch.nextTag++
	d.Tag = ch.nextTag
	if !c.noAck {
		ch.unacked = append(ch.unacked, &delivery{tag: d.Tag, q: c.q, c: c, home: from, homeTag: homeTag, gen: rc.gen})
		ch.unackedN.Add(1)
	}
	if !ch.sink.Deliver(d) {
		ch.blocked.Store(true)
	}
	return true
}

// requeueOrphan gives a home back a delivery nobody here takes (its
// consumer was cancelled, or its channel closed, before it arrived).
func (l *link) requeueOrphan(ch *Channel, from string, homeTag uint64, ackRequired bool) {
	if !ackRequired || ch == nil {
		return
	}
	ch.mu.Lock()
	var id uint64
	if ch.remote != nil {
		id = ch.remote.id
	}
	ch.mu.Unlock()
	var b wbuf
	l.header(&b, chanOpSettle, id, 0)
	b = append(b, settleRequeue)
	b.u(1)
	b.u(homeTag)
	l.sendChan(from, b)
}

// serveDeliveries takes a batch of frames from a home: deliveries for
// this node's channels and consumer cancels. It credits the bytes back
// at once unless the channel's front is full, in which case the credit
// waits for Channel.Resume (payCredit).
func (l *link) serveDeliveries(msg jsstore.BusMsg) {
	rb := &rbuf{b: msg.Data}
	from := rb.s()
	credit := map[*Channel]int64{}
	for !rb.bad && len(rb.b) >= 4 {
		n := int(binary.BigEndian.Uint32(rb.b))
		if n > len(rb.b)-4 {
			break
		}
		fr := &rbuf{b: rb.b[4 : 4+n]}
		rb.b = rb.b[4+n:]
		op, id := fr.byte(), fr.u()
		l.chansMu.Lock()
		ch := l.chans[id]
		l.chansMu.Unlock()
		switch op {
		case outDeliver:
			homeTag, ctag, flags, attempt, rec := fr.u(), fr.s(), fr.byte(), fr.u(), fr.bs()
			if fr.bad {
				continue
			}
			if ch == nil {
				// Closed here: its close frame requeues at the home.
				continue
			}
			credit[ch] += int64(n + 4)
			if len(msg.Data) > 64<<10 && len(rec)*2 < len(msg.Data) {
				// Do not let an unacked message keep a large batch.
				rec = bytes.Clone(rec)
			}
			m, err := decodeRecord(rec)
			if err != nil {
				l.r.log.Error("link: bad delivery", "from", from, "err", err)
				l.requeueOrphan(ch, from, homeTag, flags&2 == 0)
				continue
			}
			d := Delivery{ConsumerTag: ctag, Redelivered: flags&1 != 0, Message: m, Attempt: int(attempt)}
			ch.mu.Lock()
			c := ch.consumers[ctag]
			switch {
			case c != nil && c.remote != nil && !c.remote.attached && c.remote.attaching:
				c.remote.held = append(c.remote.held, heldDelivery{from: from, homeTag: homeTag, d: d})
				ch.mu.Unlock()
			case c != nil && ch.deliverRemoteLocked(c, from, homeTag, d):
				ch.mu.Unlock()
			default:
				ch.mu.Unlock()
				l.requeueOrphan(ch, from, homeTag, flags&2 == 0)
			}
		case outMoved:
			ctag := fr.s()
			if ch == nil || fr.bad {
				continue
			}
			ch.mu.Lock()
			if c := ch.consumers[ctag]; c != nil && c.remote != nil && c.remote.home == from && c.remote.attached {
				c.remote.detachLocked() // the watcher attaches it to the new home
			}
			ch.mu.Unlock()
		case outCancel, outCancelOk:
			ctag := fr.s()
			if ch == nil || fr.bad {
				continue
			}
			ch.mu.Lock()
			if c := ch.consumers[ctag]; c != nil && c.remote != nil && c.remote.home == from && c.remote.attached {
				if rc := c.remote; op == outCancelOk {
					if rc.cancelled != nil {
						close(rc.cancelled)
						rc.cancelled = nil
					}
				} else if rc.cancelled == nil {
					delete(ch.consumers, ctag)
					rc.detachLocked()
					reason := queueDeleted(c.q)
					if why := fr.s(); !fr.bad && why != "" {
						reason = &Error{Kind: KindNotFound, Text: why}
					}
					ch.sink.Cancelled(ctag, reason)
				}
			}
			ch.mu.Unlock()
		}
	}
	for ch, n := range credit {
		ch.mu.Lock()
		if ch.remote == nil {
			ch.mu.Unlock()
			continue
		}
		if ch.blocked.Load() {
			ch.remote.homes[from] += n
			ch.mu.Unlock()
			continue
		}
		id := ch.remote.id
		ch.mu.Unlock()
		l.sendCredit(from, id, n)
	}
}

func (l *link) sendCredit(home string, id uint64, n int64) {
	var b wbuf
	l.header(&b, chanOpCredit, id, 0)
	b.u(uint64(n))
	l.sendChan(home, b)
}

// payCredit returns the credit held while the front was full.
func (ch *Channel) payCredit() {
	ch.mu.Lock()
	cr := ch.remote
	if cr == nil {
		ch.mu.Unlock()
		return
	}
	owed := map[string]int64{}
	for home, n := range cr.homes {
		if n > 0 {
			owed[home] = n
			cr.homes[home] = 0
		}
	}
	ch.mu.Unlock()
	for home, n := range owed {
		ch.vh.r.link.sendCredit(home, cr.id, n)
	}
}

// tellHomes passes channel.flow and global basic.qos to the shadows.
func (ch *Channel) tellHomes(op byte, v uint64) {
	ch.mu.Lock()
	cr := ch.remote
	var homes []string
	if cr != nil {
		for h := range cr.homes {
			homes = append(homes, h)
		}
	}
	ch.mu.Unlock()
	for _, h := range homes {
		l := ch.vh.r.link
		var b wbuf
		l.header(&b, op, cr.id, 0)
		b.u(v)
		l.sendChan(h, b)
	}
}

// settleRemote sends the settlements of deliveries served by other nodes
// to the shadow channels that gave them, and returns the local ones.
// Deliveries of a consumer's earlier attachment (its home died or moved)
// are dropped: the new home redelivers them.
func (ch *Channel) settleRemote(ds []*delivery, requeue, rejected bool) []*delivery {
	if !slices.ContainsFunc(ds, func(d *delivery) bool { return d.home != "" }) {
		return ds
	}
	type target struct {
		home string
		inc  uint64
	}
	tags := map[target][]uint64{}
	local := make([]*delivery, 0, len(ds))
	ch.mu.Lock()
	var id uint64
	if ch.remote != nil {
		id = ch.remote.id
	}
	for _, d := range ds {
		if d.home == "" {
			local = append(local, d)
			continue
		}
		rc := d.c.remote
		if d.c.tag != "" && (rc == nil || rc.gen != d.gen) {
			continue
		}
		tg := target{d.home, d.gen}
		if d.c.tag != "" {
			tg.inc = rc.homeInc
		}
		tags[tg] = append(tags[tg], d.homeTag)
	}
	ch.mu.Unlock()
	mode := settleAck
	switch {
	case requeue:
		mode = settleRequeue
	case rejected:
		mode = settleReject
	}
	l := ch.vh.r.link
	for tg, ts := range tags {
		var b wbuf
		l.header(&b, chanOpSettle, id, tg.inc)
		b = append(b, mode)
		b.u(uint64(len(ts)))
		prev := uint64(0)
		for _, t := range ts {
			b.u(t - prev) // tags rise: deltas are small
			prev = t
		}
		l.sendChan(tg.home, b)
	}
	return local
}

// cancelRemote ends a consumer served by a shadow channel. It waits for
// the home's cancel-ok, which comes after every delivery the home made to
// the consumer: those reach the front before basic.cancel-ok, as on one
// node (a no-ack message is not lost in between).
func (ch *Channel) cancelRemote(c *Consumer) {
	l := ch.vh.r.link
	ch.mu.Lock()
	rc := c.remote
	if ch.consumers[c.tag] != c {
		ch.mu.Unlock()
		return
	}
	if rc == nil {
		// Became a local consumer meanwhile (its home moved here).
		delete(ch.consumers, c.tag)
		ch.mu.Unlock()
		if c.q.removeConsumer(c) {
			ch.vh.deleteQueue(c.q)
		}
		return
	}
	if !rc.attached || rc.cancelled != nil {
		// Detached, or an attach in flight (which sees it gone and
		// cancels at the home itself).
		delete(ch.consumers, c.tag)
		rc.gen++
		ch.mu.Unlock()
		return
	}
	done := make(chan struct{})
	rc.cancelled = done
	home, inc, id := rc.home, rc.homeInc, ch.remote.id
	ch.mu.Unlock()
	var b wbuf
	l.header(&b, chanOpCancel, id, inc)
	b.s(c.tag)
	l.sendChan(home, b)
	t := time.NewTimer(linkTimeout)
	select {
	case <-done:
	case <-t.C:
	case <-l.quit:
	}
	t.Stop()
	ch.mu.Lock()
	if ch.consumers[c.tag] == c {
		delete(ch.consumers, c.tag)
	}
	rc.attached = false
	rc.gen++
	if rc.cancelled == done {
		rc.cancelled = nil
	}
	ch.mu.Unlock()
}

// dropAt tells a home this node no longer counts on a consumer it served
// (declared gone or moved): if it is still there, it cancels the consumer
// and requeues its unacked messages. Best effort: a dead home is deaf.
func (l *link) dropAt(home string, homeInc, chanID uint64, tag string) {
	var b wbuf
	l.header(&b, chanOpDrop, chanID, homeInc)
	b.s(tag)
	l.sendChan(home, b)
}

// closeRemote closes the channel's shadows (their unacked messages are
// requeued on the homes) and forgets the channel.
func (ch *Channel) closeRemote() {
	ch.mu.Lock()
	cr := ch.remote
	ch.mu.Unlock()
	if cr == nil {
		return
	}
	l := ch.vh.r.link
	l.chansMu.Lock()
	delete(l.chans, cr.id)
	l.chansMu.Unlock()
	ch.mu.Lock()
	homes := make([]string, 0, len(cr.homes))
	for h := range cr.homes {
		homes = append(homes, h)
	}
	ch.mu.Unlock()
	// Each running home answers once it closed the shadow (its consumers
	// cancelled, an auto-delete queue deleted), so what the client does
	// after its channel.close-ok finds the queues as on one node.
	var wg sync.WaitGroup
	for _, h := range homes {
		var b wbuf
		l.header(&b, chanOpClose, cr.id, 0)
		if !l.r.nodeRunning(h) {
			l.sendChan(h, b)
			continue
		}
		wg.Go(func() {
			if _, err := l.bus.Request(subjectOf(h, "c"), b, closeAckWait); err != nil {
				l.r.log.Debug("link: shadow close not answered", "node", h, "err", err)
			}
		})
	}
	wg.Wait()
}

// closeAckWait bounds how long a channel's close waits for a home to
// answer that it closed the channel's shadow there.
const closeAckWait = 2 * time.Second

// getRemote is basic.get for a queue homed on another node: the home
// takes the message through the channel's shadow there.
func (ch *Channel) getRemote(q *Queue, noAck bool) (d Delivery, remaining int, ok bool, err error) {
	l := ch.vh.r.link
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return d, 0, false, errorf(KindCommandInvalid, "channel is closed")
	}
	id := ch.remoteLocked().id
	ch.mu.Unlock()
	l.waitForwards(q)
	localRan := false
	rest, home, err := l.request(q, "c", func(b *wbuf) {
		l.header(b, chanOpGet, id, 0)
		b.s(ch.vh.name)
		b.s(ch.conn.user)
		b.s(q.name)
		b.bool(noAck)
	}, func() error {
		localRan = true
		d, remaining, ok, err = ch.Get(q.name, noAck)
		return err
	})
	if err != nil || localRan {
		return d, remaining, ok, err
	}
	inc, found := rest.u(), rest.bool()
	if !found {
		return d, 0, false, nil
	}
	remaining = int(rest.u())
	homeTag, redelivered, rec := rest.u(), rest.bool(), rest.bs()
	if rest.bad {
		return d, 0, false, errorf(KindInternal, "queue '%s' in vhost '%s': bad answer from its home node", q.name, q.vh.name)
	}
	m, err := decodeRecord(rec)
	if err != nil {
		return d, 0, false, errorf(KindInternal, "queue '%s' in vhost '%s': bad message from its home node: %v", q.name, q.vh.name, err)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		if !noAck {
			go l.requeueOrphan(ch, home, homeTag, true)
		}
		return d, 0, false, errorf(KindCommandInvalid, "channel is closed")
	}
	if _, known := ch.remote.homes[home]; !known {
		ch.remote.homes[home] = 0
	}
	ch.nextTag++
	d = Delivery{Tag: ch.nextTag, Redelivered: redelivered, Message: m}
	if !noAck {
		ch.unacked = append(ch.unacked, &delivery{tag: d.Tag, q: q, c: &Consumer{q: q, ch: ch}, home: home, homeTag: homeTag, gen: inc})
		ch.unackedN.Add(1)
	}
	return d, remaining, true, nil
}
