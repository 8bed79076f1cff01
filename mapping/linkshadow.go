package mapping

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// The home's side of remote consumers: shadow channels, their sink, the
// batched frames to client nodes and their flusher.

type shadowKey struct {
	node string // client node
	inc  uint64 // its incarnation
	id   uint64 // its channel
}

type shadow struct {
	key     shadowKey
	conn    *Conn
	ch      *Channel
	sink    *shadowSink
	created time.Time
}

// shadowSink sends a shadow channel's deliveries to the client node. Its
// Deliver runs under Queue.mu and Channel.mu: it only appends to the
// link's buffer for that node (outMu, a leaf) and wakes the flusher; it
// reports full once shadowWindow bytes wait for the client's credit.
type shadowSink struct {
	l          *link
	key        shadowKey
	uncredited atomic.Int64
}

func (s *shadowSink) Deliver(d Delivery) bool {
	flags := byte(0)
	if d.Redelivered {
		flags |= 1
	}
	if d.Attempt == 0 {
		flags |= 2 // no ack required
	}
	n := s.l.queueOut(s.key.node, func(b *wbuf) {
		*b = append(*b, outDeliver)
		b.u(s.key.id)
		b.u(d.Tag)
		b.s(d.ConsumerTag)
		*b = append(*b, flags)
		b.u(uint64(d.Attempt))
		// Never record(): the message is shared (research §3.5).
		b.bs(d.Message.logRecord())
	})
	return s.uncredited.Add(int64(n)) < shadowWindow
}

// Cancelled tells the client node, with the reason's text (a frame of
// an older node, without it, reads as a deleted queue).
func (s *shadowSink) Cancelled(tag string, reason error) {
	s.l.queueOut(s.key.node, func(b *wbuf) {
		*b = append(*b, outCancel)
		b.u(s.key.id)
		b.s(tag)
		b.s(reason.Error())
	})
}

func (s *shadowSink) cancelOk(tag string) { s.cancelFrame(outCancelOk, tag) }

func (s *shadowSink) cancelFrame(op byte, tag string) {
	s.l.queueOut(s.key.node, func(b *wbuf) {
		*b = append(*b, op)
		b.u(s.key.id)
		b.s(tag)
	})
}

// dropConsumer cancels a consumer of a shadow channel and requeues its
// unacked messages (the client node dropped them from its books).
func (ch *Channel) dropConsumer(tag string) {
	ch.mu.Lock()
	c := ch.consumers[tag]
	if c == nil {
		ch.mu.Unlock()
		return
	}
	var ds []*delivery
	live := ch.unacked[ch.unackHead:]
	for j, d := range live {
		if d != nil && d.c == c {
			ds = append(ds, d)
			live[j] = nil
		}
	}
	ch.unackedN.Add(-int64(len(ds)))
	ch.compactLocked()
	ch.mu.Unlock()
	ch.Cancel(tag)
	ch.settle(ds, true, false)
}

// queueOut appends one frame for node (4-byte length first) and wakes the
// flusher; it returns the bytes the frame takes, which the client credits.
func (l *link) queueOut(node string, fill func(*wbuf)) int {
	l.outMu.Lock()
	chunks := l.out[node]
	if len(chunks) == 0 || len(chunks[len(chunks)-1]) >= outChunk {
		// A new batch (the flusher publishes each on its own, well
		// below the payload limit); it names its sender.
		var hdr wbuf
		hdr.s(l.node)
		chunks = append(chunks, hdr)
	}
	b := wbuf(chunks[len(chunks)-1])
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	fill(&b)
	n := len(b) - at
	binary.BigEndian.PutUint32(b[at:], uint32(n-4))
	chunks[len(chunks)-1] = b
	l.out[node] = chunks
	l.outMu.Unlock()
	select {
	case l.outKick <- struct{}{}:
	default:
	}
	return n
}

// flusher publishes the batched frames with no lock held; it stops after
// a last flush when the link stops.
func (l *link) flusher() {
	defer l.outWG.Done()
	for {
		stop := false
		select {
		case <-l.outKick:
		case <-l.quit:
			stop = true
		}
		l.outMu.Lock()
		var batches map[string][][]byte
		if len(l.out) > 0 {
			batches, l.out = l.out, map[string][][]byte{}
		}
		l.outMu.Unlock()
		for node, chunks := range batches {
			for _, b := range chunks {
				if err := l.bus.Publish(subjectOf(node, "d"), "", b); err != nil {
					// The client node is gone or this one is stopping:
					// the shadow is closed and requeues them.
					l.r.log.Debug("link: deliveries not sent", "node", node, "err", err)
				}
			}
		}
		if stop {
			return
		}
	}
}

