package conformance

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestChannelErrorTexts checks the reply code and the RabbitMQ-shaped reply
// text of every channel-level error a client commonly hits, and that the
// connection survives them (only the channel is closed).
func TestChannelErrorTexts(t *testing.T) {
	f := newFixture(t)
	conn, setup := f.connChan()
	q := f.queue(setup)
	x := f.exchange(setup, "direct")
	missingQ := f.name("noq")
	missingX := f.name("nox")
	const vh = " in vhost '/'"

	cases := []struct {
		name  string
		op    func(ch *amqp.Channel) error
		code  int
		words []string
	}{
		{"passive queue missing", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(missingQ, false, false, false, false, nil)
			return err
		}, amqp.NotFound, []string{"NOT_FOUND - no queue '" + missingQ + "'" + vh}},
		{"consume missing queue", func(ch *amqp.Channel) error {
			_, err := ch.Consume(missingQ, "", true, false, false, false, nil)
			return err
		}, amqp.NotFound, []string{"NOT_FOUND - no queue '" + missingQ + "'" + vh}},
		{"get missing queue", func(ch *amqp.Channel) error {
			_, _, err := ch.Get(missingQ, true)
			return err
		}, amqp.NotFound, []string{"NOT_FOUND - no queue '" + missingQ + "'" + vh}},
		{"purge missing queue", func(ch *amqp.Channel) error {
			_, err := ch.QueuePurge(missingQ, false)
			return err
		}, amqp.NotFound, []string{"NOT_FOUND - no queue '" + missingQ + "'" + vh}},
		{"bind missing queue", func(ch *amqp.Channel) error {
			return ch.QueueBind(missingQ, "k", x, false, nil)
		}, amqp.NotFound, []string{"NOT_FOUND - no queue '" + missingQ + "'" + vh}},
		{"bind missing exchange", func(ch *amqp.Channel) error {
			return ch.QueueBind(q, "k", missingX, false, nil)
		}, amqp.NotFound, []string{"NOT_FOUND - no exchange '" + missingX + "'" + vh}},
		{"passive exchange missing", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(missingX, "direct", false, false, false, false, nil)
		}, amqp.NotFound, []string{"NOT_FOUND - no exchange '" + missingX + "'" + vh}},
		{"exchange bind missing destination", func(ch *amqp.Channel) error {
			return ch.ExchangeBind(missingX, "k", x, false, nil)
		}, amqp.NotFound, []string{"NOT_FOUND - no exchange '" + missingX + "'" + vh}},
		{"queue reserved name", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("amq.q", false, false, false, false, nil)
			return err
		}, amqp.AccessRefused, []string{"ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'"}},
		{"exchange reserved name", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("amq.x", "direct", false, false, false, false, nil)
		}, amqp.AccessRefused, []string{"ACCESS_REFUSED - exchange name 'amq.x' contains reserved prefix 'amq.*'"}},
		{"bind to default exchange", func(ch *amqp.Channel) error {
			return ch.QueueBind(q, "k", "", false, nil)
		}, amqp.AccessRefused, []string{"ACCESS_REFUSED - operation not permitted on the default exchange"}},
		{"delete default exchange", func(ch *amqp.Channel) error {
			return ch.ExchangeDelete("", false, false)
		}, amqp.AccessRefused, []string{"ACCESS_REFUSED - operation not permitted on the default exchange"}},
		{"queue inequivalent durable", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(q, true, false, false, false, nil)
			return err
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '" + q + "'" + vh + ": received 'true' but current is 'false'"}},
		{"exchange inequivalent type", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(x, "topic", false, false, false, false, nil)
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '" + x + "'" + vh + ": received 'topic' but current is 'direct'"}},
		{"tx commit without select", func(ch *amqp.Channel) error {
			return ch.TxCommit()
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - channel is not transactional"}},
		{"reply-to consumer with acks", func(ch *amqp.Channel) error {
			_, err := ch.Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
			return err
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - reply consumer cannot acknowledge"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("open channel (connection closed by an earlier case?): %v", err)
			}
			expectChannelClose(t, c.op(ch), c.code, c.words...)
			if !ch.IsClosed() {
				t.Errorf("channel still open after a channel error")
			}
			if conn.IsClosed() {
				t.Fatalf("a channel error closed the connection")
			}
		})
	}
	// The queue and exchange are untouched by the failed redeclarations.
	if _, err := f.channel(conn).QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAsyncChannelErrorTexts checks errors caused by asynchronous methods,
// which arrive as a channel.close while the client is doing something else.
func TestAsyncChannelErrorTexts(t *testing.T) {
	f := newFixture(t)
	conn, setup := f.connChan()
	q := f.queue(setup)
	missingX := f.name("nox")
	cases := []struct {
		name  string
		op    func(ch *amqp.Channel)
		code  int
		words []string
	}{
		{"publish to missing exchange", func(ch *amqp.Channel) {
			publish(t, ch, missingX, "k", "x")
		}, amqp.NotFound, []string{"NOT_FOUND - no exchange '" + missingX + "' in vhost '/'"}},
		{"ack unknown tag", func(ch *amqp.Channel) {
			_ = ch.Ack(5, false)
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - unknown delivery tag 5"}},
		{"ack multiple unknown tag", func(ch *amqp.Channel) {
			_ = ch.Ack(6, true)
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - unknown delivery tag 6"}},
		{"reject unknown tag", func(ch *amqp.Channel) {
			_ = ch.Reject(8, false)
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - unknown delivery tag 8"}},
		{"direct reply-to without consumer", func(ch *amqp.Channel) {
			publishMsg(t, ch, "", q, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to"})
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - fast reply consumer does not exist"}},
		{"user_id mismatch", func(ch *amqp.Channel) {
			publishMsg(t, ch, "", q, false, amqp.Publishing{UserId: "mallory"})
		}, amqp.PreconditionFailed, []string{"PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("open channel: %v", err)
			}
			closed := watchClose(ch)
			c.op(ch)
			awaitClose(t, closed, c.code, c.words...)
			if conn.IsClosed() {
				t.Fatalf("a channel error closed the connection")
			}
		})
	}
	if got := drainGet(t, f.channel(conn), q); len(got) != 0 {
		t.Errorf("refused publishes were enqueued: %q", got)
	}
}

// TestConnectionErrorTexts checks hard errors, which close the connection.
func TestConnectionErrorTexts(t *testing.T) {
	f := newFixture(t)
	t.Run("duplicate consumer tag", func(t *testing.T) {
		conn, ch := f.connChan()
		closed := watchConnClose(conn)
		q := f.queue(ch)
		if _, err := ch.Consume(q, "tag", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		_, err := ch.Consume(q, "tag", true, false, false, false, nil)
		expectError(t, err, amqp.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'tag'")
		awaitClose(t, closed, amqp.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'tag'")
	})
	t.Run("unknown exchange type", func(t *testing.T) {
		conn, ch := f.connChan()
		closed := watchConnClose(conn)
		err := ch.ExchangeDeclare(f.name("x"), "x-nonexistent", false, false, false, false, nil)
		expectError(t, err, amqp.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'x-nonexistent'")
		awaitClose(t, closed, amqp.CommandInvalid)
	})
	t.Run("recover without requeue", func(t *testing.T) {
		// 540 is a hard error: the whole connection goes.
		conn, ch := f.connChan()
		closed := watchConnClose(conn)
		expectError(t, ch.Recover(false), amqp.NotImplemented, "NOT_IMPLEMENTED - requeue=false")
		awaitClose(t, closed, amqp.NotImplemented, "NOT_IMPLEMENTED - requeue=false")
	})
	t.Run("unknown vhost", func(t *testing.T) {
		_, err := f.dialURL(f.urlWith(nil, nil, sp("no-such-vhost")), amqp.Config{})
		expectError(t, err, amqp.NotAllowed, "NOT_ALLOWED - vhost no-such-vhost not found")
	})
}
