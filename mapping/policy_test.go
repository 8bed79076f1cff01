package mapping_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

func TestMessageTTL(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	// The gap between the two publishes is wide so that a loaded machine
	// cannot let the younger message expire before it is counted.
	c.declareQueue(t, mapping.QueueSpec{Name: "q", Args: mapping.Table{"x-message-ttl": int32(1000)}})
	publishN(t, c, "q", 3)
	if n := c.count(t, "q"); n != 3 {
		t.Fatalf("count right after publish = %d, want 3", n)
	}
	time.Sleep(700 * time.Millisecond)
	publishN(t, c, "q", 1) // "m1" again, 700 ms younger
	eventually(t, 2*time.Second, func() bool { return c.count(t, "q") == 1 })
	time.Sleep(20 * time.Millisecond)
	if n := c.count(t, "q"); n != 1 {
		t.Fatalf("count = %d, want 1 (the younger message)", n)
	}
	eventually(t, 2*time.Second, func() bool { return c.count(t, "q") == 0 })
	if _, _, ok := c.get(t, "q", true); ok {
		t.Fatal("get returned an expired message")
	}
	// A consumer that is there gets messages before they expire.
	c.consume(t, "q", "a", true)
	publishN(t, c, "q", 2)
	wantStrings(t, "consumed", bodies(c.sink.waitLen(t, 2)), []string{"m1", "m2"})
}

// Messages waiting behind a full prefetch expire on the queue's timer.
func TestMessageTTLWhileConsumerBusy(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareExchange(t, mapping.ExchangeSpec{Name: "dlx", Type: mapping.TypeFanout})
	c.declareQueue(t, mapping.QueueSpec{Name: "dead"})
	c.bind(t, "dead", "dlx", "")
	c.declareQueue(t, mapping.QueueSpec{Name: "q", Args: mapping.Table{"x-message-ttl": int64(80), "x-dead-letter-exchange": "dlx"}})
	c.ch.SetPrefetch(1, false)
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 3)
	c.sink.waitLen(t, 1)
	eventually(t, 2*time.Second, func() bool { return c.count(t, "dead") == 2 })
	if n := c.count(t, "q"); n != 0 {
		t.Fatalf("q ready = %d", n)
	}
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	c.sink.quiet(t, 1)
	wantStrings(t, "dead", c.drain(t, "dead"), []string{"m2", "m3"})
}

func TestPerMessageExpiration(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.declareQueue(t, mapping.QueueSpec{Name: "qt", Args: mapping.Table{"x-message-ttl": int32(60000)}})
	short := mapping.Properties{Flags: mapping.FlagExpiration, Expiration: "50"}
	c.publish(t, "", "q", "short", short)
	c.publish(t, "", "q", "long", mapping.Properties{})
	c.publish(t, "", "qt", "short", short) // the lower of queue TTL and expiration wins
	c.publish(t, "", "qt", "long", mapping.Properties{Expiration: "120000"})
	eventually(t, 2*time.Second, func() bool { return c.count(t, "q") == 1 && c.count(t, "qt") == 1 })
	wantStrings(t, "q", c.drain(t, "q"), []string{"long"})
	wantStrings(t, "qt", c.drain(t, "qt"), []string{"long"})
}

// RabbitMQ: a message with TTL 0 (queue or per-message) is delivered when
// a consumer can take it at once, and expires otherwise.
func TestZeroTTLDeliveredToWaitingConsumer(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q0", Args: mapping.Table{"x-message-ttl": int32(0)}})
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.publish(t, "", "q0", "nobody", mapping.Properties{})
	c.publish(t, "", "q", "nobody", mapping.Properties{Expiration: "0"})
	if n := c.count(t, "q0") + c.count(t, "q"); n != 0 {
		t.Fatalf("TTL 0 without consumer kept %d", n)
	}
	c.consume(t, "q0", "a", true)
	c.consume(t, "q", "b", true)
	c.publish(t, "", "q0", "queue-ttl-0", mapping.Properties{})
	c.publish(t, "", "q", "expiration-0", mapping.Properties{Expiration: "0"})
	time.Sleep(50 * time.Millisecond)
	wantStrings(t, "delivered", bodies(c.sink.all()), []string{"queue-ttl-0", "expiration-0"})
}