// shadowFor returns the shadow of a client channel, opening it when make
// is set.
func (l *link) shadowFor(key shadowKey, vhost, user string, make bool) (*shadow, error) {
	l.shadowMu.Lock()
	sh := l.shadows[key]
	l.shadowMu.Unlock()
	if sh != nil || !make {
		return sh, nil
	}
	vh, err := l.r.VHost(vhost)
	if err != nil {
		return nil, err
	}
	if err := l.r.CheckVHostAccess(user, vhost); err != nil {
		return nil, err
	}
	conn := vh.connect(user, ConnInfo{Name: "cluster link from " + key.node, Protocol: "cluster link", Hidden: true})
	sink := &shadowSink{l: l, key: key}
	sh = &shadow{key: key, conn: conn, sink: sink, created: time.Now()}
	sh.ch = conn.OpenChannel(0, sink)
	l.shadowMu.Lock()
	if old := l.shadows[key]; old != nil {
		l.shadowMu.Unlock()
		conn.Close()
		return old, nil
	}
	l.shadows[key] = sh
	l.shadowMu.Unlock()
	return sh, nil
}

func (l *link) closeShadow(key shadowKey) {
	l.shadowMu.Lock()
	sh := l.shadows[key]
	delete(l.shadows, key)
	l.shadowMu.Unlock()
	if sh != nil {
		sh.conn.Close() // requeues its unacked messages
	}
}

// serveChannel applies a client channel's operation to its shadow. One
// subscription, so operations apply in the order the client sent them.
func (l *link) serveChannel(msg jsstore.BusMsg) {
	rb := &rbuf{b: msg.Data}
	op := rb.byte()
	key := shadowKey{node: rb.s(), inc: rb.u(), id: rb.u()}
	homeInc := rb.u()
	if rb.bad {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed link frame")))
		return
	}
	if homeInc != 0 && homeInc != l.inc {
		return // meant for this node's previous life
	}
	switch op {
	case chanOpConsume:
		vhost, user, queue, tag := rb.s(), rb.s(), rb.s(), rb.s()
		noAck, exclusive := rb.bool(), rb.bool()
		prefetch, global, prio := rb.u(), rb.u(), int64(rb.u())
		paused := rb.bool()
		sh := l.openShadow(msg, rb, key, vhost, user, queue)
		if sh == nil {
			return
		}
		sh.ch.SetPrefetch(int(prefetch), false)
		if int64(global) != sh.ch.globalPrefetch.Load() {
			sh.ch.SetPrefetch(int(global), true)
		}
		if paused != sh.ch.paused.Load() {
			sh.ch.SetFlow(!paused)
		}
		// A re-attach after the client node lost this node for a while:
		// the old attachment's unacked messages go back to the queue.
		sh.ch.dropConsumer(tag)
		var args Table
		if prio != 0 {
			args = Table{"x-priority": prio}
		}
		if err := sh.ch.Consume(queue, tag, noAck, exclusive, args, func(string) {}); err != nil {
			l.bus.Respond(msg, answerError(err))
			return
		}
		var b wbuf
		b = append(b, ansOK)
		b.u(l.inc)
		l.bus.Respond(msg, b)
	case chanOpGet:
		vhost, user, queue, noAck := rb.s(), rb.s(), rb.s(), rb.bool()
		sh := l.openShadow(msg, rb, key, vhost, user, queue)
		if sh == nil {
			return
		}
		d, remaining, ok, err := sh.ch.Get(queue, noAck)
		if err != nil {
			l.bus.Respond(msg, answerError(err))
			return
		}
		var b wbuf
		b = append(b, ansOK)
		b.u(l.inc)
		b.bool(ok)
		if ok {
			b.u(uint64(remaining))
			b.u(d.Tag)
			b.bool(d.Redelivered)
			b.bs(d.Message.logRecord())
		}
		l.bus.Respond(msg, b)
	default:
		if sh, _ := l.shadowFor(key, "", "", false); sh != nil {
			l.applyToShadow(sh, op, rb)
		}
		if op == chanOpClose && msg.Reply != "" {
			l.bus.Respond(msg, []byte{ansOK}) // closeRemote waits for it
		}
	}
}

