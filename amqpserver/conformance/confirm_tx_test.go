package conformance

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func awaitConfirm(t *testing.T, c <-chan amqp.Confirmation) amqp.Confirmation {
	t.Helper()
	select {
	case cf, ok := <-c:
		if !ok {
			t.Fatalf("confirmation channel closed")
		}
		return cf
	case <-time.After(waitTimeout):
		t.Fatalf("no publisher confirm within %v", waitTimeout)
	}
	return amqp.Confirmation{}
}

func TestConfirmAcks(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// Selecting again is harmless.
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 50
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := range n {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	for i := 1; i <= n; i++ {
		cf := awaitConfirm(t, confirms)
		if !cf.Ack || cf.DeliveryTag != uint64(i) {
			t.Fatalf("confirmation %d: tag %d ack %v", i, cf.DeliveryTag, cf.Ack)
		}
	}
	f.waitMessages(f.dial(), q, n)
}

func TestConfirmDurablePersistent(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.name("durable")
	f.declareQueue(ch, q, true, false, false, nil)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 3))
	for i := range 3 {
		publishMsg(t, ch, "", q, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
	}
	for i := 1; i <= 3; i++ {
		if cf := awaitConfirm(t, confirms); !cf.Ack || cf.DeliveryTag != uint64(i) {
			t.Fatalf("confirmation %d: %+v", i, cf)
		}
	}
	m, ok := get(t, ch, q, true)
	if !ok || m.DeliveryMode != amqp.Persistent || string(m.Body) != "0" {
		t.Errorf("got %v %q mode %d", ok, m.Body, m.DeliveryMode)
	}
}

func TestConfirmUnroutable(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "direct")
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2))
	publishMsg(t, ch, x, "nowhere", true, amqp.Publishing{Body: []byte("returned")})
	cf := awaitConfirm(t, confirms)
	if !cf.Ack || cf.DeliveryTag != 1 {
		t.Errorf("mandatory unroutable: confirmation %+v, want ack of 1", cf)
	}
	// basic.return must have come before the basic.ack.
	select {
	case r := <-returns:
		if r.ReplyCode != amqp.NoRoute || string(r.Body) != "returned" {
			t.Errorf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Errorf("basic.ack arrived before basic.return (or no return)")
	}
	// Non-mandatory unroutable: just acked.
	publish(t, ch, x, "nowhere", "dropped")
	if cf := awaitConfirm(t, confirms); !cf.Ack || cf.DeliveryTag != 2 {
		t.Errorf("unroutable: confirmation %+v, want ack of 2", cf)
	}
}

func TestConfirmTxExclusive(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	err := ch.Confirm(false)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")

	ch = f.channel(conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	err = ch.Tx()
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
}

func TestTxPublish(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	_, obs := f.connChan()
	d := consume(t, obs, q, true)
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, "rolled-back-1")
	publish(t, ch, "", q, "rolled-back-2")
	expectNoDelivery(t, d)
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, d)
	publish(t, ch, "", q, "committed-1")
	publish(t, ch, "", q, "committed-2")
	expectNoDelivery(t, d)
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if got := bodies(recvN(t, d, 2)); !equalStrings(got, strs("committed-1", "committed-2")) {
		t.Errorf("got %v", got)
	}
	// Commit with nothing pending, and the channel stays transactional.
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, "pending")
	expectNoDelivery(t, d)
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, d); string(m.Body) != "pending" {
		t.Errorf("got %q", m.Body)
	}
}

func TestTxAck(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := 1; i <= 3; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	c := f.channel(conn)
	ms := recvN(t, consume(t, c, q, false), 3)
	if err := c.Tx(); err != nil {
		t.Fatal(err)
	}
	if err := ms[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	// Rolled back: the ack is forgotten, the message stays unacked.
	if err := c.TxRollback(); err != nil {
		t.Fatal(err)
	}
	if err := ms[1].Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := c.TxCommit(); err != nil {
		t.Fatal(err)
	}
	// Closing requeues 1 (ack rolled back) and 3 (never acked), not 2.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitMessages(conn, q, 2)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("1", "3")) {
		t.Errorf("after tx ack/rollback and close: %v, want [1 3]", got)
	}
}

func TestTxAckUncommittedNotApplied(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	publish(t, ch, "", q, "x")
	c := f.channel(conn)
	m := recv(t, consume(t, c, q, false))
	if err := c.Tx(); err != nil {
		t.Fatal(err)
	}
	if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // uncommitted ack is discarded
		t.Fatal(err)
	}
	f.waitMessages(conn, q, 1)
}

func TestTxNotSelected(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	err := ch.TxCommit()
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
	ch = f.channel(conn)
	err = ch.TxRollback()
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
}
