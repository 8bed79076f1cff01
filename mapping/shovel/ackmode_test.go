package shovel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestAckModes: every ack mode moves every message between two queues of
// one broker, with a prefetch far below the number of messages (no-ack
// is bounded by the source's buffer instead of acks).
func TestAckModes(t *testing.T) {
	b := openBroker(t, t.TempDir())
	for _, mode := range []string{"on-confirm", "on-publish", "no-ack"} {
		src, dst := "src-"+mode, "dst-"+mode
		ch := b.channel()
		for _, q := range []string{src, dst} {
			if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: q, Durable: true}, false); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for i := range 500 {
			ids = append(ids, fmt.Sprint(i))
		}
		b.publish(src, ids...)
		value := fmt.Sprintf(`{"src-uri":"amqp://","src-queue":%q,"dest-uri":"amqp://","dest-queue":%q,"ack-mode":%q,"src-prefetch-count":5}`, src, dst, mode)
		if _, err := b.m.Put("/", "move-"+mode, "guest", []byte(value)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, mode+": every message moved", func() bool { return b.queueLen(dst) == 500 && b.queueLen(src) == 0 })
		if err := b.m.Delete("/", "move-"+mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeleteAfterCount: src-delete-after with a number moves that many
// messages, leaves the rest and removes the shovel.
func TestDeleteAfterCount(t *testing.T) {
	b := openBroker(t, t.TempDir())
	if _, err := b.channel().DeclareQueue(mapping.QueueSpec{Name: "some", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprint(i))
	}
	b.publish("some", ids...)
	if _, err := b.m.Put("/", "thirty", "guest", []byte(`{"src-uri":"amqp://","src-queue":"some","dest-uri":"amqp://","dest-queue":"thirty","src-delete-after":30,"src-prefetch-count":7}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the shovel to complete and go", func() bool {
		_, err := b.r.Parameter("shovel", "/", "thirty")
		return err != nil && len(b.m.Statuses("")) == 0
	})
	if got, left := b.queueLen("thirty"), b.queueLen("some"); got != 30 || left != 70 {
		t.Fatalf("moved %d, left %d; want 30 and 70", got, left)
	}
}

// TestDestinationRefuses: a destination queue that refuses messages
// (x-overflow reject-publish, full) gets no more than it takes; the rest
// stays in the source and moves once the destination has room.
func TestDestinationRefuses(t *testing.T) {
	b := openBroker(t, t.TempDir())
	ch := b.channel()
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "full", Durable: true, Args: mapping.Table{"x-max-length": int64(5), "x-overflow": "reject-publish"}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "pile", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprint(i))
	}
	b.publish("pile", ids...)
	if _, err := b.m.Put("/", "into-full", "guest", []byte(`{"src-uri":"amqp://","src-queue":"pile","dest-uri":"amqp://","dest-queue":"full","src-prefetch-count":3}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the destination to fill", func() bool { return b.queueLen("full") == 5 })
	eventually(t, 10*time.Second, "the rest to wait in the source", func() bool { return b.queueLen("pile")+3 >= 15 })
	got := 0
	eventually(t, 30*time.Second, "all 20 to arrive as the destination is drained", func() bool {
		for {
			_, _, ok, err := ch.Get("full", true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got++
		}
		return got == 20
	})
	if n := b.queueLen("pile"); n != 0 {
		t.Fatalf("source keeps %d", n)
	}
}

// TestDestinationQueueDeleted: when the destination queue is deleted
// under a running shovel, the shovel does not publish into nothing: it
// reconnects, declares the queue again and every message arrives.
func TestDestinationQueueDeleted(t *testing.T) {
	b := openBroker(t, t.TempDir())
	ch := b.channel()
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "feed", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Put("/", "feeder", "guest", []byte(`{"src-uri":"amqp://","src-queue":"feed","dest-uri":"amqp://","dest-queue":"fed","reconnect-delay":0.1}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the shovel to run", func() bool {
		st := b.m.Statuses("/")
		return len(st) == 1 && st[0].State == "running"
	})
	if _, err := ch.DeleteQueue("fed", false, false); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprint(i))
	}
	b.publish("feed", ids...)
	eventually(t, 30*time.Second, "all 10 in the declared-again queue", func() bool {
		info, err := ch.DeclareQueue(mapping.QueueSpec{Name: "fed"}, true)
		return err == nil && info.Messages == 10
	})
}

// TestExchangeEnds: src-exchange consumes through a private queue bound
// with src-exchange-key; dest-exchange with dest-exchange-key republishes
// with that key.
func TestExchangeEnds(t *testing.T) {
	b := openBroker(t, t.TempDir())
	ch := b.channel()
	for _, x := range []string{"events", "routed"} {
		if err := ch.DeclareExchange(mapping.ExchangeSpec{Name: x, Type: "direct", Durable: true}, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "by-key", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.BindQueue("by-key", "routed", "new-key", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Put("/", "x2x", "guest", []byte(`{"src-uri":"amqp://","src-exchange":"events","src-exchange-key":"orders","dest-uri":"amqp://","dest-exchange":"routed","dest-exchange-key":"new-key"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the shovel to run", func() bool {
		st := b.m.Statuses("/")
		return len(st) == 1 && st[0].State == "running"
	})
	for i, key := range []string{"orders", "other", "orders"} {
		done := make(chan bool, 1)
		m := &mapping.Message{Exchange: "events", RoutingKey: key, Body: []byte(fmt.Sprint(i))}
		if err := ch.Publish(m, func(o mapping.Outcome) { done <- o.Refused == mapping.NotRefused }).Err(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	eventually(t, 10*time.Second, "the two orders messages in by-key", func() bool { return b.queueLen("by-key") == 2 })
	d, _, ok, err := ch.Get("by-key", true)
	if err != nil || !ok || d.Message.Exchange != "routed" || d.Message.RoutingKey != "new-key" || string(d.Message.Body) != "0" {
		t.Fatalf("got %+v %v %v", d.Message, ok, err)
	}
}
