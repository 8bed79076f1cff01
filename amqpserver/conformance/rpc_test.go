package conformance

import (
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// startWorker consumes requests from queue on its own connection and
// answers each one to its reply_to with the same correlation id. It returns
// the reply_to values it saw.
func startWorker(t *testing.T, f *fixture, queue string, n int) <-chan string {
	t.Helper()
	_, ch := f.connChan()
	d := consume(t, ch, queue, false)
	seen := make(chan string, n)
	go func() {
		for range n {
			m, ok := <-d
			if !ok {
				return
			}
			seen <- m.ReplyTo
			_ = ch.Publish("", m.ReplyTo, false, false, amqp.Publishing{
				CorrelationId: m.CorrelationId,
				Body:          []byte("re:" + string(m.Body)),
			})
			_ = m.Ack(false)
		}
	}()
	return seen
}

func TestRPCReplyQueue(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	requests := f.queue(ch)
	reply := f.declareQueue(ch, "", false, false, true, nil)
	replies := consume(t, ch, reply.Name, true)
	seen := startWorker(t, f, requests, 3)
	for i := range 3 {
		publishMsg(t, ch, "", requests, false, amqp.Publishing{
			ReplyTo: reply.Name, CorrelationId: fmt.Sprint("c", i), Body: []byte(fmt.Sprint(i)),
		})
	}
	for i := range 3 {
		m := recv(t, replies)
		if m.CorrelationId != fmt.Sprint("c", i) || string(m.Body) != fmt.Sprint("re:", i) {
			t.Errorf("reply %d: correlation %q body %q", i, m.CorrelationId, m.Body)
		}
		if rt := <-seen; rt != reply.Name {
			t.Errorf("worker saw reply_to %q", rt)
		}
	}
}

func TestDirectReplyTo(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	requests := f.queue(ch)
	replies, err := ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume amq.rabbitmq.reply-to: %v", err)
	}
	seen := startWorker(t, f, requests, 2)
	for i := range 2 {
		publishMsg(t, ch, "", requests, false, amqp.Publishing{
			ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: fmt.Sprint("d", i), Body: []byte(fmt.Sprint(i)),
		})
	}
	var names []string
	for i := range 2 {
		m := recv(t, replies)
		if m.CorrelationId != fmt.Sprint("d", i) || string(m.Body) != fmt.Sprint("re:", i) {
			t.Errorf("reply %d: correlation %q body %q", i, m.CorrelationId, m.Body)
		}
		if m.Exchange != "" || !strings.HasPrefix(m.RoutingKey, "amq.rabbitmq.reply-to.") {
			t.Errorf("reply delivered with exchange %q routing key %q", m.Exchange, m.RoutingKey)
		}
		rt := <-seen
		if !strings.HasPrefix(rt, "amq.rabbitmq.reply-to.") || len(rt) <= len("amq.rabbitmq.reply-to.") {
			t.Errorf("worker saw reply_to %q, want amq.rabbitmq.reply-to.<unique>", rt)
		}
		names = append(names, rt)
	}
	if names[0] != names[1] {
		t.Logf("note: reply_to differs between requests of one channel: %q vs %q", names[0], names[1])
	}
	// A worker may check that the pseudo-queue exists.
	_, wch := f.connChan()
	if _, err := wch.QueueDeclarePassive(names[0], false, false, false, false, nil); err != nil {
		t.Errorf("passive declare of the reply-to name: %v", err)
	}
}

func TestDirectReplyToWithoutConsumer(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	closed := watchClose(ch)
	publishMsg(t, ch, "", q, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})
	awaitClose(t, closed, amqp.PreconditionFailed, "PRECONDITION_FAILED - fast reply consumer does not exist")
}

func TestDirectReplyToMustBeNoAck(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	_, err := ch.Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
}

func TestDirectReplyToStaleName(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	requests := f.queue(ch)
	if _, err := ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	seen := startWorker(t, f, requests, 1)
	publishMsg(t, ch, "", requests, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})
	rt := <-seen
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	// Replying to a name whose channel is gone is silently dropped.
	_, other := f.connChan()
	publishMsg(t, other, "", rt, false, amqp.Publishing{Body: []byte("late")})
	expectOpen(t, other)
}
