package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestQueueServerNamed(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q1 := f.declareQueue(ch, "", false, true, true, nil)
	q2 := f.declareQueue(ch, "", false, true, true, nil)
	for _, q := range []amqp.Queue{q1, q2} {
		if !strings.HasPrefix(q.Name, "amq.gen-") {
			t.Errorf("server-named queue %q lacks amq.gen- prefix", q.Name)
		}
		if q.Messages != 0 || q.Consumers != 0 {
			t.Errorf("new queue counts %d/%d", q.Messages, q.Consumers)
		}
	}
	if q1.Name == q2.Name {
		t.Errorf("two server-named queues share the name %q", q1.Name)
	}
	// Usable through the default exchange.
	publish(t, ch, "", q1.Name, "hi")
	if m := recv(t, consume(t, ch, q1.Name, true)); string(m.Body) != "hi" {
		t.Errorf("got %q", m.Body)
	}
}

func TestQueueReservedPrefix(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	_, err := ch.QueueDeclare("amq.myqueue", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED - queue name 'amq.myqueue' contains reserved prefix 'amq.*'")
}

func TestQueueDeclareOkCounts(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := range 3 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	ch2 := f.channel(conn)
	consume(t, ch2, q, false) // takes one (prefetch unlimited: all 3 get delivered)
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	d := consume(t, ch, q, false)
	_ = d
	// ch2's consumer gets every message; counts are ready messages only.
	deadline := time.Now().Add(waitTimeout)
	for {
		decl, err := ch.QueueDeclare(q, false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if decl.Messages == 0 && decl.Consumers == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("declare-ok counts messages=%d consumers=%d, want 0 (all unacked) and 2", decl.Messages, decl.Consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}

	q2 := f.queue(ch)
	for i := range 5 {
		publish(t, ch, "", q2, fmt.Sprint(i))
	}
	f.waitMessages(f.dial(), q2, 5)
	decl, err := ch.QueueDeclare(q2, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if decl.Messages != 5 || decl.Consumers != 0 {
		t.Errorf("declare-ok counts %d/%d, want 5/0", decl.Messages, decl.Consumers)
	}
}

func TestQueuePassiveMissing(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.name("missing")
	_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	expectChannelClose(t, err, amqp.NotFound, "NOT_FOUND - no queue '"+q+"' in vhost '/'")
}

func TestQueueRedeclareDifferent(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	// Identical redeclaration, many times.
	for range 3 {
		f.declareQueue(ch, q, false, false, false, nil)
	}
	_, err := ch.QueueDeclare(q, true, false, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '"+q+"' in vhost '/': received 'true' but current is 'false'")

	ch = f.channel(conn)
	_, err = ch.QueueDeclare(q, false, true, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'auto_delete' for queue '"+q+"'")

	ch = f.channel(conn)
	_, err = ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-max-length": int32(10)})
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'x-max-length' for queue '"+q+"'", "received the value '10' of type 'signedint' but current is none")

	// With arguments: identical ok, different value refused.
	ch = f.channel(conn)
	qa := f.name("qa")
	args := amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000)}
	f.declareQueue(ch, qa, false, false, false, args)
	f.declareQueue(ch, qa, false, false, false, args)
	_, err = ch.QueueDeclare(qa, false, false, false, false, amqp.Table{"x-max-length": int32(11), "x-message-ttl": int32(60000)})
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'x-max-length'", "received '11' but current is '10'")

	// Passive declare ignores the other fields.
	ch = f.channel(conn)
	if _, err := ch.QueueDeclarePassive(q, true, true, false, false, amqp.Table{"x-foo": "bar"}); err != nil {
		t.Fatalf("passive declare with different properties: %v", err)
	}
}

func TestExclusiveQueueOtherConnection(t *testing.T) {
	f := newFixture(t)
	_, owner := f.connChan()
	q := f.name("excl")
	f.declareQueue(owner, q, false, false, true, nil)
	publish(t, owner, "", q, "mine")
	// Publishes of two connections have no order between them: a
	// declare on the owner's channel, answered after its publish, puts
	// "mine" in the queue before the other connection publishes (CI
	// under -race once got "from-other" first).
	if st, err := owner.QueueDeclarePassive(q, false, false, true, false, nil); err != nil || st.Messages != 1 {
		t.Fatalf("owner's passive declare after its publish: %+v %v, want 1 message", st, err)
	}

	other := f.dial()
	locked := []string{"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + q + "' in vhost '/'"}

	ch := f.channel(other)
	_, err := ch.QueueDeclare(q, false, false, true, false, nil)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	_, err = ch.QueueDeclarePassive(q, false, false, true, false, nil)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	_, err = ch.Consume(q, "", true, false, false, false, nil)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	_, err = ch.QueueDelete(q, false, false, false)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	_, err = ch.QueuePurge(q, false)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	_, _, err = ch.Get(q, true)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	ch = f.channel(other)
	err = ch.QueueBind(q, "excl-key", "amq.direct", false, nil)
	expectChannelClose(t, err, amqp.ResourceLocked, locked...)

	// The reply text is a shortstr: RabbitMQ cuts it at 255 bytes.
	if e := expectError(t, err, amqp.ResourceLocked); len(e.Reason) > 255 {
		t.Errorf("reply text is %d bytes long", len(e.Reason))
	}

	// Publishing from another connection is allowed.
	ch = f.channel(other)
	publish(t, ch, "", q, "from-other")
	expectOpen(t, ch)

	if got := bodies(recvN(t, consume(t, owner, q, true), 2)); !equalStrings(got, strs("mine", "from-other")) {
		t.Errorf("owner got %v", got)
	}
}

func TestExclusiveQueueDeletedWithConnection(t *testing.T) {
	f := newFixture(t)
	owner, ch := f.connChan()
	q := f.name("excl")
	f.declareQueue(ch, q, false, false, true, nil)
	srv := f.declareQueue(ch, "", false, false, true, nil)
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	conn := f.dial()
	for _, name := range []string{q, srv.Name} {
		deadline := time.Now().Add(waitTimeout)
		for {
			ch := f.channel(conn)
			_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
			if err != nil {
				expectChannelClose(t, err, amqp.NotFound, "no queue '"+name+"'")
				break
			}
			_ = ch.Close()
			if time.Now().After(deadline) {
				t.Fatalf("exclusive queue %q survived its connection", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestAutoDeleteQueue(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.name("ad")
	f.declareQueue(ch, q, false, true, false, nil)

	// Never consumed: kept, even after its declaring channel/connection go.
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	conn = f.dial()
	ch = f.channel(conn)
	time.Sleep(50 * time.Millisecond)
	if _, err := ch.QueueDeclarePassive(q, false, true, false, false, nil); err != nil {
		t.Fatalf("auto-delete queue without consumers was deleted: %v", err)
	}

	// Two consumers: cancelling one keeps it, cancelling the last deletes it.
	c1 := f.channel(conn)
	c2 := f.channel(conn)
	if _, err := c1.Consume(q, "c1", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Consume(q, "c2", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := c1.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive(q, false, true, false, false, nil); err != nil {
		t.Fatalf("auto-delete queue deleted while it still has a consumer: %v", err)
	}
	if err := c2.Cancel("c2", false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
		if err != nil {
			expectChannelClose(t, err, amqp.NotFound, "no queue '"+q+"'")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auto-delete queue kept after its last consumer cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAutoDeleteQueueConsumerChannelClosed(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.name("ad")
	f.declareQueue(ch, q, false, true, false, nil)
	cch := f.channel(conn)
	consume(t, cch, q, true)
	if err := cch.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
		if err != nil {
			expectChannelClose(t, err, amqp.NotFound, "no queue")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auto-delete queue kept after its consumer's channel closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestQueuePurge(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	for i := range 7 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	f.waitMessages(f.dial(), q, 7)
	n, err := ch.QueuePurge(q, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("purge-ok message count %d, want 7", n)
	}
	if n, err := ch.QueuePurge(q, false); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
	if _, ok := get(t, ch, q, true); ok {
		t.Errorf("message left after purge")
	}
	// Unacked messages are not purged.
	publish(t, ch, "", q, "held")
	m := recv(t, consume(t, ch, q, false))
	if n, err := ch.QueuePurge(q, false); err != nil || n != 0 {
		t.Errorf("purge with one unacked: %d, %v", n, err)
	}
	if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectOpen(t, ch)

	_, err = ch.QueuePurge(f.name("missing"), false)
	expectChannelClose(t, err, amqp.NotFound, "no queue")
}

func TestQueueDelete(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := range 4 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	f.waitMessages(conn, q, 4)

	// if-empty on a non-empty queue.
	_, err := ch.QueueDelete(q, false, true, false)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - queue '"+q+"' in vhost '/' not empty")

	// if-unused with a consumer.
	ch = f.channel(conn)
	cch := f.channel(conn)
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cch.Consume(q, "holder", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDelete(q, true, false, false)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - queue '"+q+"' in vhost '/' in use")
	if err := cch.Close(); err != nil { // requeues the one unacked message
		t.Fatal(err)
	}

	ch = f.channel(conn)
	f.waitMessages(conn, q, 4)
	n, err := ch.QueueDelete(q, true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("delete-ok message count %d, want 4", n)
	}
	_, err = ch.QueueDeclarePassive(q, false, false, false, false, nil)
	expectChannelClose(t, err, amqp.NotFound, "no queue")

	// Deleting a missing queue is not an error.
	ch = f.channel(conn)
	if n, err := ch.QueueDelete(f.name("missing"), false, false, false); err != nil || n != 0 {
		t.Errorf("delete of missing queue: %d, %v", n, err)
	}
}

func TestQueueDeleteCancelsConsumers(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	cancels := ch.NotifyCancel(make(chan string, 1))
	d, err := ch.Consume(q, "doomed", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, dch := f.connChan()
	if _, err := dch.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "doomed" {
			t.Errorf("basic.cancel for %q, want doomed", tag)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no basic.cancel from the server after the queue was deleted")
	}
	select {
	case _, ok := <-d:
		if ok {
			t.Errorf("delivery after cancel")
		}
	case <-time.After(waitTimeout):
		t.Errorf("deliveries channel not closed after server cancel")
	}
	expectOpen(t, ch)
}

func TestQueueBindErrors(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	x := f.name("nox")
	err := ch.QueueBind(q, "k", x, false, nil)
	expectChannelClose(t, err, amqp.NotFound, "NOT_FOUND - no exchange '"+x+"' in vhost '/'")

	ch = f.channel(conn)
	mq := f.name("noq")
	err = ch.QueueBind(mq, "k", "amq.direct", false, nil)
	expectChannelClose(t, err, amqp.NotFound, "NOT_FOUND - no queue '"+mq+"' in vhost '/'")

	// RabbitMQ accepts unbinding from an exchange that does not exist.
	ch = f.channel(conn)
	if err := ch.QueueUnbind(q, "k", x, nil); err != nil {
		t.Errorf("unbind from a missing exchange: %v", err)
	}
}

func TestQueueUnbind(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "direct")
	q := f.queue(ch)
	f.bind(ch, q, "a", x, nil)
	f.bind(ch, q, "b", x, nil)
	publish(t, ch, x, "a", "a1")
	publish(t, ch, x, "b", "b1")
	if err := ch.QueueUnbind(q, "a", x, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, x, "a", "a2")
	publish(t, ch, x, "b", "b2")
	// Unbinding a binding that does not exist is accepted.
	if err := ch.QueueUnbind(q, "never-bound", x, nil); err != nil {
		t.Fatalf("unbind of a missing binding: %v", err)
	}
	expectOpen(t, ch)
	f.waitMessages(f.dial(), q, 3)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("a1", "b1", "b2")) {
		t.Errorf("got %v", got)
	}
}

func TestQueueMaxLengthAndTTLArgs(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.name("maxlen")
	f.declareQueue(ch, q, false, false, false, amqp.Table{"x-max-length": int32(2)})
	for i := range 5 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	expectOpen(t, ch)
	f.waitMessages(f.dial(), q, 2)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("3", "4")) {
		t.Errorf("x-max-length 2 kept %v, want the newest [3 4]", got)
	}

	qt := f.name("ttl")
	f.declareQueue(ch, qt, false, false, false, amqp.Table{"x-message-ttl": int32(0)})
	publish(t, ch, "", qt, "expired")
	expectOpen(t, ch)
	time.Sleep(50 * time.Millisecond)
	if got := drainGet(t, ch, qt); len(got) != 0 {
		t.Errorf("x-message-ttl 0 queue still holds %v", got)
	}
}
