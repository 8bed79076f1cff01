package mapping

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery is one message handed to a front, for a consumer or a get.
type Delivery struct {
	Tag         uint64
	ConsumerTag string // "" for basic.get
	Redelivered bool
	Message     *Message
	// Attempt counts the deliveries of this message with ack required
	// since it was enqueued or replayed, this one included: what
	// x-delivery-limit compares (0 for no-ack deliveries and gets).
	Attempt int
}

// Sink is what a front implements to receive deliveries for one channel.
// Deliver and Cancelled are called with core locks held: they must not
// block and must not call back into the core.
type Sink interface {
	// Deliver takes the delivery and returns false when the front's
	// buffer is full; the core then stops delivering to this channel
	// until the front calls Channel.Resume.
	Deliver(d Delivery) bool
	// Cancelled says the server cancelled a consumer, and why (its queue
	// was deleted, or its queue's home node is down): an *Error whose
	// text a front may show as it is.
	Cancelled(consumerTag string, reason error)
}

// Conn is one client connection of any front. Exclusive queues belong to
// it and are deleted when it closes.
type Conn struct {
	vh          *VHost
	user        string
	info        ConnInfo
	connectedAt time.Time

	mu        sync.Mutex
	closed    bool
	channels  map[*Channel]struct{}
	exclusive map[*Queue]struct{}
}

// VHost is the connection's vhost.
func (c *Conn) VHost() *VHost { return c.vh }

// User is the authenticated user name.
func (c *Conn) User() string { return c.user }

// OpenChannel starts a channel whose deliveries go to sink; number is the
// front's channel id, for listings.
func (c *Conn) OpenChannel(number int, sink Sink) *Channel {
	ch := &Channel{conn: c, vh: c.vh, sink: sink, number: number, consumers: map[string]*Consumer{}}
	c.mu.Lock()
	c.channels[ch] = struct{}{}
	c.mu.Unlock()
	return ch
}

// Close closes every channel (requeueing unacked messages) and deletes the
// connection's exclusive queues.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.vh.r.unregister(c)
	chans := make([]*Channel, 0, len(c.channels))
	for ch := range c.channels {
		chans = append(chans, ch)
	}
	qs := make([]*Queue, 0, len(c.exclusive))
	for q := range c.exclusive {
		qs = append(qs, q)
	}
	c.mu.Unlock()
	for _, ch := range chans {
		ch.Close()
	}
	for _, q := range qs {
		c.vh.deleteQueue(q)
	}
}

// delivery is an unacknowledged message on a channel.
type delivery struct {
	tag uint64
	q   *Queue
	c   *Consumer
	m   *qmsg // nil for a delivery served by another node (home set)
	// Served through the queue's home (linkconsume.go): the home node,
	// the tag its shadow channel gave, and the consumer's attach
	// generation then (a delivery of an older attachment is dropped
	// from the books: its home is gone and the new one redelivers).
	home    string
	homeTag uint64
	gen     uint64
}

// Channel is the per-channel state every front shares: delivery tags,
// unacked messages, prefetch limits and consumers.
type Channel struct {
	conn *Conn
	vh   *VHost
	sink Sink

	blocked        atomic.Bool  // the sink is full
	paused         atomic.Bool  // channel.flow active=false
	globalPrefetch atomic.Int64 // 0 = unlimited
	unackedN       atomic.Int64
	pubOKGen       atomic.Uint64          // allowPublish cache: permission generation
	pubOKName      atomic.Pointer[string] // and the exchange last allowed

	mu        sync.Mutex
	closed    bool
	nextTag   uint64
	unacked   []*delivery // ordered by tag; settled slots are nil
	unackHead int
	prefetch  int // for consumers created from now on
	consumers map[string]*Consumer
	lastQueue string
	flowQueue atomic.Pointer[Queue] // set by Publish, taken by WaitFlow
	number    int
	confirm   bool   // shown in listings; the front does the confirming
	replyKey  string // direct reply-to: this channel's key, once consuming
	replyTag  string
	remote    *chanRemote // consumers and gets served by other nodes (linkconsume.go)
}

