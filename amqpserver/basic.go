package amqpserver

import (
	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

func (ch *channel) startPublish(m *wire.BasicPublish) error {
	if m.Immediate {
		return newError(wire.NotImplemented, m, "immediate=true")
	}
	ch.c.waitIfBlocked()
	ch.pub = m
	ch.msg = &mapping.Message{Exchange: m.Exchange, RoutingKey: m.RoutingKey}
	ch.recv = ch.recvHeader
	return nil
}

// finishPublish runs when the last body frame arrived.
func (ch *channel) finishPublish() error {
	pub, msg := ch.pub, ch.msg
	msg.Body = ch.body
	if msg.Body == nil {
		msg.Body = []byte{}
	}
	ch.resetContent()
	if ch.tx {
		ch.txOps = append(ch.txOps, txOp{publish: pub, msg: msg})
		return nil
	}
	return ch.publish(pub, msg)
}

func (ch *channel) publish(pub *wire.BasicPublish, msg *mapping.Message) error {
	var cf *confirmer
	var done func(mapping.Outcome)
	if ch.confirms != nil {
		cf = &confirmer{cs: ch.confirms, seq: ch.confirms.next(), held: true}
		// A queue that is full (reject-publish) or failed to store the
		// message: basic.nack, AMQP's only word for it.
		done = func(o mapping.Outcome) { cf.done(o.Refused == mapping.NotRefused) }
	}
	out := ch.core.Publish(msg, done)
	// An alarm that went on after startPublish looked: this front's answer
	// to an alarm is to stop reading (connection.blocked), then publish.
	for out.Refused == mapping.RefusedAlarm {
		select {
		case <-ch.c.quit:
			if cf != nil {
				cf.release()
			}
			return nil
		default:
		}
		ch.c.waitIfBlocked()
		out = ch.core.Publish(msg, done)
	}
	if err := out.Err(); err != nil {
		if cf != nil {
			cf.release()
		}
		return fromCore(err, pub)
	}
	routed := out.Routed
	stats := ch.c.s.router.Stats()
	if !routed && !pub.Mandatory {
		stats.UnroutableDropped.Add(1)
	}
	if !routed && pub.Mandatory {
		stats.UnroutableReturned.Add(1)
		frameMax := ch.c.frameMax
		ch.c.out.write(func(b []byte) ([]byte, error) {
			b, err := wire.AppendMethodFrame(b, ch.id, &wire.BasicReturn{
				ReplyCode: wire.NoRoute, ReplyText: "NO_ROUTE", Exchange: msg.Exchange, RoutingKey: msg.RoutingKey,
			})
			if err != nil {
				return b, err
			}
			return appendContent(b, ch.id, msg, frameMax)
		})
	}
	if cf != nil {
		cf.release()
	}
	if ch.core.FlowHeld() {
		ch.c.endBatch() // confirms must not wait for the queue to drain
		ch.core.WaitFlow(ch.c.quit)
	}
	return nil
}

func (ch *channel) basicQos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return newError(wire.NotImplemented, m, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	ch.core.SetPrefetch(int(m.PrefetchCount), m.Global)
	ch.c.send(ch.id, &wire.BasicQosOk{})
	return nil
}

func (ch *channel) basicConsume(m *wire.BasicConsume) error {
	err := ch.core.Consume(m.Queue, m.ConsumerTag, m.NoAck, m.Exclusive, m.Arguments, func(tag string) {
		if !m.NoWait {
			ch.c.send(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
		}
	})
	if err != nil {
		return fromCore(err, m)
	}
	return nil
}

func (ch *channel) basicGet(m *wire.BasicGet) error {
	d, remaining, ok, err := ch.core.Get(m.Queue, m.NoAck)
	if err != nil {
		return fromCore(err, m)
	}
	if !ok {
		ch.c.send(ch.id, &wire.BasicGetEmpty{})
		return nil
	}
	frameMax := ch.c.frameMax
	return ch.c.out.write(func(b []byte) ([]byte, error) {
		b, err := wire.AppendMethodFrame(b, ch.id, &wire.BasicGetOk{
			DeliveryTag: d.Tag, Redelivered: d.Redelivered, Exchange: d.Message.Exchange,
			RoutingKey: d.Message.RoutingKey, MessageCount: uint32(remaining),
		})
		if err != nil {
			return b, err
		}
		return appendContent(b, ch.id, d.Message, frameMax)
	})
}

// settle applies ack, nack or reject, or records it in a transaction.
func (ch *channel) settle(m wire.Method, op txOp) error {
	if ch.tx {
		op.fromMeth = m
		ch.txOps = append(ch.txOps, op)
		return nil
	}
	return ch.applySettle(m, op)
}

func (ch *channel) applySettle(m wire.Method, op txOp) error {
	var err error
	if op.ack {
		err = ch.core.Ack(op.tag, op.multiple)
	} else {
		err = ch.core.Nack(op.tag, op.multiple, op.requeue)
	}
	if err != nil {
		return fromCore(err, m)
	}
	return nil
}

// txCommit applies the transaction's publishes and settlements in order.
func (ch *channel) txCommit(m *wire.TxCommit) error {
	if !ch.tx {
		return newError(wire.PreconditionFailed, m, "channel is not transactional")
	}
	ops := ch.txOps
	ch.txOps = nil
	for _, op := range ops {
		var err error
		if op.publish != nil {
			err = ch.publish(op.publish, op.msg)
		} else {
			err = ch.applySettle(op.fromMeth, op)
		}
		if err != nil {
			return err
		}
	}
	ch.c.send(ch.id, &wire.TxCommitOk{})
	return nil
}
