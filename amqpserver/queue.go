package amqpserver

import (
	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

func (ch *channel) queueDeclare(m *wire.QueueDeclare) error {
	info, err := ch.core.DeclareQueue(mapping.QueueSpec{
		Name: m.Queue, Durable: m.Durable, Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Args: m.Arguments,
	}, m.Passive)
	if err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.QueueDeclareOk{Queue: info.Name, MessageCount: uint32(info.Messages), ConsumerCount: uint32(info.Consumers)})
	}
	return nil
}

func (ch *channel) queueBind(m *wire.QueueBind) error {
	if err := ch.core.BindQueue(m.Queue, m.Exchange, m.RoutingKey, m.Arguments); err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.QueueBindOk{})
	}
	return nil
}

func (ch *channel) queueUnbind(m *wire.QueueUnbind) error {
	if err := ch.core.UnbindQueue(m.Queue, m.Exchange, m.RoutingKey, m.Arguments); err != nil {
		return fromCore(err, m)
	}
	ch.c.send(ch.id, &wire.QueueUnbindOk{})
	return nil
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	n, err := ch.core.PurgeQueue(m.Queue)
	if err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.QueuePurgeOk{MessageCount: uint32(n)})
	}
	return nil
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	n, err := ch.core.DeleteQueue(m.Queue, m.IfUnused, m.IfEmpty)
	if err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.QueueDeleteOk{MessageCount: uint32(n)})
	}
	return nil
}
