package amqpserver

import (
	"sync"
)

// Outbox limits: above highWater the core is told to stop delivering to
// the connection's channels; above hardLimit the reader stops reading
// (TCP back-pressure on the client) until the writer has drained.
const (
	highWater  = 1 << 20
	lowWater   = 256 << 10
	hardLimit  = 32 << 20
	spareLimit = 4 << 20 // a drained buffer larger than this is not kept
)

// outbox holds encoded frames in the order they must go out. Any
// goroutine may append (the reader, core deliveries from other
// connections' readers, store callbacks); only the writer goroutine takes
// from it.
type outbox struct {
	mu      sync.Mutex
	space   *sync.Cond // the reader waits here while the outbox is over hardLimit
	buf     []byte
	spare   []byte
	refused map[*channel]struct{} // channels told to pause deliveries
	closed  bool
	wake    chan struct{}
}

func newOutbox() *outbox {
	o := &outbox{wake: make(chan struct{}, 1), refused: map[*channel]struct{}{}}
	o.space = sync.NewCond(&o.mu)
	return o
}

// write appends frames produced by enc. It never blocks on the network.
// enc errors (unencodable values) are returned and nothing is appended.
func (o *outbox) write(enc func(dst []byte) ([]byte, error)) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	n := len(o.buf)
	b, err := enc(o.buf)
	if err != nil {
		o.buf = b[:n]
		o.mu.Unlock()
		return err
	}
	o.buf = b
	o.mu.Unlock()
	o.signal()
	return nil
}

// deliver appends a delivery for ch and reports whether there is room
// for more.
func (o *outbox) deliver(ch *channel, enc func(dst []byte) ([]byte, error)) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true
	}
	n := len(o.buf)
	b, err := enc(o.buf)
	if err != nil {
		b = b[:n]
	}
	o.buf = b
	room := len(o.buf) < highWater
	if !room {
		o.refused[ch] = struct{}{}
	}
	o.mu.Unlock()
	o.signal()
	if err != nil {
		ch.c.s.log.Error("cannot encode delivery", "err", err)
	}
	return room
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take hands the pending bytes to the writer.
func (o *outbox) take() []byte {
	o.mu.Lock()
	b := o.buf
	o.buf = o.spare[:0]
	o.spare = nil
	o.mu.Unlock()
	return b
}

// drained gives a written buffer back and returns the channels to resume
// when the outbox is low again.
func (o *outbox) drained(b []byte) []*channel {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cap(b) <= spareLimit && o.spare == nil {
		o.spare = b[:0]
	}
	if len(o.buf) < hardLimit {
		o.space.Broadcast()
	}
	if len(o.buf) >= lowWater || len(o.refused) == 0 {
		return nil
	}
	chans := make([]*channel, 0, len(o.refused))
	for ch := range o.refused {
		chans = append(chans, ch)
	}
	clear(o.refused)
	return chans
}

// waitForSpace blocks the reader while the outbox is over hardLimit,
// calling before first when it has to wait.
func (o *outbox) waitForSpace(before func()) {
	o.mu.Lock()
	if len(o.buf) >= hardLimit && !o.closed {
		o.mu.Unlock()
		before()
		o.mu.Lock()
	}
	for len(o.buf) >= hardLimit && !o.closed {
		o.space.Wait()
	}
	o.mu.Unlock()
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.space.Broadcast()
	o.mu.Unlock()
	o.signal()
}
