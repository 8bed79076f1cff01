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