// openShadow returns the shadow for a consume or get request of a queue
// homed here, opening it; nil when it answered the request already
// (malformed, no such queue, not homed here, access refused).
func (l *link) openShadow(msg jsstore.BusMsg, rb *rbuf, key shadowKey, vhost, user, queue string) *shadow {
	if rb.bad {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed link request")))
		return nil
	}
	if ans := l.checkHome(vhost, queue); ans != nil {
		l.bus.Respond(msg, ans)
		return nil
	}
	sh, err := l.shadowFor(key, vhost, user, true)
	if err != nil {
		l.bus.Respond(msg, answerError(err))
		return nil
	}
	return sh
}

// checkHome answers for a queue that is missing, or not homed here.
func (l *link) checkHome(vhost, queue string) []byte {
	vh, err := l.r.VHost(vhost)
	if err != nil {
		return answerError(err)
	}
	q := vh.queue(queue)
	if q == nil {
		return answerError(noQueue(vhost, queue))
	}
	if !q.atHome() {
		return movedAnswer()
	}
	return nil
}

func (l *link) applyToShadow(sh *shadow, op byte, rb *rbuf) {
	switch op {
	case chanOpCancel:
		if tag := rb.s(); !rb.bad {
			sh.ch.Cancel(tag)
			// After every delivery already queued for the client.
			sh.sink.cancelOk(tag)
		}
	case chanOpDrop:
		if tag := rb.s(); !rb.bad {
			sh.ch.dropConsumer(tag)
		}
	case chanOpSettle:
		mode, n := rb.byte(), rb.u()
		if rb.bad || n > uint64(len(rb.b)) {
			return
		}
		tags := make([]uint64, 0, n)
		prev := uint64(0)
		for range n {
			prev += rb.u()
			tags = append(tags, prev)
		}
		if rb.bad {
			return
		}
		ds := sh.ch.takeTags(tags)
		sh.ch.settle(ds, mode == settleRequeue, mode == settleReject)
	case chanOpCredit:
		n := int64(rb.u())
		if sh.sink.uncredited.Add(-n) < shadowWindow {
			sh.ch.Resume()
		}
	case chanOpQos:
		sh.ch.SetPrefetch(int(rb.u()), true)
	case chanOpFlow:
		sh.ch.SetFlow(rb.u() != 0)
	case chanOpClose:
		l.closeShadow(sh.key)
	}
}

// takeTags removes the deliveries with these tags from the unacked list;
// unknown tags are skipped (a shadow's tags come from this node only, so
// an unknown one was settled already).
func (ch *Channel) takeTags(tags []uint64) []*delivery {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*delivery, 0, len(tags))
	live := ch.unacked[ch.unackHead:]
	for _, t := range tags {
		if found, i := ch.findTag(t); found {
			out = append(out, live[i])
			live[i] = nil
		}
	}
	ch.unackedN.Add(-int64(len(out)))
	ch.compactLocked()
	return out
}

// dropDeadShadows closes the shadows of client nodes that stopped (no
// heartbeat for hbTimeout, or said so) or restarted (another
// incarnation): their unacked messages are requeued and redelivered.
func (l *link) dropDeadShadows(alive map[string]liveNode, stopped map[string]stoppedNode) {
	var dead []shadowKey
	l.shadowMu.Lock()
	for k, sh := range l.shadows {
		n, ok := alive[k.node]
		if ok && n.inc != k.inc || !ok && (time.Since(sh.created) > hbTimeout || saidStop(stopped, k.node, k.inc)) {
			dead = append(dead, k)
		}
	}
	l.shadowMu.Unlock()
	for _, k := range dead {
		l.r.log.Info("closing the channels of a node that stopped", "node", k.node)
		l.closeShadow(k)
	}
}