// Conn is the channel's connection.
func (ch *Channel) Conn() *Conn { return ch.conn }

// SetPrefetch implements basic.qos: global=false limits each consumer
// created afterwards, global=true limits the whole channel (RabbitMQ's
// meaning). 0 means no limit.
func (ch *Channel) SetPrefetch(count int, global bool) {
	if global {
		ch.globalPrefetch.Store(int64(count))
		ch.kickAll()
		ch.tellHomes(chanOpQos, uint64(count))
		return
	}
	ch.mu.Lock()
	ch.prefetch = count
	ch.mu.Unlock()
}

// SetFlow implements channel.flow: false pauses deliveries.
func (ch *Channel) SetFlow(active bool) {
	ch.paused.Store(!active)
	if active {
		ch.kickAll()
		ch.tellHomes(chanOpFlow, 1)
	} else {
		ch.tellHomes(chanOpFlow, 0)
	}
}

// Resume is called by the front when its buffer has room again.
//
// blocked is set and cleared under ch.mu: deliverLocked holds ch.mu from
// the refused Deliver until blocked is set, so a Resume that races with it
// always clears the flag after it was set.
func (ch *Channel) Resume() {
	ch.mu.Lock()
	was := ch.blocked.Swap(false)
	ch.mu.Unlock()
	if was {
		ch.kickAll()
		ch.payCredit()
	}
}

func (ch *Channel) kickAll() {
	ch.mu.Lock()
	qs := make([]*Queue, 0, len(ch.consumers))
	for _, c := range ch.consumers {
		if !slices.Contains(qs, c.q) {
			qs = append(qs, c.q)
		}
	}
	ch.mu.Unlock()
	for _, q := range qs {
		q.kick()
	}
}

// deliverLocked is called by q with q.mu held.
func (ch *Channel) deliverLocked(c *Consumer, m *qmsg) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return false
	}
	if !c.noAck {
		if g := ch.globalPrefetch.Load(); g > 0 && ch.unackedN.Load() >= g {
			return false
		}
	}
	ch.nextTag++
	if !c.noAck {
		ch.unacked = append(ch.unacked, &delivery{tag: ch.nextTag, q: c.q, c: c, m: m})
		ch.unackedN.Add(1)
	}
	d := Delivery{Tag: ch.nextTag, ConsumerTag: c.tag, Redelivered: m.redelivered, Message: m.msg}
	if !c.noAck {
		d.Attempt = m.deliveries + 1 // the queue counts this one after we return
	}
	if !ch.sink.Deliver(d) {
		ch.blocked.Store(true)
	}
	return true
}

// take removes deliveries from the unacked list: the one with tag, or
// with multiple every one up to tag (tag 0 = all).
func (ch *Channel) take(tag uint64, multiple bool) ([]*delivery, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	live := ch.unacked[ch.unackHead:]
	var out []*delivery
	switch {
	case multiple && tag == 0:
		out = make([]*delivery, 0, len(live))
		for j, d := range live {
			if d != nil {
				out = append(out, d)
				live[j] = nil
			}
		}
	default:
		found, i := ch.findTag(tag)
		if !found {
			return nil, errorf(KindPreconditionFailed, "unknown delivery tag %d", tag)
		}
		if !multiple {
			out = []*delivery{live[i]}
			live[i] = nil
			break
		}
		for j := 0; j <= i; j++ {
			if live[j] != nil {
				out = append(out, live[j])
				live[j] = nil
			}
		}
	}
	ch.unackedN.Add(-int64(len(out)))
	ch.compactLocked()
	return out, nil
}

