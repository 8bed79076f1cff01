package amqpserver

import (
	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	err := ch.core.DeclareExchange(mapping.ExchangeSpec{
		Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete, Internal: m.Internal, Args: m.Arguments,
	}, m.Passive)
	if err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.ExchangeDeclareOk{})
	}
	return nil
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	if err := ch.core.DeleteExchange(m.Exchange, m.IfUnused); err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.ExchangeDeleteOk{})
	}
	return nil
}

func (ch *channel) exchangeBind(m *wire.ExchangeBind) error {
	if err := ch.core.BindExchange(m.Destination, m.Source, m.RoutingKey, m.Arguments); err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.ExchangeBindOk{})
	}
	return nil
}

func (ch *channel) exchangeUnbind(m *wire.ExchangeUnbind) error {
	if err := ch.core.UnbindExchange(m.Destination, m.Source, m.RoutingKey, m.Arguments); err != nil {
		return fromCore(err, m)
	}
	if !m.NoWait {
		ch.c.send(ch.id, &wire.ExchangeUnbindOk{})
	}
	return nil
}
