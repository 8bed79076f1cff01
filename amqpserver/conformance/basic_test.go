package conformance

import (
	"bytes"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// allFieldTypes has one header of every field-table type amqp091-go can
// encode, keyed by the AMQP type tag it is written with.
func allFieldTypes() amqp.Table {
	return amqp.Table{
		"t-true":    true,
		"t-false":   false,
		"b-int8":    int8(-12),
		"B-byte":    byte(250),
		"s-int16":   int16(-30000),
		"u-uint16":  uint16(65000),
		"I-int32":   int32(-2000000000),
		"i-uint32":  uint32(4000000000),
		"l-int64":   int64(-9000000000000000000),
		"f-float32": float32(1.5),
		"d-float64": float64(-2.25e100),
		"D-decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"S-string":  "héllo, wörld",
		"S-empty":   "",
		"x-bytes":   []byte{0, 1, 2, 255},
		"T-time":    time.Unix(1700000000, 0),
		"V-void":    nil,
		"F-table":   amqp.Table{"nested": int32(1), "deeper": amqp.Table{"s": "x"}},
		"F-empty":   amqp.Table{},
		"A-array":   []any{int32(1), "two", true, nil, amqp.Table{"k": int64(3)}, []any{byte(4)}},
		"A-empty":   []any{},
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	user := "guest"
	if u, err := url.Parse(f.url); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	sent := amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers:         allFieldTypes(),
		DeliveryMode:    amqp.Persistent,
		Priority:        7,
		CorrelationId:   "corr-1",
		ReplyTo:         "reply-queue",
		Expiration:      "600000",
		MessageId:       "msg-1",
		Timestamp:       time.Unix(1600000000, 0),
		Type:            "order.created",
		UserId:          user,
		AppId:           "conformance",
		Body:            []byte(`{"a":1}`),
	}
	publishMsg(t, ch, "", q, false, sent)
	for _, via := range []string{"consume", "get"} {
		var m amqp.Delivery
		if via == "consume" {
			d, err := ch.Consume(q, "props", false, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			m = recv(t, d)
			if err := ch.Cancel("props", false); err != nil {
				t.Fatal(err)
			}
			if err := m.Nack(false, true); err != nil { // back for basic.get
				t.Fatal(err)
			}
			f.waitMessages(f.dial(), q, 1)
		} else {
			var ok bool
			m, ok = get(t, ch, q, true)
			if !ok {
				t.Fatalf("basic.get: empty")
			}
			if m.MessageCount != 0 {
				t.Errorf("get-ok message count %d, want 0", m.MessageCount)
			}
		}
		got := amqp.Publishing{
			ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, Headers: m.Headers,
			DeliveryMode: m.DeliveryMode, Priority: m.Priority, CorrelationId: m.CorrelationId,
			ReplyTo: m.ReplyTo, Expiration: m.Expiration, MessageId: m.MessageId, Timestamp: m.Timestamp,
			Type: m.Type, UserId: m.UserId, AppId: m.AppId, Body: m.Body,
		}
		for k, v := range sent.Headers {
			if gv, ok := got.Headers[k]; !ok || !reflect.DeepEqual(nilEmptyArrays(gv), nilEmptyArrays(v)) {
				t.Errorf("%s: header %s: sent %#v (%T), got %#v (%T)", via, k, v, v, gv, gv)
			}
		}
		if len(got.Headers) != len(sent.Headers) {
			t.Errorf("%s: %d headers came back, sent %d", via, len(got.Headers), len(sent.Headers))
		}
		sent2 := sent
		got.Headers, sent2.Headers = nil, nil
		if !reflect.DeepEqual(got, sent2) {
			t.Errorf("%s: properties differ:\n got  %+v\n sent %+v", via, got, sent2)
		}
		if m.Exchange != "" || m.RoutingKey != q {
			t.Errorf("%s: exchange %q routing key %q", via, m.Exchange, m.RoutingKey)
		}
	}
}

// nilEmptyArrays maps empty field arrays to nil: amqp091-go decodes an
// empty array ('A', length 0) as a nil []any.
func nilEmptyArrays(v any) any {
	if a, ok := v.([]any); ok && len(a) == 0 {
		return []any(nil)
	}
	return v
}

func TestNoPropertiesRoundTrip(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	publishMsg(t, ch, "", q, false, amqp.Publishing{Body: []byte("bare")})
	m := recv(t, consume(t, ch, q, true))
	if m.Headers != nil || m.ContentType != "" || m.DeliveryMode != 0 || m.Priority != 0 || !m.Timestamp.IsZero() || m.MessageId != "" {
		t.Errorf("properties appeared on a bare message: %+v", m)
	}
}

func TestBodySizes(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	fm := conn.Config.FrameSize
	sizes := []int{0, 1, fm - 9, fm - 8, fm - 7, 2*(fm-8) + 1, 1 << 20, 5 << 20}
	for i, n := range sizes {
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(i*7 + j*13)
		}
		publishMsg(t, ch, "", q, false, amqp.Publishing{Body: body, MessageId: fmt.Sprint(n)})
	}
	d := consume(t, ch, q, true)
	for i, n := range sizes {
		m := recv(t, d)
		if m.MessageId != fmt.Sprint(n) || len(m.Body) != n {
			t.Fatalf("message %d: id %s, %d bytes, want %d", i, m.MessageId, len(m.Body), n)
		}
		for j := range m.Body {
			if m.Body[j] != byte(i*7+j*13) {
				t.Fatalf("body of %d bytes corrupted at %d", n, j)
			}
		}
	}
}

func TestMandatoryUnroutable(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	returns := ch.NotifyReturn(make(chan amqp.Return, 2))
	x := f.exchange(ch, "direct")
	publishMsg(t, ch, x, "nowhere", true, amqp.Publishing{Body: []byte("bounce"), MessageId: "m1", Headers: amqp.Table{"h": int32(1)}})
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != x || r.RoutingKey != "nowhere" || string(r.Body) != "bounce" || r.MessageId != "m1" || r.Headers["h"] != int32(1) {
			t.Errorf("basic.return %d %q exchange %q key %q body %q id %q headers %v", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey, r.Body, r.MessageId, r.Headers)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no basic.return for a mandatory unroutable message")
	}
	// Default exchange, no such queue: also returned.
	publishMsg(t, ch, "", f.name("noqueue"), true, amqp.Publishing{Body: []byte("b2")})
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || string(r.Body) != "b2" {
			t.Errorf("basic.return %d %q", r.ReplyCode, r.Body)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no basic.return via the default exchange")
	}
	// Routable mandatory: not returned.
	q := f.queue(ch)
	publishMsg(t, ch, "", q, true, amqp.Publishing{Body: []byte("ok")})
	// Non-mandatory unroutable: silently dropped.
	publishMsg(t, ch, x, "nowhere", false, amqp.Publishing{Body: []byte("dropped")})
	expectOpen(t, ch)
	select {
	case r := <-returns:
		t.Errorf("unexpected basic.return %q", r.Body)
	case <-time.After(quietPeriod):
	}
	if m := recv(t, consume(t, ch, q, true)); string(m.Body) != "ok" {
		t.Errorf("got %q", m.Body)
	}
}

func TestPublishToMissingExchange(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	closed := watchClose(ch)
	x := f.name("nox")
	publish(t, ch, x, "k", "lost")
	awaitClose(t, closed, amqp.NotFound, "NOT_FOUND - no exchange '"+x+"' in vhost '/'")
}

func TestRoundRobin(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	ca, cb := f.channel(conn), f.channel(conn)
	da := consume(t, ca, q, true)
	db := consume(t, cb, q, true)
	const n = 12
	for i := 1; i <= n; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	a := bodies(recvN(t, da, n/2))
	b := bodies(recvN(t, db, n/2))
	odd, even := []string{}, []string{}
	for i := 1; i <= n; i++ {
		if i%2 == 1 {
			odd = append(odd, fmt.Sprint(i))
		} else {
			even = append(even, fmt.Sprint(i))
		}
	}
	if !(equalStrings(a, odd) && equalStrings(b, even)) && !(equalStrings(a, even) && equalStrings(b, odd)) {
		t.Errorf("not strict round-robin: A got %v, B got %v", a, b)
	}
	expectNoDelivery(t, da)
	expectNoDelivery(t, db)
}

func TestPrefetchOneFairDispatch(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	slow, fast := f.channel(conn), f.channel(conn)
	for _, c := range []*amqp.Channel{slow, fast} {
		if err := c.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	ds := consume(t, slow, q, false)
	for i := 1; i <= 6; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	first := recv(t, ds)
	if string(first.Body) != "1" {
		t.Errorf("first delivery %q", first.Body)
	}
	expectNoDelivery(t, ds) // holds one unacked: gets nothing more
	df := consume(t, fast, q, false)
	var got []string
	for range 5 {
		m := recv(t, df)
		got = append(got, string(m.Body))
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	if !equalStrings(got, strs("2", "3", "4", "5", "6")) {
		t.Errorf("fast consumer got %v", got)
	}
	expectNoDelivery(t, ds)
	publish(t, ch, "", q, "7")
	if err := first.Ack(false); err != nil {
		t.Fatal(err)
	}
	// After acking, the slow consumer can take the next one (or fast does).
	select {
	case m := <-ds:
		if string(m.Body) != "7" {
			t.Errorf("got %q", m.Body)
		}
	case m := <-df:
		if string(m.Body) != "7" {
			t.Errorf("got %q", m.Body)
		}
	case <-time.After(waitTimeout):
		t.Fatal("message 7 not delivered")
	}
}

func TestPrefetchAckReleasesNext(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	d := consume(t, ch, q, false)
	ms := recvN(t, d, 2)
	if b := bodies(ms); !equalStrings(b, strs("1", "2")) {
		t.Errorf("got %v", b)
	}
	expectNoDelivery(t, d)
	if err := ms[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, d); string(m.Body) != "3" {
		t.Errorf("after one ack got %q, want 3", m.Body)
	}
	expectNoDelivery(t, d)
}

// RabbitMQ's reading of basic.qos: global=false limits each consumer
// created afterwards; global=true limits the whole channel.
func TestQosGlobalPerChannel(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q1, q2 := f.queue(ch), f.queue(ch)
	for i := range 5 {
		publish(t, ch, "", q1, fmt.Sprint("a", i))
		publish(t, ch, "", q2, fmt.Sprint("b", i))
	}
	f.waitMessages(conn, q1, 5)
	f.waitMessages(conn, q2, 5)

	// global: 3 unacked over both consumers of the channel.
	g := f.channel(conn)
	if err := g.Qos(3, 0, true); err != nil {
		t.Fatal(err)
	}
	d1 := consume(t, g, q1, false)
	d2 := consume(t, g, q2, false)
	count := func(ds ...<-chan amqp.Delivery) int {
		n := 0
		timeout := time.After(quietPeriod * 2)
		for {
			select {
			case <-ds[0]:
				n++
			case <-ds[1]:
				n++
			case <-timeout:
				return n
			}
		}
	}
	if n := count(d1, d2); n != 3 {
		t.Errorf("global prefetch 3: channel got %d unacked deliveries, want 3", n)
	}
	if err := g.Close(); err != nil { // requeue
		t.Fatal(err)
	}
	f.waitMessages(conn, q1, 5)
	f.waitMessages(conn, q2, 5)

	// per consumer: 3 each.
	p := f.channel(conn)
	if err := p.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	d1 = consume(t, p, q1, false)
	d2 = consume(t, p, q2, false)
	if n := count(d1, d2); n != 6 {
		t.Errorf("per-consumer prefetch 3: channel got %d unacked deliveries, want 6", n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitMessages(conn, q1, 5)
	f.waitMessages(conn, q2, 5)

	// A consumer created before basic.qos(global=false) is not limited.
	u := f.channel(conn)
	d1 = consume(t, u, q1, false)
	if err := u.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	d2 = consume(t, u, q2, false)
	if n := count(d1, d2); n != 6 {
		t.Errorf("consumer created before qos got limited: %d deliveries, want 5+1", n)
	}
}

func TestBasicGet(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	if _, ok := get(t, ch, q, false); ok {
		t.Fatalf("get-ok from an empty queue")
	}
	for i := 1; i <= 3; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	f.waitMessages(f.dial(), q, 3)
	var tags []uint64
	for i := 1; i <= 3; i++ {
		m, ok := get(t, ch, q, false)
		if !ok {
			t.Fatalf("get-empty with messages left")
		}
		if string(m.Body) != fmt.Sprint(i) || int(m.MessageCount) != 3-i || m.Redelivered || m.RoutingKey != q {
			t.Errorf("get #%d: body %q count %d redelivered %v key %q", i, m.Body, m.MessageCount, m.Redelivered, m.RoutingKey)
		}
		tags = append(tags, m.DeliveryTag)
	}
	if !(tags[0] == 1 && tags[1] == 2 && tags[2] == 3) {
		t.Errorf("delivery tags %v, want 1 2 3", tags)
	}
	if _, ok := get(t, ch, q, false); ok {
		t.Fatalf("get-ok from an emptied queue")
	}
	if err := ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	expectOpen(t, ch)
	if m, c := f.queueCounts(f.dial(), q); m != 0 || c != 0 {
		t.Errorf("counts after ack %d/%d", m, c)
	}
}

func TestAckMultiple(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := 1; i <= 5; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	c := f.channel(conn)
	ms := recvN(t, consume(t, c, q, false), 5)
	if err := ms[2].Ack(true); err != nil { // acks 1, 2, 3
		t.Fatal(err)
	}
	expectOpen(t, c)
	if err := c.Close(); err != nil { // requeues 4, 5
		t.Fatal(err)
	}
	f.waitMessages(conn, q, 2)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("4", "5")) {
		t.Errorf("left after ack multiple: %v", got)
	}
}

func TestNackRequeueKeepsPosition(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	for i := 1; i <= 3; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	f.waitMessages(f.dial(), q, 3)
	m1, _ := get(t, ch, q, false)
	m2, _ := get(t, ch, q, false)
	if string(m1.Body) != "1" || string(m2.Body) != "2" {
		t.Fatalf("got %q %q", m1.Body, m2.Body)
	}
	// Requeue 2 then 1: both go back to their original places.
	if err := m2.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	if err := m1.Reject(true); err != nil {
		t.Fatal(err)
	}
	d := consume(t, ch, q, false)
	ms := recvN(t, d, 3)
	if b := bodies(ms); !equalStrings(b, strs("1", "2", "3")) {
		t.Errorf("order after requeue %v, want [1 2 3]", b)
	}
	if !ms[0].Redelivered || !ms[1].Redelivered || ms[2].Redelivered {
		t.Errorf("redelivered flags %v %v %v, want true true false", ms[0].Redelivered, ms[1].Redelivered, ms[2].Redelivered)
	}
	// Nack multiple, requeue.
	if err := ms[2].Nack(true, true); err != nil {
		t.Fatal(err)
	}
	again := recvN(t, d, 3)
	if b := bodies(again); !equalStrings(b, strs("1", "2", "3")) {
		t.Errorf("order after nack multiple %v", b)
	}
	for _, m := range again {
		if !m.Redelivered {
			t.Errorf("%q not redelivered", m.Body)
		}
	}
	// Nack multiple without requeue drops them all.
	if err := again[2].Nack(true, false); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, d)
	if m, _ := f.queueCounts(f.dial(), q); m != 0 {
		t.Errorf("%d messages left after nack requeue=false", m)
	}
}

func TestRejectNoRequeueDrops(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	publish(t, ch, "", q, "bad")
	publish(t, ch, "", q, "good")
	d := consume(t, ch, q, false)
	m := recv(t, d)
	if err := m.Reject(false); err != nil {
		t.Fatal(err)
	}
	m2 := recv(t, d)
	if string(m2.Body) != "good" {
		t.Errorf("got %q", m2.Body)
	}
	if err := m2.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, d)
}

func TestAckUnknownTag(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	closed := watchClose(ch)
	if err := ch.Ack(99, false); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, closed, amqp.PreconditionFailed, "PRECONDITION_FAILED - unknown delivery tag 99")
}

func TestDoubleAck(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	publish(t, ch, "", q, "x")
	m := recv(t, consume(t, ch, q, false))
	closed := watchClose(ch)
	if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, closed, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", m.DeliveryTag))
}

func TestNackUnknownTag(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	closed := watchClose(ch)
	if err := ch.Nack(7, false, true); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, closed, amqp.PreconditionFailed, "unknown delivery tag 7")
}