// findTag locates tag among the live unacked slots (tags are increasing,
// slots of settled deliveries are nil).
func (ch *Channel) findTag(tag uint64) (bool, int) {
	live := ch.unacked[ch.unackHead:]
	lo, hi := 0, len(live)
	for lo < hi {
		mid := (lo + hi) / 2
		j := mid
		for j < hi && live[j] == nil {
			j++
		}
		if j == hi {
			hi = mid
			continue
		}
		switch t := live[j].tag; {
		case t == tag:
			return true, j
		case t < tag:
			lo = j + 1
		default:
			hi = mid
		}
	}
	return false, 0
}

func (ch *Channel) compactLocked() {
	for ch.unackHead < len(ch.unacked) && ch.unacked[ch.unackHead] == nil {
		ch.unackHead++
	}
	if ch.unackHead == len(ch.unacked) {
		ch.unacked = ch.unacked[:0]
		ch.unackHead = 0
	} else if ch.unackHead >= 256 && ch.unackHead*2 >= len(ch.unacked) {
		n := copy(ch.unacked, ch.unacked[ch.unackHead:])
		clear(ch.unacked[n:])
		ch.unacked = ch.unacked[:n]
		ch.unackHead = 0
	}
}

// Ack acknowledges one delivery, or with multiple every one up to tag.
func (ch *Channel) Ack(tag uint64, multiple bool) error {
	ds, err := ch.take(tag, multiple)
	if err != nil {
		return err
	}
	ch.settle(ds, false, false)
	return nil
}

// Nack rejects one delivery (or all up to tag), requeueing or dropping.
func (ch *Channel) Nack(tag uint64, multiple, requeue bool) error {
	ds, err := ch.take(tag, multiple)
	if err != nil {
		return err
	}
	ch.settle(ds, requeue, !requeue)
	return nil
}

// Recover requeues every unacked delivery of the channel.
func (ch *Channel) Recover() {
	ds, _ := ch.take(0, true)
	ch.settle(ds, true, false)
}

// settle hands deliveries back to their queues, one lock per run of the
// same queue.
func (ch *Channel) settle(ds []*delivery, requeue, rejected bool) {
	ds = ch.settleRemote(ds, requeue, rejected)
	for len(ds) > 0 {
		q := ds[0].q
		n := 1
		for n < len(ds) && ds[n].q == q {
			n++
		}
		q.settle(ds[:n], requeue, rejected)
		ds = ds[n:]
	}
	if ch.globalPrefetch.Load() > 0 {
		ch.kickAll()
	}
}

// Close cancels the channel's consumers and requeues its unacked messages.
func (ch *Channel) Close() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	cs := make([]*Consumer, 0, len(ch.consumers))
	for _, c := range ch.consumers {
		cs = append(cs, c)
		if c.remote != nil {
			c.remote.detachLocked() // a Cancel waiting for its home returns
		}
	}
	ch.consumers = map[string]*Consumer{}
	var ds []*delivery
	for _, d := range ch.unacked[ch.unackHead:] {
		if d != nil {
			ds = append(ds, d)
		}
	}
	ch.unacked, ch.unackHead = nil, 0
	ch.unackedN.Store(0)
	replyKey := ch.replyKey
	ch.mu.Unlock()

	if replyKey != "" {
		ch.vh.replyMu.Lock()
		delete(ch.vh.replies, replyKey)
		ch.vh.replyMu.Unlock()
	}
	for _, c := range cs {
		if c.q.removeConsumer(c) {
			ch.vh.deleteQueue(c.q)
		}
	}
	ch.settle(ds, true, false)
	ch.closeRemote()
	ch.conn.mu.Lock()
	delete(ch.conn.channels, ch)
	ch.conn.mu.Unlock()
}

// SetConfirm records that the front confirms publishes on this channel
// (for listings).
func (ch *Channel) SetConfirm(on bool) {
	ch.mu.Lock()
	ch.confirm = on
	ch.mu.Unlock()
}
