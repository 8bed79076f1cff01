package conformance

import (
	"context"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestResourceAlarmBlocksPublishers: while an alarm is active a publishing
// connection gets connection.blocked and its publishes wait; consumers on
// other connections keep draining; after the alarm the publish lands and
// connection.unblocked arrives. In-process Warren only (the test raises
// the alarm through the router).
func TestResourceAlarmBlocksPublishers(t *testing.T) {
	if os.Getenv("WARREN_TEST_AMQP_URL") != "" {
		t.Skip("needs the in-process router to raise an alarm")
	}
	f := newFixture(t)
	pubConn, pub := f.connChan()
	blockings := pubConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	conConn, con := f.connChan()
	_ = conConn
	q := f.queue(pub)
	publish(t, pub, "", q, "before")
	d := consume(t, con, q, true)
	if m := recv(t, d); string(m.Body) != "before" {
		t.Fatalf("got %q", m.Body)
	}

	shared.router.SetAlarmsForTest(true, false)
	defer shared.router.SetAlarmsForTest(false, false)
	done := make(chan error, 1)
	go func() {
		done <- pub.PublishWithContext(context.Background(), "", q, false, false, amqp.Publishing{Body: []byte("during")})
	}()
	select {
	case b := <-blockings:
		if !b.Active || b.Reason != "low on memory" {
			t.Fatalf("blocking %+v, want active with reason 'low on memory'", b)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no connection.blocked while the memory alarm is active")
	}
	select {
	case m := <-d:
		t.Fatalf("message %q delivered while its publisher is blocked", m.Body)
	case <-time.After(quietPeriod):
	}
	shared.router.SetAlarmsForTest(false, false)
	select {
	case b := <-blockings:
		if b.Active {
			t.Fatalf("second blocking notice %+v, want unblocked", b)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no connection.unblocked after the alarm cleared")
	}
	if m := recv(t, d); string(m.Body) != "during" {
		t.Fatalf("after unblock got %q, want %q", m.Body, "during")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