func TestAckOnNoAckConsumer(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	publish(t, ch, "", q, "x")
	m := recv(t, consume(t, ch, q, true))
	closed := watchClose(ch)
	if err := ch.Ack(m.DeliveryTag, false); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, closed, amqp.PreconditionFailed, "unknown delivery tag")
}

func TestRecover(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := 1; i <= 3; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	d := consume(t, ch, q, false)
	ms := recvN(t, d, 3)
	if err := ms[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	again := recvN(t, d, 2)
	if b := bodies(again); !equalStrings(b, strs("2", "3")) || !again[0].Redelivered || !again[1].Redelivered {
		t.Errorf("after recover: %v redelivered %v %v", b, again[0].Redelivered, again[1].Redelivered)
	}
	if again[0].DeliveryTag <= ms[2].DeliveryTag {
		t.Errorf("redelivery reused tag %d", again[0].DeliveryTag)
	}
	// The old tags are no longer valid; the new ones are.
	if err := ch.Ack(again[1].DeliveryTag, true); err != nil {
		t.Fatal(err)
	}
	expectOpen(t, ch)
	expectNoDelivery(t, d)

	// requeue=false is refused with a connection error.
	closed := watchConnClose(conn)
	err := ch.Recover(false)
	expectChannelClose(t, err, amqp.NotImplemented, "NOT_IMPLEMENTED - requeue=false")
	awaitClose(t, closed, amqp.NotImplemented)
}

func TestConsumerTags(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	publish(t, ch, "", q, "x")
	d, err := ch.Consume(q, "my-tag", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := recv(t, d); m.ConsumerTag != "my-tag" {
		t.Errorf("delivery consumer tag %q", m.ConsumerTag)
	}
	// The same tag on another channel is fine.
	_, ch2 := f.connChan()
	if _, err := ch2.Consume(q, "my-tag", true, false, false, false, nil); err != nil {
		t.Fatalf("same tag on another channel: %v", err)
	}
	// Cancelling an unknown tag is accepted.
	if err := ch.Cancel("never-used", false); err != nil {
		t.Errorf("cancel of unknown tag: %v", err)
	}
	expectOpen(t, ch)
}

func TestCancelStopsDeliveries(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	d, err := ch.Consume(q, "c", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, "1")
	m := recv(t, d)
	if err := ch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, "2")
	select {
	case m2, ok := <-d:
		if ok {
			t.Errorf("delivery %q after cancel", m2.Body)
		}
	case <-time.After(waitTimeout):
		t.Errorf("deliveries channel not closed by cancel")
	}
	// Unacked messages of a cancelled consumer can still be acked.
	if err := m.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectOpen(t, ch)
	f.waitMessages(f.dial(), q, 1)
	if got := drainGet(t, ch, q); !equalStrings(got, strs("2")) {
		t.Errorf("queue holds %v", got)
	}
}

func TestExclusiveConsumer(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	if _, err := ch.Consume(q, "sole", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	other := f.channel(conn)
	_, err := other.Consume(q, "", true, false, false, false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED - queue '"+q+"' in vhost '/' in exclusive use")

	// An exclusive consumer cannot join a queue that has consumers.
	q2 := f.queue(ch)
	consume(t, ch, q2, true)
	other = f.channel(conn)
	_, err = other.Consume(q2, "", true, true, false, false, nil)
	expectChannelClose(t, err, amqp.AccessRefused, "ACCESS_REFUSED - queue '"+q2+"' in vhost '/' in exclusive use")

	// Once the exclusive consumer is gone, others may consume.
	if err := ch.Cancel("sole", false); err != nil {
		t.Fatal(err)
	}
	other = f.channel(conn)
	consume(t, other, q, true)
}

func TestChannelCloseRequeuesUnacked(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := 1; i <= 4; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	c := f.channel(conn)
	ms := recvN(t, consume(t, c, q, false), 4)
	if err := ms[1].Ack(false); err != nil {
		t.Fatal(err)
	}
	expectOpen(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitMessages(conn, q, 3)
	again := recvN(t, consume(t, ch, q, true), 3)
	if b := bodies(again); !equalStrings(b, strs("1", "3", "4")) {
		t.Errorf("requeued %v, want [1 3 4]", b)
	}
	for _, m := range again {
		if !m.Redelivered {
			t.Errorf("%q not marked redelivered", m.Body)
		}
	}
}

func TestNoAckConsumer(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	if err := ch.Qos(1, 0, false); err != nil { // prefetch does not apply to no-ack
		t.Fatal(err)
	}
	d := consume(t, ch, q, true)
	for i := 1; i <= 20; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	got := bodies(recvN(t, d, 20))
	for i, b := range got {
		if b != fmt.Sprint(i+1) {
			t.Fatalf("out of order: %v", got)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if m, _ := f.queueCounts(conn, q); m != 0 {
		t.Errorf("%d messages came back after closing a no-ack consumer's channel", m)
	}
}

func TestDeliveryTagsPerChannel(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q1, q2 := f.queue(ch), f.queue(ch)
	for i := range 3 {
		publish(t, ch, "", q1, fmt.Sprint(i))
		publish(t, ch, "", q2, fmt.Sprint(i))
	}
	c := f.channel(conn)
	d1 := consume(t, c, q1, false)
	ms := recvN(t, d1, 3)
	d2 := consume(t, c, q2, false)
	ms = append(ms, recvN(t, d2, 3)...)
	var tags []int
	for _, m := range ms {
		tags = append(tags, int(m.DeliveryTag))
	}
	sort.Ints(tags)
	if fmt.Sprint(tags) != "[1 2 3 4 5 6]" {
		t.Errorf("delivery tags %v, want 1..6 shared by the channel's consumers", tags)
	}
	// Another channel starts again at 1.
	c2 := f.channel(conn)
	q3 := f.queue(c2)
	publish(t, c2, "", q3, "z")
	if m := recv(t, consume(t, c2, q3, false)); m.DeliveryTag != 1 {
		t.Errorf("first tag on a new channel %d", m.DeliveryTag)
	}
}

func TestMaxPriority(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.name("prio")
	f.declareQueue(ch, q, false, false, false, amqp.Table{"x-max-priority": int32(5)})
	for _, p := range []uint8{1, 9, 0, 5, 3, 7} {
		publishMsg(t, ch, "", q, false, amqp.Publishing{Priority: p, Body: []byte(fmt.Sprint(p))})
	}
	f.waitMessages(f.dial(), q, 6)
	// 9 and 7 count as 5 and keep their order with the real 5.
	if got := drainGet(t, ch, q); !equalStrings(got, strs("9", "5", "7", "3", "1", "0")) {
		t.Errorf("priority order %v", got)
	}
}

func TestUserIdMismatch(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)
	closed := watchClose(ch)
	publishMsg(t, ch, "", q, false, amqp.Publishing{UserId: "someone-else", Body: []byte("x")})
	e := awaitClose(t, closed, amqp.PreconditionFailed, "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was '")
	if !strings.HasSuffix(e.Reason, "'") {
		t.Errorf("reply text %q", e.Reason)
	}
}

func TestPublishLargeThenSmallInterleaved(t *testing.T) {
	f := newFixture(t)
	conn := f.dial()
	q := f.queue(f.channel(conn))
	// Two channels publishing concurrently over one connection: frames of
	// different channels interleave, content must not mix.
	chs := []*amqp.Channel{f.channel(conn), f.channel(conn)}
	done := make(chan error, 2)
	for i, c := range chs {
		go func() {
			for j := range 20 {
				body := bytes.Repeat([]byte{byte('a' + i)}, 200000+j)
				if err := c.Publish("", q, false, false, amqp.Publishing{Body: body}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	d := consume(t, f.channel(conn), q, true)
	for range 40 {
		m := recv(t, d)
		if len(m.Body) < 200000 || bytes.Count(m.Body, m.Body[:1]) != len(m.Body) {
			t.Fatalf("mixed body of %d bytes", len(m.Body))
		}
	}
}
