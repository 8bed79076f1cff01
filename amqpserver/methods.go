package amqpserver

import (
	"github.com/warrenmq/warren/amqpserver/wire"
)

// handleMethod dispatches a method (other than basic.publish) on an open
// channel. Each class has its own file.
func (ch *channel) handleMethod(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ChannelOpen:
		return newError(wire.ChannelError, m, "second 'channel.open' seen")
	case *wire.ChannelClose:
		ch.close()
		ch.c.send(ch.id, &wire.ChannelCloseOk{})
		return nil
	case *wire.ChannelCloseOk:
		return nil
	case *wire.ChannelFlow:
		if !m.Active {
			// RabbitMQ does not let clients stop deliveries this way.
			return newError(wire.NotImplemented, m, "active=false")
		}
		ch.core.SetFlow(m.Active)
		ch.c.send(ch.id, &wire.ChannelFlowOk{Active: m.Active})
		return nil
	case *wire.ChannelFlowOk:
		return nil

	case *wire.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *wire.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *wire.ExchangeBind:
		return ch.exchangeBind(m)
	case *wire.ExchangeUnbind:
		return ch.exchangeUnbind(m)

	case *wire.QueueDeclare:
		return ch.queueDeclare(m)
	case *wire.QueueBind:
		return ch.queueBind(m)
	case *wire.QueueUnbind:
		return ch.queueUnbind(m)
	case *wire.QueuePurge:
		return ch.queuePurge(m)
	case *wire.QueueDelete:
		return ch.queueDelete(m)

	case *wire.BasicQos:
		return ch.basicQos(m)
	case *wire.BasicConsume:
		return ch.basicConsume(m)
	case *wire.BasicCancel:
		ch.core.Cancel(m.ConsumerTag)
		if !m.NoWait {
			ch.c.send(ch.id, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
		}
		return nil
	case *wire.BasicGet:
		return ch.basicGet(m)
	case *wire.BasicAck:
		return ch.settle(m, txOp{ack: true, tag: m.DeliveryTag, multiple: m.Multiple})
	case *wire.BasicNack:
		return ch.settle(m, txOp{nack: true, tag: m.DeliveryTag, multiple: m.Multiple, requeue: m.Requeue})
	case *wire.BasicReject:
		return ch.settle(m, txOp{nack: true, tag: m.DeliveryTag, requeue: m.Requeue})
	case *wire.BasicRecover:
		if !m.Requeue {
			return newError(wire.NotImplemented, m, "requeue=false")
		}
		ch.core.Recover()
		ch.c.send(ch.id, &wire.BasicRecoverOk{})
		return nil
	case *wire.BasicRecoverAsync:
		if !m.Requeue {
			return newError(wire.NotImplemented, m, "requeue=false")
		}
		ch.core.Recover()
		return nil

	case *wire.ConfirmSelect:
		if ch.tx {
			return newError(wire.PreconditionFailed, m, "cannot switch from tx to confirm mode")
		}
		if ch.confirms == nil {
			ch.confirms = newConfirms(ch)
		}
		ch.core.SetConfirm(true)
		if !m.Nowait {
			ch.c.send(ch.id, &wire.ConfirmSelectOk{})
		}
		return nil
	case *wire.TxSelect:
		if ch.confirms != nil {
			return newError(wire.PreconditionFailed, m, "cannot switch from confirm to tx mode")
		}
		ch.tx = true
		ch.c.send(ch.id, &wire.TxSelectOk{})
		return nil
	case *wire.TxCommit:
		return ch.txCommit(m)
	case *wire.TxRollback:
		if !ch.tx {
			return newError(wire.PreconditionFailed, m, "channel is not transactional")
		}
		ch.txOps = nil
		ch.c.send(ch.id, &wire.TxRollbackOk{})
		return nil
	}
	return newError(wire.CommandInvalid, m, "method '%s' is not valid from a client", m.Name())
}
