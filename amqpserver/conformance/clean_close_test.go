package conformance

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A clean client-initiated close must reach amqp091-go's NotifyClose as
// nil. RabbitMQ sends close-ok and waits for the client to close the
// socket; a server that closes first makes the client's reader see EOF
// before it has handled close-ok, which it reports as 501 "EOF". The race
// is lost in some fraction of closes, hence the loop.
func TestCleanCloseNotifiesNil(t *testing.T) {
	f := newFixture(t)
	const closes = 200
	for i := range closes {
		conn := f.dial()
		ch := f.channel(conn)
		// Some traffic first, as a real client has before it closes.
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Fatalf("close %d: queue.declare: %v", i, err)
		}
		notify := conn.NotifyClose(make(chan *amqp.Error, 1))
		if err := conn.Close(); err != nil {
			t.Fatalf("close %d: Close: %v", i, err)
		}
		select {
		case err, ok := <-notify:
			if ok && err != nil {
				t.Fatalf("close %d of %d: NotifyClose delivered %v, want nil (a clean close)", i+1, closes, err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("close %d: NotifyClose never delivered", i)
		}
	}
}