func TestMaxLengthDropHead(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q", Args: mapping.Table{"x-max-length": int32(3)}})
	c.declareQueue(t, mapping.QueueSpec{Name: "qb", Args: mapping.Table{"x-max-length-bytes": int32(10)}})
	publishN(t, c, "q", 5)
	if n := c.count(t, "q"); n != 3 {
		t.Fatalf("count = %d", n)
	}
	wantStrings(t, "kept", c.drain(t, "q"), []string{"m3", "m4", "m5"})
	for _, b := range []string{"aaaa", "bbbb", "cccc", "dd"} {
		c.publish(t, "", "qb", b, mapping.Properties{})
	}
	wantStrings(t, "bytes kept", c.drain(t, "qb"), []string{"bbbb", "cccc", "dd"})
}

func TestRejectPublish(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q", Args: mapping.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"}})
	c.declareQueue(t, mapping.QueueSpec{Name: "dq", Durable: true, Args: mapping.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}})
	for i, want := range []bool{true, true, false, false} {
		if got := c.publishConfirmed(t, "", "q", fmt.Sprintf("m%d", i+1), mapping.Properties{}); got != want {
			t.Fatalf("publish %d: done(%v), want %v", i+1, got, want)
		}
	}
	if got := c.publishConfirmed(t, "", "dq", "p1", persistent); !got {
		t.Fatal("durable publish 1 rejected")
	}
	if got := c.publishConfirmed(t, "", "dq", "p2", persistent); got {
		t.Fatal("durable publish 2 accepted")
	}
	wantStrings(t, "kept", c.drain(t, "q"), []string{"m1", "m2"})
	if !c.publishConfirmed(t, "", "q", "m5", mapping.Properties{}) {
		t.Fatal("publish after room was made rejected")
	}
	wantStrings(t, "kept", c.drain(t, "q"), []string{"m5"})
	wantStrings(t, "dq", c.drain(t, "dq"), []string{"p1"})
}

func TestMaxPriority(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q", Args: mapping.Table{"x-max-priority": int32(5)}})
	c.declareQueue(t, mapping.QueueSpec{Name: "plain"})
	prios := []uint8{1, 5, 3, 5, 0, 200, 3}
	for i, p := range prios {
		props := mapping.Properties{Flags: mapping.FlagPriority, Priority: p}
		c.publish(t, "", "q", fmt.Sprintf("p%d-%d", p, i), props)
		c.publish(t, "", "plain", fmt.Sprintf("p%d-%d", p, i), props)
	}
	// Highest first (200 counts as the maximum 5), FIFO within a level.
	ds := getAll(t, c, "q")
	wantStrings(t, "priority order", bodies(ds), []string{"p5-1", "p5-3", "p200-5", "p3-2", "p3-6", "p1-0", "p0-4"})
	// Requeued messages go back to their place in their level.
	if err := c.ch.Nack(ds[3].Tag, false, true); err != nil { // p3-2
		t.Fatal(err)
	}
	if err := c.ch.Nack(ds[0].Tag, false, true); err != nil { // p5-1
		t.Fatal(err)
	}
	wantStrings(t, "requeued", c.drain(t, "q"), []string{"p5-1", "p3-2"})
	// Without x-max-priority priorities are ignored.
	wantStrings(t, "plain", c.drain(t, "plain"), []string{"p1-0", "p5-1", "p3-2", "p5-3", "p0-4", "p200-5", "p3-6"})
}

// deadSetup declares fanout exchange dlx → queue dead and a queue src with
// the given arguments plus x-dead-letter-exchange dlx, bound to
// amq.direct with key rk.
func deadSetup(t *testing.T, c *client, args mapping.Table) {
	t.Helper()
	c.declareExchange(t, mapping.ExchangeSpec{Name: "dlx", Type: mapping.TypeFanout})
	c.declareQueue(t, mapping.QueueSpec{Name: "dead"})
	c.bind(t, "dead", "dlx", "")
	a := mapping.Table{"x-dead-letter-exchange": "dlx"}
	for k, v := range args {
		a[k] = v
	}
	c.declareQueue(t, mapping.QueueSpec{Name: "src", Args: a})
	c.bind(t, "src", "amq.direct", "rk")
}

