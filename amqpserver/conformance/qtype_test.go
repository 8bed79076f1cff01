package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestQueueTypes declares queues of each x-queue-type with the
// properties and arguments RabbitMQ 3.10 refuses for them, and checks
// the reply code and text. It runs against the broker under test and,
// when WARREN_TEST_RABBITMQ_URL names a reference RabbitMQ (make test
// starts one), against that too with the same table: the two differ
// only where Warren says so (stream queues, x-delivery-limit on classic
// queues), and those rows name what each broker answers.
func TestQueueTypes(t *testing.T) {
	t.Run("under-test", func(t *testing.T) { queueTypeCases(t, newFixture(t)) })
	if u := os.Getenv("WARREN_TEST_RABBITMQ_URL"); u != "" {
		t.Run("reference-rabbitmq", func(t *testing.T) {
			f := &fixture{t: t, url: u}
			t.Cleanup(f.cleanup)
			queueTypeCases(t, f)
		})
	}
}

func queueTypeCases(t *testing.T, f *fixture) {
	conn := f.dial()
	rabbit := conn.Properties["product"] == "RabbitMQ"
	quorum := func(kv ...any) amqp.Table {
		args := amqp.Table{"x-queue-type": "quorum"}
		for i := 0; i < len(kv); i += 2 {
			args[kv[i].(string)] = kv[i+1]
		}
		return args
	}
	const pf = "PRECONDITION_FAILED - "
	// text has %[1]s for the queue name; "" = declare-ok.
	type row struct {
		name                       string
		durable, autoDel, excl     bool
		args                       amqp.Table
		text, rabbitText           string // rabbitText: only where RabbitMQ differs
		serverNamed, rabbitDiffers bool
	}
	invalidArg := func(arg, typ string) string {
		return pf + "invalid arg '" + arg + "' for queue '%[1]s' in vhost '/' of queue type rabbit_" + typ + "_queue"
	}
	rows := []row{
		{name: "quorum", durable: true, args: quorum()},
		{name: "quorum-args", durable: true, args: quorum("x-delivery-limit", int32(3), "x-quorum-initial-group-size", int32(3),
			"x-message-ttl", int32(60000), "x-max-length", int32(10), "x-overflow", "reject-publish", "x-single-active-consumer", true)},
		{name: "classic", durable: true, args: amqp.Table{"x-queue-type": "classic"}},
		{name: "quorum-nondurable", args: quorum(), text: pf + "invalid property 'non-durable' for queue '%[1]s' in vhost '/'"},
		{name: "quorum-autodelete", durable: true, autoDel: true, args: quorum(), text: pf + "invalid property 'auto-delete' for queue '%[1]s' in vhost '/'"},
		{name: "quorum-exclusive", durable: true, excl: true, args: quorum(), text: pf + "invalid property 'exclusive-owner' for queue '%[1]s' in vhost '/'"},
		{name: "quorum-priority", durable: true, args: quorum("x-max-priority", int32(5)), text: invalidArg("x-max-priority", "quorum")},
		{name: "quorum-mode", durable: true, args: quorum("x-queue-mode", "lazy"), text: invalidArg("x-queue-mode", "quorum")},
		{name: "quorum-version", durable: true, args: quorum("x-queue-version", int32(2)), text: invalidArg("x-queue-version", "quorum")},
		{name: "quorum-group0", durable: true, args: quorum("x-quorum-initial-group-size", int32(0)),
			text: pf + "invalid arg 'x-quorum-initial-group-size' for queue '%[1]s' in vhost '/': {value_zero,0}"},
		{name: "classic-group", durable: true, args: amqp.Table{"x-quorum-initial-group-size": int32(3)}, text: invalidArg("x-quorum-initial-group-size", "classic")},
		{name: "unknown-type", durable: true, args: amqp.Table{"x-queue-type": "foo"},
			text: pf + "invalid arg 'x-queue-type' for queue '%[1]s' in vhost '/': \"unsupported queue type 'foo'\""},
		{name: "int-type", durable: true, args: amqp.Table{"x-queue-type": int32(1)},
			text: pf + "invalid arg 'x-queue-type' for queue '%[1]s' in vhost '/': {unacceptable_type,signedint}"},
		{name: "server-named-quorum", durable: true, args: quorum(), serverNamed: true,
			text: pf + "Cannot declare a server-named queue for type rabbit_quorum_queue"},
		{name: "stream", durable: true, args: amqp.Table{"x-queue-type": "stream"}, rabbitDiffers: true,
			text: pf + "invalid arg 'x-queue-type' for queue '%[1]s' in vhost '/': \"unsupported queue type 'stream'\": Warren does not implement stream queues (declare a classic or quorum queue)"},
		{name: "classic-delivery-limit", durable: true, args: amqp.Table{"x-delivery-limit": int32(3)}, rabbitDiffers: true,
			rabbitText: invalidArg("x-delivery-limit", "classic")},
	}
	var ch *amqp.Channel
	for _, r := range rows {
		name := qtypeName(t, r.name)
		if r.serverNamed {
			name = ""
		}
		if ch == nil || ch.IsClosed() {
			ch = f.channel(conn)
		}
		q, err := ch.QueueDeclare(name, r.durable, r.autoDel, r.excl, false, r.args)
		if err == nil {
			f.trackQueue(q.Name)
		}
		want := r.text
		if rabbit && r.rabbitDiffers {
			want = r.rabbitText
		}
		checkDeclare(t, r.name, err, want, name)
	}

	// A redeclaration with another type, or none over quorum, is refused;
	// none and classic are the same type.
	for _, r := range []struct{ first, second, text string }{
		{"quorum", "classic", pf + "inequivalent arg 'x-queue-type' for queue '%[1]s' in vhost '/': received 'classic' but current is 'quorum'"},
		{"quorum", "", pf + "inequivalent arg 'x-queue-type' for queue '%[1]s' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"},
		{"", "quorum", pf + "inequivalent arg 'x-queue-type' for queue '%[1]s' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"},
		{"classic", "", ""},
		{"", "classic", ""},
	} {
		typed := func(v string) amqp.Table {
			if v == "" {
				return nil
			}
			return amqp.Table{"x-queue-type": v}
		}
		name := qtypeName(t, "redeclare")
		if ch.IsClosed() {
			ch = f.channel(conn)
		}
		f.declareQueue(ch, name, true, false, false, typed(r.first))
		_, err := ch.QueueDeclare(name, true, false, false, false, typed(r.second))
		checkDeclare(t, fmt.Sprintf("%q then %q", r.first, r.second), err, r.text, name)
	}
	if conn.IsClosed() {
		t.Errorf("the channel errors closed the connection")
	}
}

// qtypeName names a queue for this test: qtype- (the prefix this suite's
// queues use on the shared reference broker), the case and a random part.
func qtypeName(t *testing.T, what string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "qtype-" + what + "-" + hex.EncodeToString(b[:])
}

func checkDeclare(t *testing.T, what string, err error, want, name string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: %v, want declare-ok", what, err)
		}
		return
	}
	if strings.Contains(want, "%[1]s") {
		want = fmt.Sprintf(want, name)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		t.Errorf("%s: %v, want 406 %q", what, err, want)
		return
	}
	if ae.Code != amqp.PreconditionFailed || ae.Reason != want {
		t.Errorf("%s: %d %q, want 406 %q", what, ae.Code, ae.Reason, want)
	}
}
