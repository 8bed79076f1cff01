package amqpserver

import (
	"slices"
	"sync"

	"github.com/warrenmq/warren/amqpserver/wire"
)

// confirms holds the publisher confirms of one channel in confirm mode and
// sends them as RabbitMQ does: confirms that are ready together go out as
// one basic.ack multiple=true for the run below the oldest message still
// unconfirmed, the rest one by one. They are ready together when the
// reader processed a burst of publishes already in its buffer, or when
// the store confirmed several writes before the writer woke up.
//
// Lock order: confirms.mu, then the outbox's.
type confirms struct {
	ch *channel

	mu          sync.Mutex
	last        uint64              // the last sequence number given out
	low         uint64              // no unconfirmed sequence number is below low
	unconfirmed map[uint64]struct{} // published, not yet acked or nacked
	acks, nacks []uint64            // ready to send
	dirty       bool                // queued in the connection's confirmsReady
	closed      bool                // the channel closed: nothing more is sent
}

func newConfirms(ch *channel) *confirms {
	return &confirms{ch: ch, low: 1, unconfirmed: map[uint64]struct{}{}}
}

// next gives out the sequence number of the next publish.
func (cs *confirms) next() uint64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.last++
	cs.unconfirmed[cs.last] = struct{}{}
	return cs.last
}

// resolve records the outcome of publish seq and has it sent.
func (cs *confirms) resolve(seq uint64, ok bool) {
	cs.mu.Lock()
	if _, pending := cs.unconfirmed[seq]; !pending || cs.closed {
		cs.mu.Unlock()
		return
	}
	delete(cs.unconfirmed, seq)
	if ok {
		cs.acks = append(cs.acks, seq)
	} else {
		cs.nacks = append(cs.nacks, seq)
	}
	queued := cs.dirty
	cs.dirty = true
	cs.mu.Unlock()
	if ok {
		cs.ch.c.s.router.Stats().Confirmed.Add(1)
	}
	if !queued {
		cs.ch.c.confirmsReady(cs)
	}
}

// close drops what is not sent yet: the channel is gone (RabbitMQ neither
// confirms the publishes of a closed channel).
func (cs *confirms) close() {
	cs.mu.Lock()
	cs.closed = true
	cs.acks, cs.nacks = nil, nil
	clear(cs.unconfirmed)
	cs.mu.Unlock()
}

// flush encodes the ready confirms into the outbox.
func (cs *confirms) flush() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dirty = false
	if cs.closed || len(cs.acks)+len(cs.nacks) == 0 {
		return
	}
	for cs.low <= cs.last {
		if _, pending := cs.unconfirmed[cs.low]; pending {
			break
		}
		cs.low++
	}
	slices.Sort(cs.acks)
	slices.Sort(cs.nacks)
	id := cs.ch.id
	cs.ch.c.out.write(func(b []byte) ([]byte, error) {
		b, err := appendCoalesced(b, id, cs.acks, cs.nacks, cs.low, func(tag uint64, multiple bool) wire.Method {
			return &wire.BasicAck{DeliveryTag: tag, Multiple: multiple}
		})
		if err != nil {
			return b, err
		}
		return appendCoalesced(b, id, cs.nacks, cs.acks, cs.low, func(tag uint64, multiple bool) wire.Method {
			return &wire.BasicNack{DeliveryTag: tag, Multiple: multiple}
		})
	})
	cs.acks, cs.nacks = cs.acks[:0], cs.nacks[:0]
}

// appendCoalesced encodes the sorted tags: those below both the oldest
// unconfirmed message (low) and the first tag of the other kind as one
// frame with multiple=true, the others one frame each.
func appendCoalesced(b []byte, id uint16, tags, others []uint64, low uint64, method func(tag uint64, multiple bool) wire.Method) ([]byte, error) {
	cutoff := low
	if len(others) > 0 {
		cutoff = min(cutoff, others[0])
	}
	n, _ := slices.BinarySearch(tags, cutoff)
	var err error
	if n > 0 {
		if b, err = wire.AppendMethodFrame(b, id, method(tags[n-1], true)); err != nil {
			return b, err
		}
	}
	for _, tag := range tags[n:] {
		if b, err = wire.AppendMethodFrame(b, id, method(tag, false)); err != nil {
			return b, err
		}
	}
	return b, nil
}

// confirmsReady queues cs for the writer. While the reader works through
// frames that were already buffered, the writer is not woken: the burst's
// confirms then leave together when the reader runs dry (endBatch).
func (c *conn) confirmsReady(cs *confirms) {
	c.confMu.Lock()
	c.confReady = append(c.confReady, cs)
	batching := c.batching
	c.confMu.Unlock()
	if !batching {
		c.out.signal()
	}
}

// flushConfirms encodes every channel's ready confirms; the writer calls
// it each time it wakes.
func (c *conn) flushConfirms() {
	c.confMu.Lock()
	ready := c.confReady
	c.confReady = nil
	c.confMu.Unlock()
	for _, cs := range ready {
		cs.flush()
	}
}

// beginBatch is called by the reader when another whole frame is already
// buffered, endBatch before it may block (a read from the socket, an
// alarm, flow control).
func (c *conn) beginBatch() {
	c.confMu.Lock()
	c.batching = true
	c.confMu.Unlock()
}

func (c *conn) endBatch() {
	c.confMu.Lock()
	was := c.batching
	c.batching = false
	ready := len(c.confReady) > 0
	c.confMu.Unlock()
	if was && ready {
		c.out.signal()
	}
}