func checkDeath(t *testing.T, m *mapping.Message, reason string, count int64, extra mapping.Table) {
	t.Helper()
	h := m.Properties.Headers
	deaths, ok := h["x-death"].([]any)
	if !ok || len(deaths) != 1 {
		t.Fatalf("x-death = %#v, want one entry", h["x-death"])
	}
	e, ok := deaths[0].(mapping.Table)
	if !ok {
		t.Fatalf("x-death[0] is %T", deaths[0])
	}
	if _, ok := e["time"].(time.Time); !ok {
		t.Fatalf("x-death time is %T", e["time"])
	}
	want := mapping.Table{
		"count":        count,
		"reason":       reason,
		"queue":        "src",
		"exchange":     "amq.direct",
		"routing-keys": []any{"rk"},
		"time":         e["time"],
	}
	for k, v := range extra {
		want[k] = v
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("x-death[0] =\n %#v\nwant\n %#v", e, want)
	}
	for k, v := range map[string]string{"x-first-death-reason": reason, "x-first-death-queue": "src", "x-first-death-exchange": "amq.direct"} {
		if h[k] != v {
			t.Fatalf("%s = %#v, want %q", k, h[k], v)
		}
	}
	if m.Properties.Flags&mapping.FlagHeaders == 0 {
		t.Fatal("headers flag not set on dead letter")
	}
}

func TestDeadLetterRejected(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, nil)
	props := mapping.Properties{Headers: mapping.Table{"app": "kept"}, MessageID: "id1"}
	c.publish(t, "amq.direct", "rk", "m1", props)
	c.publish(t, "amq.direct", "rk", "m2", mapping.Properties{})
	d, _, _ := c.get(t, "src", false)
	if err := c.ch.Nack(d.Tag, false, false); err != nil {
		t.Fatal(err)
	}
	d2, _, _ := c.get(t, "src", false)
	if err := c.ch.Nack(d2.Tag, false, true); err != nil { // requeue: not dead-lettered
		t.Fatal(err)
	}
	if n := c.count(t, "dead"); n != 1 {
		t.Fatalf("dead holds %d, want 1", n)
	}
	dd, _, _ := c.get(t, "dead", true)
	m := dd.Message
	if string(m.Body) != "m1" || m.Exchange != "dlx" || m.RoutingKey != "rk" || m.Properties.MessageID != "id1" || m.Properties.Headers["app"] != "kept" {
		t.Fatalf("dead letter %s exchange=%q key=%q props=%+v", m.Body, m.Exchange, m.RoutingKey, m.Properties)
	}
	checkDeath(t, m, "rejected", 1, nil)
	// The original message is not modified.
	if _, ok := d.Message.Properties.Headers["x-death"]; ok {
		t.Fatal("x-death added to the original message")
	}
}

func TestDeadLetterRoutingKey(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "target"})
	c.declareQueue(t, mapping.QueueSpec{Name: "src", Args: mapping.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "target"}})
	c.bind(t, "src", "amq.direct", "rk")
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{})
	d, _, _ := c.get(t, "src", false)
	c.ch.Nack(d.Tag, false, false)
	dd, _, ok := c.get(t, "target", true)
	if !ok || dd.Message.Exchange != "" || dd.Message.RoutingKey != "target" {
		t.Fatalf("dead letter ok=%v exchange=%q key=%q", ok, dd.Message.Exchange, dd.Message.RoutingKey)
	}
	checkDeath(t, dd.Message, "rejected", 1, nil)
}

func TestDeadLetterExpired(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, mapping.Table{"x-message-ttl": int32(50)})
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{})
	eventually(t, 2*time.Second, func() bool { return c.count(t, "dead") == 1 })
	dd, _, _ := c.get(t, "dead", true)
	checkDeath(t, dd.Message, "expired", 1, nil)
	if c.count(t, "src") != 0 {
		t.Fatal("src not empty")
	}
}

