package conformance

import (
	"fmt"
	"sort"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestExchangeDeclareEachType(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	for _, kind := range []string{"direct", "fanout", "topic", "headers"} {
		x := f.exchange(ch, kind)
		// Identical redeclaration is accepted, passive declaration too.
		if err := ch.ExchangeDeclare(x, kind, false, false, false, false, nil); err != nil {
			t.Fatalf("redeclare %s: %v", kind, err)
		}
		if err := ch.ExchangeDeclarePassive(x, kind, false, false, false, false, nil); err != nil {
			t.Fatalf("passive %s: %v", kind, err)
		}
	}
	// Durable, auto-delete and with arguments: identical redeclare still ok.
	x := f.name("x")
	f.trackExchange(x)
	args := amqp.Table{"alternate-exchange": "amq.fanout"}
	for range 2 {
		if err := ch.ExchangeDeclare(x, "topic", true, false, false, false, args); err != nil {
			t.Fatalf("declare durable topic with args: %v", err)
		}
	}
}

func TestExchangeRedeclareDifferent(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	x := f.exchange(ch, "direct")

	err := ch.ExchangeDeclare(x, "fanout", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED", "inequivalent arg 'type'", "exchange '"+x+"'", "vhost '/'", "received 'fanout' but current is 'direct'")

	ch = f.channel(conn)
	err = ch.ExchangeDeclare(x, "direct", true, false, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'durable'", "received 'true' but current is 'false'")

	ch = f.channel(conn)
	err = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'auto_delete'")

	ch = f.channel(conn)
	err = ch.ExchangeDeclare(x, "direct", false, false, false, false, amqp.Table{"alternate-exchange": "amq.fanout"})
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'alternate-exchange'", "received the value 'amq.fanout' of type 'longstr' but current is none")

	// The exchange is unchanged.
	ch = f.channel(conn)
	if err := ch.ExchangeDeclarePassive(x, "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

func TestExchangeReservedPrefix(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	err := ch.ExchangeDeclare("amq.foo", "direct", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED", "amq.foo", "reserved prefix 'amq.*'")

	// Redeclaring a predeclared one identically is accepted (equivalence is
	// checked first), differently it is refused.
	ch = f.channel(conn)
	if err := ch.ExchangeDeclare("amq.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("identical redeclare of amq.direct: %v", err)
	}
	err = ch.ExchangeDeclare("amq.direct", "direct", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.PreconditionFailed, "inequivalent arg 'durable' for exchange 'amq.direct' in vhost '/': received 'false' but current is 'true'")

	ch = f.channel(conn)
	for _, p := range [][2]string{{"amq.direct", "direct"}, {"amq.fanout", "fanout"}, {"amq.topic", "topic"}, {"amq.headers", "headers"}, {"amq.match", "headers"}} {
		if err := ch.ExchangeDeclarePassive(p[0], p[1], true, false, false, false, nil); err != nil {
			t.Fatalf("passive declare of predeclared %q: %v", p[0], err)
		}
	}
	// Even a passive declare of the default exchange is refused.
	err = ch.ExchangeDeclarePassive("", "direct", true, false, false, false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
}

func TestExchangePassiveMissing(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.name("missing")
	err := ch.ExchangeDeclarePassive(x, "direct", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.NotFound, "NOT_FOUND - no exchange '"+x+"' in vhost '/'")
}

func TestExchangeDelete(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	x := f.exchange(ch, "fanout")
	if err := ch.ExchangeDelete(x, false, false); err != nil {
		t.Fatal(err)
	}
	err := ch.ExchangeDeclarePassive(x, "fanout", false, false, false, false, nil)
	expectChannelClose(t, err, amqp.NotFound, "no exchange")

	// if-unused with a binding → 406; without → ok.
	ch = f.channel(conn)
	x = f.exchange(ch, "direct")
	q := f.queue(ch)
	f.bind(ch, q, "k", x, nil)
	err = ch.ExchangeDelete(x, true, false)
	expectChannelClose(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED", "exchange '"+x+"' in vhost '/' in use")
	ch = f.channel(conn)
	if err := ch.QueueUnbind(q, "k", x, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(x, true, false); err != nil {
		t.Fatalf("delete if-unused after unbind: %v", err)
	}
}

func TestExchangeDeleteRemovesBindings(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "fanout")
	q := f.queue(ch)
	f.bind(ch, q, "", x, nil)
	if err := ch.ExchangeDelete(x, false, false); err != nil {
		t.Fatal(err)
	}
	// Re-creating it does not resurrect the binding.
	if err := ch.ExchangeDeclare(x, "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, x, "", "lost")
	expectOpen(t, ch)
	if got := drainGet(t, ch, q); len(got) != 0 {
		t.Errorf("binding survived exchange deletion: got %v", got)
	}
}

func TestExchangeToExchangeBinding(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	src := f.exchange(ch, "topic")
	dst := f.exchange(ch, "direct")
	q := f.queue(ch)
	if err := ch.ExchangeBind(dst, "a.*", src, false, nil); err != nil {
		t.Fatalf("exchange.bind: %v", err)
	}
	f.bind(ch, q, "a.b", dst, nil)
	publish(t, ch, src, "a.b", "via-e2e")
	publish(t, ch, src, "a.c", "dst-has-no-binding")
	publish(t, ch, src, "x.b", "src-does-not-match")
	expectOpen(t, ch)
	f.waitMessages(f.dial(), q, 1)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("via-e2e")) {
		t.Errorf("got %v", got)
	}
	if err := ch.ExchangeUnbind(dst, "a.*", src, false, nil); err != nil {
		t.Fatalf("exchange.unbind: %v", err)
	}
	publish(t, ch, src, "a.b", "after-unbind")
	expectOpen(t, ch)
	time.Sleep(50 * time.Millisecond)
	if got := drainGet(t, ch, q); len(got) != 0 {
		t.Errorf("after unbind got %v", got)
	}
	// Binding to a missing source or destination → 404.
	err := ch.ExchangeBind(dst, "", f.name("nosrc"), false, nil)
	expectChannelClose(t, err, amqp.NotFound, "NOT_FOUND", "no exchange")
}

func TestExchangeToExchangeNoDuplicates(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	src := f.exchange(ch, "fanout")
	mid := f.exchange(ch, "fanout")
	q := f.queue(ch)
	if err := ch.ExchangeBind(mid, "", src, false, nil); err != nil {
		t.Fatal(err)
	}
	f.bind(ch, q, "", mid, nil)
	f.bind(ch, q, "", src, nil)
	publish(t, ch, src, "", "once")
	expectOpen(t, ch)
	time.Sleep(50 * time.Millisecond)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("once")) {
		t.Errorf("a queue reachable by two paths must get one copy, got %v", got)
	}
}

func TestInternalExchange(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	src := f.exchange(ch, "fanout")
	x := f.name("internal")
	f.trackExchange(x)
	if err := ch.ExchangeDeclare(x, "fanout", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	q := f.queue(ch)
	f.bind(ch, q, "", x, nil)
	// Reachable through an exchange-to-exchange binding.
	if err := ch.ExchangeBind(x, "", src, false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, src, "", "via-src")
	expectOpen(t, ch)
	m := recv(t, consume(t, ch, q, true))
	if string(m.Body) != "via-src" {
		t.Errorf("got %q", m.Body)
	}
	closed := watchClose(ch)
	publish(t, ch, x, "", "direct-to-internal")
	awaitClose(t, closed, amqp.AccessRefused, "ACCESS_REFUSED", "cannot publish to internal exchange '"+x+"' in vhost '/'")
}

func TestExchangeUnknownType(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	connClosed := watchConnClose(conn)
	x := f.name("badtype")
	err := ch.ExchangeDeclare(x, "no-such-type", false, false, false, false, nil)
	expectError(t, err, amqp.CommandInvalid, "COMMAND_INVALID", "unknown exchange type 'no-such-type'")
	awaitClose(t, connClosed, amqp.CommandInvalid)
}

// topicBindings is the routing table of TestTopicRouting.
var topicBindings = []string{"*.orange.*", "*.*.rabbit", "lazy.#", "#", "a.#.b", "kern.*", "a.*.#", "x.#.#.y", "exact.key"}

func TestTopicRouting(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "topic")
	queues := map[string]string{} // pattern → queue
	for _, p := range topicBindings {
		q := f.queue(ch)
		queues[p] = q
		f.bind(ch, q, p, x, nil)
	}
	cases := map[string][]string{
		"quick.orange.rabbit":      {"*.orange.*", "*.*.rabbit", "#"},
		"lazy.orange.elephant":     {"*.orange.*", "lazy.#", "#"},
		"quick.orange.fox":         {"*.orange.*", "#"},
		"lazy.brown.fox":           {"lazy.#", "#"},
		"lazy.pink.rabbit":         {"*.*.rabbit", "lazy.#", "#"},
		"quick.brown.fox":          {"#"},
		"orange":                   {"#"},
		"quick.orange.male.rabbit": {"#"},
		"lazy.orange.male.rabbit":  {"lazy.#", "#"},
		"lazy":                     {"lazy.#", "#"},
		"kern.critical":            {"kern.*", "#"},
		"kern.critical.test":       {"#"},
		"kern":                     {"#"},
		"kern.":                    {"kern.*", "#"},
		"a.b":                      {"a.#.b", "a.*.#", "#"},
		"a.x.y.b":                  {"a.#.b", "a.*.#", "#"},
		"a.b.b":                    {"a.#.b", "a.*.#", "#"},
		"a":                        {"#"},
		"a.c":                      {"a.*.#", "#"},
		"x.y":                      {"x.#.#.y", "#"},
		"x.1.2.3.y":                {"x.#.#.y", "#"},
		"exact.key":                {"exact.key", "#"},
		"exact.keys":               {"#"},
		"":                         {"#"},
		"..":                       {"#"},
	}
	keys := make([]string, 0, len(cases))
	for k := range cases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		publish(t, ch, x, k, k)
	}
	expectOpen(t, ch)
	want := map[string][]string{} // pattern → keys, in publish order
	for _, k := range keys {
		for _, p := range cases[k] {
			want[p] = append(want[p], k)
		}
	}
	side := f.dial()
	for _, p := range topicBindings {
		f.waitMessages(side, queues[p], len(want[p]))
		got := drainGet(t, ch, queues[p])
		if !equalStrings(got, want[p]) {
			t.Errorf("binding %q received %q, want %q", p, got, want[p])
		}
	}
}

func TestDirectRouting(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "direct")
	q1, q2 := f.queue(ch), f.queue(ch)
	f.bind(ch, q1, "black", x, nil)
	f.bind(ch, q1, "green", x, nil)
	f.bind(ch, q2, "green", x, nil)
	f.bind(ch, q2, "orange", x, nil)
	f.bind(ch, q2, "orange", x, nil) // duplicate binding is idempotent
	for _, k := range []string{"black", "green", "orange", "blue", "Black", ""} {
		publish(t, ch, x, k, k)
	}
	expectOpen(t, ch)
	side := f.dial()
	f.waitMessages(side, q1, 2)
	f.waitMessages(side, q2, 2)
	if got := drainGet(t, ch, q1); !equalStrings(got, strs("black", "green")) {
		t.Errorf("q1 got %v", got)
	}
	if got := drainGet(t, ch, q2); !equalStrings(got, strs("green", "orange")) {
		t.Errorf("q2 got %v", got)
	}
	// The default exchange routes by queue name, and cannot be bound.
	publish(t, ch, "", q1, "default")
	if m := recv(t, consume(t, ch, q1, true)); string(m.Body) != "default" || m.Exchange != "" || m.RoutingKey != q1 {
		t.Errorf("default exchange delivery: body %q exchange %q key %q", m.Body, m.Exchange, m.RoutingKey)
	}
	err := ch.QueueBind(q2, "x", "", false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED", "default exchange")
}

func TestFanoutRouting(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "fanout")
	var qs []string
	for range 3 {
		q := f.queue(ch)
		f.bind(ch, q, fmt.Sprint("ignored-", len(qs)), x, nil)
		qs = append(qs, q)
	}
	publish(t, ch, x, "anything", "m1")
	publish(t, ch, x, "", "m2")
	expectOpen(t, ch)
	side := f.dial()
	for _, q := range qs {
		f.waitMessages(side, q, 2)
		if got := drainGet(t, ch, q); !equalStrings(got, strs("m1", "m2")) {
			t.Errorf("%s got %v", q, got)
		}
	}
}

func TestHeadersRouting(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	x := f.exchange(ch, "headers")
	bindings := map[string]amqp.Table{
		"all":       {"x-match": "all", "format": "pdf", "type": "report"},
		"any":       {"x-match": "any", "format": "pdf", "type": "log"},
		"default":   {"format": "zip", "n": int32(1)}, // no x-match means all; ints compare across widths
		"int":       {"x-match": "all", "n": int32(42)},
		"bool":      {"x-match": "all", "flag": true},
		"empty-all": {"x-match": "all"},
		"empty-any": {"x-match": "any"},
		"present":   {"x-match": "any", "tag": nil}, // void: the header only has to be present
		"x-key":     {"x-match": "any", "x-k": "v"}, // x- headers are ignored by all/any
	}
	qs := map[string]string{}
	for name, args := range bindings {
		q := f.queue(ch)
		qs[name] = q
		f.bind(ch, q, "", x, args)
	}
	msgs := []struct {
		body    string
		headers amqp.Table
	}{
		{"pdf-report", amqp.Table{"format": "pdf", "type": "report"}},
		{"pdf-log", amqp.Table{"format": "pdf", "type": "log"}},
		{"pdf", amqp.Table{"format": "pdf"}},
		{"log", amqp.Table{"type": "log"}},
		{"zip-1", amqp.Table{"format": "zip", "n": int32(1)}},
		{"zip-1-long", amqp.Table{"format": "zip", "n": int64(1)}},
		{"n42", amqp.Table{"n": int32(42)}},
		{"n42-string", amqp.Table{"n": "42"}},
		{"flag", amqp.Table{"flag": true}},
		{"flag-false", amqp.Table{"flag": false}},
		{"tag-void", amqp.Table{"tag": nil}},
		{"tag-string", amqp.Table{"tag": "x"}},
		{"none", nil},
		{"x-k", amqp.Table{"x-k": "v"}},
	}
	for _, m := range msgs {
		publishMsg(t, ch, x, "", false, amqp.Publishing{Headers: m.headers, Body: []byte(m.body)})
	}
	expectOpen(t, ch)
	want := map[string][]string{
		"all":       {"pdf-report"},
		"any":       {"pdf-report", "pdf-log", "pdf", "log"},
		"default":   {"zip-1", "zip-1-long"},
		"int":       {"n42"},
		"bool":      {"flag"},
		"empty-all": {"pdf-report", "pdf-log", "pdf", "log", "zip-1", "zip-1-long", "n42", "n42-string", "flag", "flag-false", "tag-void", "tag-string", "none", "x-k"},
		"empty-any": nil,
		"present":   {"tag-void", "tag-string"},
		"x-key":     nil,
	}
	time.Sleep(200 * time.Millisecond)
	for name := range bindings {
		got := drainGet(t, ch, qs[name])
		if !equalStrings(got, want[name]) {
			t.Errorf("binding %s %v received %q, want %q", name, bindings[name], got, want[name])
		}
	}
}
