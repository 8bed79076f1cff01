package conformance

import (
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ 3.x answers unbind-ok when what the binding names is gone; aio-pika's
// RPC.close() unbinds its reply queue after deleting it.
func TestUnbindOfMissingThings(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	x := f.exchange(ch, "direct")
	q := f.queue(ch)
	missing := f.name("gone")

	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v, want unbind-ok", what, err)
			ch = f.channel(conn)
		}
	}
	check("queue.unbind of a missing queue from an existing exchange", ch.QueueUnbind(missing, "k", x, nil))
	check("queue.unbind of an existing queue from a missing exchange", ch.QueueUnbind(q, "k", missing, nil))
	check("queue.unbind with queue and exchange missing", ch.QueueUnbind(missing, "k", missing+".x", nil))
	check("exchange.unbind with a missing source", ch.ExchangeUnbind(x, "k", missing, false, nil))
	check("exchange.unbind with a missing destination", ch.ExchangeUnbind(missing, "k", x, false, nil))
	check("exchange.unbind with both missing", ch.ExchangeUnbind(missing, "k", missing+".x", false, nil))

	// The queue that was bound and then deleted: the aio-pika RPC close.
	bound := f.queue(ch)
	f.bind(ch, bound, "rpc", x, nil)
	if _, err := ch.QueueDelete(bound, false, false, false); err != nil {
		t.Fatalf("queue.delete: %v", err)
	}
	check("queue.unbind of a bound queue after it was deleted", ch.QueueUnbind(bound, "rpc", x, nil))
	// The channel is still usable afterwards.
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Errorf("channel after the unbinds: %v", err)
	}
	// The unbind of an existing binding still removes it.
	f.bind(ch, q, "k2", x, nil)
	check("queue.unbind of a real binding", ch.QueueUnbind(q, "k2", x, nil))
	publish(t, ch, x, "k2", "after unbind")
	if got := drainGet(t, ch, q); len(got) != 0 {
		t.Errorf("after unbind the queue still got %q", got)
	}
}

// The default exchange still refuses: only "missing" is forgiven.
func TestUnbindFromDefaultExchangeRefused(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	err := ch.QueueUnbind(q, q, "", nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("queue.unbind from the default exchange: %v, want 403", err)
	}
}