func TestDeadLetterPerMessageExpiration(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, nil)
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{Flags: mapping.FlagExpiration, Expiration: "30"})
	eventually(t, 2*time.Second, func() bool { return c.count(t, "dead") == 1 })
	dd, _, _ := c.get(t, "dead", true)
	checkDeath(t, dd.Message, "expired", 1, mapping.Table{"original-expiration": "30"})
	if p := dd.Message.Properties; p.Expiration != "" || p.Flags&mapping.FlagExpiration != 0 {
		t.Fatalf("dead letter keeps expiration %q (flags %#x)", p.Expiration, p.Flags)
	}
}

func TestDeadLetterMaxLen(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, mapping.Table{"x-max-length": int32(1)})
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{})
	c.publish(t, "amq.direct", "rk", "m2", mapping.Properties{})
	wantStrings(t, "src", bodies(getAll(t, c, "src")), []string{"m2"})
	dd, _, ok := c.get(t, "dead", true)
	if !ok || string(dd.Message.Body) != "m1" {
		t.Fatalf("dead ok=%v", ok)
	}
	checkDeath(t, dd.Message, "maxlen", 1, nil)
}

func TestDeadLetterRejectPublishDLX(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, mapping.Table{"x-max-length": int32(1), "x-overflow": "reject-publish-dlx"})
	if !c.publishConfirmed(t, "amq.direct", "rk", "m1", mapping.Properties{}) {
		t.Fatal("m1 rejected")
	}
	if c.publishConfirmed(t, "amq.direct", "rk", "m2", mapping.Properties{}) {
		t.Fatal("m2 accepted")
	}
	wantStrings(t, "src", c.drain(t, "src"), []string{"m1"})
	dd, _, ok := c.get(t, "dead", true)
	if !ok || string(dd.Message.Body) != "m2" {
		t.Fatalf("dead ok=%v", ok)
	}
	checkDeath(t, dd.Message, "maxlen", 1, nil)
}

// A message rejected twice from the same queue keeps one x-death entry
// whose count goes up.
func TestDeadLetterCountIncrements(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "src", Args: mapping.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "src"}})
	c.bind(t, "src", "amq.direct", "rk")
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{})
	for i := int64(1); i <= 3; i++ {
		d, _, ok := c.get(t, "src", false)
		if !ok {
			t.Fatalf("round %d: queue empty", i)
		}
		if err := c.ch.Nack(d.Tag, false, false); err != nil {
			t.Fatal(err)
		}
		d, _, ok = c.get(t, "src", false)
		if !ok {
			t.Fatalf("round %d: dead letter not back in src", i)
		}
		if d.Message.Exchange != "" || d.Message.RoutingKey != "src" {
			t.Fatalf("round %d: exchange %q key %q", i, d.Message.Exchange, d.Message.RoutingKey)
		}
		checkDeath(t, d.Message, "rejected", i, nil)
		c.ch.Nack(d.Tag, false, true) // put it back for the next round
	}
}

// A dead-letter cycle without any rejection drops the message (RabbitMQ).
func TestDeadLetterExpiredCycleDropped(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "src", Args: mapping.Table{"x-message-ttl": int32(30), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "src"}})
	c.publish(t, "", "src", "m1", mapping.Properties{})
	time.Sleep(200 * time.Millisecond)
	if n := c.count(t, "src"); n != 0 {
		t.Fatalf("src holds %d after an expiry cycle", n)
	}
}

