package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// wantRefusal checks what front answered to a refused publish: the
// refusal a client of that front sees, with the reason named (want is a
// substring of the text the client got) and, on HTTP fronts, the status
// and Retry-After.
func wantRefusal(t *testing.T, front string, err error, status int, want string) {
	t.Helper()
	var r *frontRefusal
	if !errors.As(err, &r) {
		t.Errorf("%s: want a refusal naming %q, got %v", front, want, err)
		return
	}
	if !strings.Contains(r.text, want) {
		t.Errorf("%s: refusal %q does not name %q", front, r.text, want)
	}
	if status != 0 && r.status != status {
		t.Errorf("%s: status %d, want %d (%s)", front, r.status, status, r.text)
	}
	if r.header != nil && status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
		t.Errorf("%s: 429 without Retry-After", front)
	}
}

// TestEveryFrontRefusesUnderMemoryAlarm: with the memory alarm on, a
// publish through any front is refused, each front saying so in its own
// terms, and nothing reaches the queue.
func TestEveryFrontRefusesUnderMemoryAlarm(t *testing.T) {
	inst := startWarren(t, "")
	_, ch := amqpDial(t, inst)
	declare(t, ch, "alarm-q", true)
	inst.router.SetAlarmsForTest(true, false)
	defer inst.router.SetAlarmsForTest(false, false)
	a := instAddrs(inst)
	for _, f := range publishFronts {
		err := frontPublish(t, f, a, frontMsg{queue: "alarm-q", id: "alarm-" + f, front: f})
		switch f {
		case "amqp":
			wantRefusal(t, f, err, 0, "connection.blocked: low on memory")
		case "ws", "rest", "rest-batch", "mgmt":
			wantRefusal(t, f, err, http.StatusTooManyRequests, "alarm")
		case "stomp":
			wantRefusal(t, f, err, 0, "alarm")
		}
	}
	if n := queueDepth(t, amqpURL(inst), "alarm-q"); n != 0 {
		t.Errorf("%d messages enqueued under the alarm", n)
	}
}

// TestEveryFrontRefusesWhenQueueRejectsPublish: a full queue with
// x-overflow reject-publish refuses a publish through any front, each
// front naming the reason, and the queue keeps what it had.
func TestEveryFrontRefusesWhenQueueRejectsPublish(t *testing.T) {
	inst := startWarren(t, "")
	_, ch := amqpDial(t, inst)
	if _, err := ch.QueueDeclare("full-q", true, false, false, false, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	a := instAddrs(inst)
	if err := frontPublish(t, "amqp", a, frontMsg{queue: "full-q", id: "first", front: "amqp"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range publishFronts {
		err := frontPublish(t, f, a, frontMsg{queue: "full-q", id: "over-" + f, front: f})
		switch f {
		case "amqp":
			wantRefusal(t, f, err, 0, "basic.nack")
		case "ws", "rest", "rest-batch", "mgmt":
			wantRefusal(t, f, err, http.StatusTooManyRequests, "queue_full")
		case "stomp":
			wantRefusal(t, f, err, 0, "queue_full")
		}
	}
	if n := queueDepth(t, amqpURL(inst), "full-q"); n != 1 {
		t.Errorf("the full queue holds %d messages, want 1", n)
	}
}
