package main

import (
	"syscall"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestEveryFrontPersistentSurvivesKill9: one persistent message per front
// into one durable queue, each acknowledged by its front as stored; after
// SIGKILL and a restart all of them are there with their properties. (The
// WS JSON and STOMP fronts once set delivery mode 2 without its presence
// flag and the core stored their messages as transient.)
func TestEveryFrontPersistentSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a Warren process")
	}
	const queue = "fronts-durable"
	dir := t.TempDir()
	cmd, a := startProcessAddrs(t, dir)
	conn, err := amqp.Dial(a.amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for _, f := range publishFronts {
		if err := frontPublish(t, f, a, frontMsg{queue: queue, id: "via-" + f, front: f}); err != nil {
			t.Fatalf("publish via %s: %v", f, err)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	_, a = startProcessAddrs(t, dir)
	conn, err = amqp.Dial(a.amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]amqp.Delivery{}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got[d.MessageId] = d
	}
	for _, f := range publishFronts {
		id := "via-" + f
		d, ok := got[id]
		if !ok {
			t.Errorf("%s: the persistent message is gone after SIGKILL and restart (have %d messages)", f, len(got))
			continue
		}
		if d.DeliveryMode != amqp.Persistent || d.ContentType != "text/plain" || d.CorrelationId != "corr-"+id ||
			d.Headers["front"] != f || string(d.Body) != id {
			t.Errorf("%s: after restart delivery_mode=%d content_type=%q correlation_id=%q headers=%v body=%q",
				f, d.DeliveryMode, d.ContentType, d.CorrelationId, d.Headers, d.Body)
		}
	}
	if len(got) != len(publishFronts) {
		t.Errorf("want %d messages after restart, got %d", len(publishFronts), len(got))
	}
}