func TestAlternateExchange(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareExchange(t, mapping.ExchangeSpec{Name: "ae", Type: mapping.TypeFanout})
	c.declareExchange(t, mapping.ExchangeSpec{Name: "main", Type: mapping.TypeDirect, Args: mapping.Table{"alternate-exchange": "ae"}})
	c.declareQueue(t, mapping.QueueSpec{Name: "unrouted"})
	c.declareQueue(t, mapping.QueueSpec{Name: "good"})
	c.bind(t, "unrouted", "ae", "")
	c.bind(t, "good", "main", "k")
	if !c.publish(t, "main", "k", "routed", mapping.Properties{}) {
		t.Fatal("routed message reported unroutable")
	}
	if !c.publish(t, "main", "other", "stray", mapping.Properties{}) {
		t.Fatal("message to alternate exchange reported unroutable")
	}
	wantStrings(t, "good", c.drain(t, "good"), []string{"routed"})
	d, _, ok := c.get(t, "unrouted", true)
	if !ok || string(d.Message.Body) != "stray" || d.Message.Exchange != "main" || d.Message.RoutingKey != "other" {
		t.Fatalf("unrouted: ok=%v", ok)
	}
	if _, _, ok := c.get(t, "unrouted", true); ok {
		t.Fatal("more than one message in unrouted")
	}
	// An alternate exchange that does not exist: unroutable, not an error.
	c.declareExchange(t, mapping.ExchangeSpec{Name: "dangling", Type: mapping.TypeDirect, Args: mapping.Table{"alternate-exchange": "nope"}})
	if c.publish(t, "dangling", "x", "lost", mapping.Properties{}) {
		t.Fatal("routed through a missing alternate exchange")
	}
}

func TestCCAndBCC(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareExchange(t, mapping.ExchangeSpec{Name: "ex", Type: mapping.TypeDirect})
	for _, q := range []string{"qa", "qb", "qc", "qd"} {
		c.declareQueue(t, mapping.QueueSpec{Name: q})
		c.bind(t, q, "ex", strings.TrimPrefix(q, "q"))
	}
	h := mapping.Table{"CC": []any{"b", "a"}, "BCC": []any{"c"}, "other": "x"}
	c.publish(t, "ex", "a", "m", mapping.Properties{Headers: h})
	for _, q := range []string{"qa", "qb", "qc"} {
		ds := getAll(t, c, q)
		if len(ds) != 1 {
			t.Fatalf("%s holds %d messages, want 1", q, len(ds))
		}
		got := ds[0].Message.Properties.Headers
		want := mapping.Table{"CC": []any{"b", "a"}, "other": "x"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s headers = %#v, want %#v (BCC stripped)", q, got, want)
		}
		if ds[0].Message.RoutingKey != "a" {
			t.Fatalf("%s routing key %q", q, ds[0].Message.RoutingKey)
		}
	}
	if n := c.count(t, "qd"); n != 0 {
		t.Fatalf("qd holds %d", n)
	}
	// The publisher's header table is not changed under it.
	if _, ok := h["BCC"]; !ok {
		t.Fatal("BCC removed from the publisher's own table")
	}
	// CC alone routes where the routing key does not.
	if !c.publish(t, "ex", "nowhere", "cc-only", mapping.Properties{Headers: mapping.Table{"CC": []any{"d"}}}) {
		t.Fatal("CC-only publish unroutable")
	}
	wantStrings(t, "qd", c.drain(t, "qd"), []string{"cc-only"})
}

// RabbitMQ's x-death routing-keys lists the routing key and the CC keys
// (not the BCC ones) the message was published with.
func TestDeadLetterRoutingKeysIncludeCC(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	deadSetup(t, c, nil)
	c.publish(t, "amq.direct", "rk", "m1", mapping.Properties{Headers: mapping.Table{"CC": []any{"cc1"}, "BCC": []any{"bcc1"}}})
	d, _, _ := c.get(t, "src", false)
	c.ch.Nack(d.Tag, false, false)
	dd, _, _ := c.get(t, "dead", true)
	e := dd.Message.Properties.Headers["x-death"].([]any)[0].(mapping.Table)
	if !reflect.DeepEqual(e["routing-keys"], []any{"rk", "cc1"}) {
		t.Fatalf("routing-keys = %#v, want [rk cc1]", e["routing-keys"])
	}
}