// reattach detaches this node's consumers from homes that stopped or
// restarted (their unacked deliveries drop out of the books: the next
// home redelivers them). A quorum queue's consumer is attached again
// once its queue has a home; any other queue's is cancelled towards its
// client, as RabbitMQ cancels the consumers of a queue whose node fails
// (the queue does not move, and the client decides whether to wait for
// it: consume again once the node is back).
func (l *link) reattach(alive map[string]liveNode, stopped map[string]stoppedNode) {
	chans := l.channels()
	type drop struct {
		home    string
		inc, id uint64
		tag     string
	}
	for _, ch := range chans {
		var todo []*Consumer
		var drops []drop
		ch.mu.Lock()
		for tag, c := range ch.consumers {
			rc := c.remote
			if rc == nil || rc.attaching || rc.cancelled != nil || !rc.readyDone {
				continue // (not yet attached once: Consume is attaching it)
			}
			if rc.attached {
				n, ok := alive[rc.home]
				if rc.home == l.node || ok && n.inc == rc.homeInc || !ok && time.Since(rc.attachedAt) < hbTimeout && !saidStop(stopped, rc.home, rc.homeInc) {
					continue
				}
				drops = append(drops, drop{rc.home, rc.homeInc, ch.remote.id, c.tag})
				rc.detachLocked()
				if !c.q.moves() {
					delete(ch.consumers, tag)
					ch.sink.Cancelled(tag, errorf(KindNotFound, "home node '%s' of queue '%s' in vhost '%s' stopped", rc.home, c.q.name, c.q.vh.name))
					continue
				}
			}
			todo = append(todo, c)
		}
		ch.mu.Unlock()
		for _, d := range drops {
			l.dropAt(d.home, d.inc, d.id, d.tag)
		}
		for _, c := range todo {
			l.reattachOne(ch, c)
		}
	}
}

// reattachOne attaches a detached consumer; a refusal that will not pass
// (queue gone, exclusive use) cancels it towards the client.
func (l *link) reattachOne(ch *Channel, c *Consumer) {
	err := ch.attach(c, nil)
	if err == nil || errors.Is(err, ErrResourceError) {
		return // attached, or no home answering yet: next round
	}
	ch.mu.Lock()
	if ch.consumers[c.tag] == c {
		delete(ch.consumers, c.tag)
		ch.sink.Cancelled(c.tag, err)
	}
	ch.mu.Unlock()
}

// homeMoved is called (by the quorum code) after q.setHome: forwards in
// flight learn it from their answers; this node's consumers of q served by
// the old home are detached (their unacked deliveries drop out of the
// books, the new home redelivers them) and attached to the new home by the
// watcher within a second; when this node was the old home, its shadow
// consumers of q end and their client nodes are told to attach elsewhere
// (outMoved), in case they learn of the move later.
func (l *link) homeMoved(q *Queue, from, to string) {
	chans := l.channels()
	for _, ch := range chans {
		var drops []*Consumer
		var incs []uint64
		ch.mu.Lock()
		for _, c := range ch.consumers {
			if rc := c.remote; c.q == q && rc != nil && rc.attached && rc.home == from {
				drops, incs = append(drops, c), append(incs, rc.homeInc)
				rc.detachLocked()
			}
		}
		id := uint64(0)
		if ch.remote != nil {
			id = ch.remote.id
		}
		ch.mu.Unlock()
		for i, c := range drops {
			l.dropAt(from, incs[i], id, c.tag)
		}
	}
	if from != l.node {
		return
	}
	shs := l.shadowList()
	for _, sh := range shs {
		sh.ch.mu.Lock()
		var tags []string
		for tag, c := range sh.ch.consumers {
			if c.q == q {
				tags = append(tags, tag)
			}
		}
		sh.ch.mu.Unlock()
		for _, tag := range tags {
			// Its unacked messages are the new home's now (settling
			// them here is a no-op); the client node attaches there.
			sh.ch.dropConsumer(tag)
			sh.sink.cancelFrame(outMoved, tag)
		}
	}
}

// channels is a snapshot of this node's channels with remote state.
func (l *link) channels() []*Channel {
	l.chansMu.Lock()
	defer l.chansMu.Unlock()
	return slices.Collect(maps.Values(l.chans))
}

// shadowList is a snapshot of the shadow channels this node keeps.
func (l *link) shadowList() []*shadow {
	l.shadowMu.Lock()
	defer l.shadowMu.Unlock()
	return slices.Collect(maps.Values(l.shadows))
}
