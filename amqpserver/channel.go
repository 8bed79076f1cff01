package amqpserver

import (
	"sync"

	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

// channel is one AMQP channel. All its methods run on the connection's
// reader goroutine, except Deliver and Cancelled (the core's Sink), which
// only append to the connection's outbox.
type channel struct {
	c    *conn
	id   uint16
	core *mapping.Channel

	closing bool // we sent channel.close; wait for close-ok

	// Content assembly: recv is the state for the next frame.
	recv     func(f wire.Frame) error
	pub      *wire.BasicPublish
	msg      *mapping.Message
	bodySize uint64
	body     []byte

	confirms *confirms // nil until confirm.select

	tx    bool
	txOps []txOp
}

type txOp struct {
	publish  *wire.BasicPublish
	msg      *mapping.Message
	ack      bool
	nack     bool
	tag      uint64
	multiple bool
	requeue  bool
	fromMeth wire.Method
}

func (c *conn) openChannel(id uint16) {
	ch := &channel{c: c, id: id}
	ch.recv = ch.recvMethod
	ch.core = c.core.OpenChannel(int(id), ch)
	c.channels[id] = ch
	c.send(id, &wire.ChannelOpenOk{})
}

// close releases the channel in the core (requeueing unacked messages).
func (ch *channel) close() {
	ch.core.Close()
	if ch.confirms != nil {
		ch.confirms.close()
	}
	delete(ch.c.channels, ch.id)
}

// handleFrame feeds a frame to the channel's state machine and turns soft
// errors into channel.close.
func (ch *channel) handleFrame(f wire.Frame) error {
	if ch.closing {
		// After channel.close only close-ok (or close) counts.
		if f.Type == wire.FrameMethod {
			m, err := wire.ReadMethod(f.Payload)
			if err != nil {
				return err
			}
			switch m.(type) {
			case *wire.ChannelCloseOk:
				delete(ch.c.channels, ch.id)
			case *wire.ChannelClose:
				// The closes crossed: answer, but keep the channel
				// reserved until the peer's close-ok for ours arrives.
				ch.c.send(ch.id, &wire.ChannelCloseOk{})
			}
		}
		return nil
	}
	err := ch.recv(f)
	if err == nil {
		return nil
	}
	ae := fromCoreOrSelf(err)
	if ae == nil || ae.hard() {
		if ae != nil {
			return ae
		}
		return err
	}
	ch.fail(ae)
	return nil
}

func fromCoreOrSelf(err error) *amqpError {
	if code, ok := wire.ReplyCodeFor(err); ok {
		return &amqpError{code: code, text: wireErrorText(err)}
	}
	return fromCore(err, nil)
}

// fail closes the channel with a soft error.
func (ch *channel) fail(ae *amqpError) {
	ch.core.Close()
	if ch.confirms != nil {
		ch.confirms.close()
	}
	ch.closing = true
	ch.resetContent()
	ch.c.send(ch.id, &wire.ChannelClose{ReplyCode: ae.code, ReplyText: ae.replyText(), FailingClassID: ae.classID, FailingMethodID: ae.methodID})
}

func (ch *channel) resetContent() {
	ch.recv = ch.recvMethod
	ch.pub, ch.msg, ch.body = nil, nil, nil
}

// recvMethod expects a method frame.
func (ch *channel) recvMethod(f wire.Frame) error {
	if f.Type != wire.FrameMethod {
		return newError(wire.UnexpectedFrame, nil, "expected method frame, got non method frame instead (type %d) on channel %d", f.Type, ch.id)
	}
	m, err := wire.ReadMethod(f.Payload)
	if err != nil {
		return err
	}
	if p, ok := m.(*wire.BasicPublish); ok {
		return ch.startPublish(p)
	}
	return ch.handleMethod(m)
}

// recvHeader expects the content header of the publish in progress.
func (ch *channel) recvHeader(f wire.Frame) error {
	if f.Type != wire.FrameHeader {
		return newError(wire.UnexpectedFrame, ch.pub, "expected content header for class 60, got non content header frame instead (type %d)", f.Type)
	}
	classID, size, props, err := wire.ParseContentHeader(f.Payload)
	if err != nil {
		return err
	}
	if classID != wire.ClassBasic {
		return newError(wire.UnexpectedFrame, ch.pub, "expected content header for class 60, got one for class %d instead", classID)
	}
	if max := uint64(ch.c.s.cfg.MaxMessageSize); size > max {
		return newError(wire.PreconditionFailed, ch.pub, "message size %d is larger than configured max size %d", size, max)
	}
	ch.msg.Properties = props
	ch.bodySize = size
	if size == 0 {
		return ch.finishPublish()
	}
	ch.recv = ch.recvBody
	return nil
}

// recvBody collects body frames until the declared size is reached.
func (ch *channel) recvBody(f wire.Frame) error {
	if f.Type != wire.FrameBody {
		return newError(wire.UnexpectedFrame, ch.pub, "expected content body, got non content body frame instead (type %d)", f.Type)
	}
	got := uint64(len(ch.body)) + uint64(len(f.Payload))
	if got > ch.bodySize {
		return newError(wire.FrameError, ch.pub, "content body of %d bytes is longer than the %d declared in the header", got, ch.bodySize)
	}
	if ch.body == nil && got == ch.bodySize {
		ch.body = f.Payload // one frame: keep it, no copy
	} else {
		if ch.body == nil {
			ch.body = make([]byte, 0, ch.bodySize)
		}
		ch.body = append(ch.body, f.Payload...)
	}
	if uint64(len(ch.body)) == ch.bodySize {
		return ch.finishPublish()
	}
	return nil
}

// Deliver implements mapping.Sink: it encodes basic.deliver, the content
// header and the body into the outbox.
func (ch *channel) Deliver(d mapping.Delivery) bool {
	frameMax := ch.c.frameMax
	return ch.c.out.deliver(ch, func(b []byte) ([]byte, error) {
		b, err := wire.AppendMethodFrame(b, ch.id, &wire.BasicDeliver{
			ConsumerTag: d.ConsumerTag, DeliveryTag: d.Tag, Redelivered: d.Redelivered,
			Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey,
		})
		if err != nil {
			return b, err
		}
		return appendContent(b, ch.id, d.Message, frameMax)
	})
}

func appendContent(b []byte, id uint16, m *mapping.Message, frameMax uint32) ([]byte, error) {
	b, err := wire.AppendHeaderFrame(b, id, wire.ClassBasic, uint64(len(m.Body)), &m.Properties)
	if err != nil {
		return b, err
	}
	return wire.AppendBodyFrames(b, id, m.Body, frameMax), nil
}

// Cancelled implements mapping.Sink: the queue of a consumer went away
// (basic.cancel carries no reason).
func (ch *channel) Cancelled(tag string, _ error) {
	if ch.c.cancelNotify {
		ch.c.send(ch.id, &wire.BasicCancel{ConsumerTag: tag, NoWait: true})
	}
}

// confirmer passes the publisher confirm of one message on once the core
// has stored it, never before a basic.return for the same message.
type confirmer struct {
	cs   *confirms
	seq  uint64
	mu   sync.Mutex
	held bool // true while Publish runs: a result then waits for release
	got  bool
	ok   bool
}

func (cf *confirmer) done(ok bool) {
	cf.mu.Lock()
	if cf.held {
		cf.got, cf.ok = true, ok
		cf.mu.Unlock()
		return
	}
	cf.mu.Unlock()
	cf.cs.resolve(cf.seq, ok)
}

func (cf *confirmer) release() {
	cf.mu.Lock()
	cf.held = false
	got, ok := cf.got, cf.ok
	cf.mu.Unlock()
	if got {
		cf.cs.resolve(cf.seq, ok)
	}
}