func TestDirectReplyTo(t *testing.T) {
	r := openRouter(t)
	cli := connect(t, r)
	srv := connect(t, r)
	srv.declareQueue(t, mapping.QueueSpec{Name: "rpc"})

	// Without a reply consumer the reply-to is refused.
	err := cli.ch.Publish(&mapping.Message{RoutingKey: "rpc", Properties: mapping.Properties{ReplyTo: mapping.DirectReplyTo}}, nil).Err()
	wantErr(t, "reply-to without consumer", err, mapping.ErrPreconditionFailed)
	err = cli.ch.Consume(mapping.DirectReplyTo, "", false, false, nil, func(string) {})
	wantErr(t, "acking reply consumer", err, mapping.ErrPreconditionFailed)

	rtag := cli.consume(t, mapping.DirectReplyTo, "replies", true)
	if rtag != "replies" {
		t.Fatalf("reply consumer tag %q", rtag)
	}
	err = cli.ch.Consume(mapping.DirectReplyTo, "again", true, false, nil, func(string) {})
	wantErr(t, "second reply consumer", err, mapping.ErrPreconditionFailed)

	if !cli.publish(t, "", "rpc", "request", mapping.Properties{ReplyTo: mapping.DirectReplyTo, CorrelationID: "c1"}) {
		t.Fatal("request not routed")
	}
	req, _, ok := srv.get(t, "rpc", true)
	if !ok {
		t.Fatal("no request")
	}
	replyTo := req.Message.Properties.ReplyTo
	if !strings.HasPrefix(replyTo, mapping.DirectReplyTo+".") || len(replyTo) <= len(mapping.DirectReplyTo)+1 {
		t.Fatalf("reply-to rewritten to %q", replyTo)
	}
	// The pseudo-queue is visible to a passive declare.
	if info, err := srv.ch.DeclareQueue(mapping.QueueSpec{Name: replyTo}, true); err != nil || info.Name != replyTo {
		t.Fatalf("passive declare of reply key: %+v %v", info, err)
	}
	if !srv.publish(t, "", replyTo, "reply", mapping.Properties{CorrelationID: "c1"}) {
		t.Fatal("reply not routed")
	}
	ds := cli.sink.waitLen(t, 1)
	if d := ds[0]; string(d.Message.Body) != "reply" || d.ConsumerTag != "replies" || d.Message.Properties.CorrelationID != "c1" || d.Redelivered {
		t.Fatalf("reply delivery: %+v", d)
	}
	// A second request reuses the same key.
	cli.publish(t, "", "rpc", "request2", mapping.Properties{ReplyTo: mapping.DirectReplyTo})
	req2, _, _ := srv.get(t, "rpc", true)
	if req2.Message.Properties.ReplyTo != replyTo {
		t.Fatalf("second reply-to %q, first %q", req2.Message.Properties.ReplyTo, replyTo)
	}
	// An unknown key is unroutable; after cancel the key is gone.
	if srv.publish(t, "", mapping.DirectReplyTo+".nope", "x", mapping.Properties{}) {
		t.Fatal("reply to unknown key routed")
	}
	cli.ch.Cancel("replies")
	if srv.publish(t, "", replyTo, "late", mapping.Properties{}) {
		t.Fatal("reply after cancel routed")
	}
	_, err = srv.ch.DeclareQueue(mapping.QueueSpec{Name: replyTo}, true)
	wantErr(t, "passive declare after cancel", err, mapping.ErrNotFound)
	cli.sink.quiet(t, 1)

	// Channel close also unregisters the key.
	c3 := cli.channel()
	c3.consume(t, mapping.DirectReplyTo, "r3", true)
	c3.publish(t, "", "rpc", "request3", mapping.Properties{ReplyTo: mapping.DirectReplyTo})
	req3, _, _ := srv.get(t, "rpc", true)
	c3.ch.Close()
	if srv.publish(t, "", req3.Message.Properties.ReplyTo, "late", mapping.Properties{}) {
		t.Fatal("reply after channel close routed")
	}
}

func TestQueueExpires(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "idle", Args: mapping.Table{"x-expires": int32(150)}})
	c.declareQueue(t, mapping.QueueSpec{Name: "used", Args: mapping.Table{"x-expires": int32(150)}})
	c.consume(t, "used", "a", true)
	time.Sleep(400 * time.Millisecond)
	_, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: "idle"}, true)
	wantErr(t, "idle queue after x-expires", err, mapping.ErrNotFound)
	if _, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: "used"}, true); err != nil {
		t.Fatalf("queue with a consumer expired: %v", err)
	}
	c.ch.Cancel("a")
	time.Sleep(400 * time.Millisecond)
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "used"}, true)
	wantErr(t, "queue after last consumer left + x-expires", err, mapping.ErrNotFound)
}
