package conformance

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestServerProperties(t *testing.T) {
	f := newFixture(t)
	conn := f.dial()
	if _, ok := conn.Properties["product"].(string); !ok {
		t.Errorf("server-properties product = %#v, want a string", conn.Properties["product"])
	}
	for _, k := range []string{"version", "platform"} {
		if _, ok := conn.Properties[k].(string); !ok {
			t.Errorf("server-properties %s = %#v, want a string", k, conn.Properties[k])
		}
	}
	caps, ok := conn.Properties["capabilities"].(amqp.Table)
	if !ok {
		t.Fatalf("server-properties capabilities = %#v, want a table", conn.Properties["capabilities"])
	}
	for _, c := range []string{
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "authentication_failure_close",
		"per_consumer_qos", "direct_reply_to",
	} {
		if v, ok := caps[c].(bool); !ok || !v {
			t.Errorf("capability %s = %#v, want true", c, caps[c])
		}
	}
	if conn.Major != 0 || conn.Minor != 9 {
		t.Errorf("protocol version %d-%d, want 0-9", conn.Major, conn.Minor)
	}
	if len(conn.Locales) == 0 || conn.Locales[0] != "en_US" {
		t.Errorf("locales = %v, want en_US", conn.Locales)
	}
}

func TestTuneNegotiation(t *testing.T) {
	f := newFixture(t)
	conn := f.dialConfig(amqp.Config{Heartbeat: 10 * time.Second})
	if hb := conn.Config.Heartbeat; hb <= 0 || hb > 10*time.Second {
		t.Errorf("negotiated heartbeat %v, want in (0, 10s]", hb)
	}
	if fm := conn.Config.FrameSize; fm < 4096 || fm > 131072 {
		t.Errorf("negotiated frame_max %d, want 4096..131072", fm)
	}
	if cm := conn.Config.ChannelMax; cm == 0 {
		t.Errorf("negotiated channel_max 0")
	}

	small := f.dialConfig(amqp.Config{FrameSize: 8192, Heartbeat: 3 * time.Second})
	if small.Config.FrameSize != 8192 {
		t.Errorf("asked frame_max 8192, negotiated %d", small.Config.FrameSize)
	}
	if small.Config.Heartbeat != 3*time.Second {
		t.Errorf("asked heartbeat 3s, negotiated %v", small.Config.Heartbeat)
	}
	// The connection must be fully usable with the smaller frame size.
	ch := f.channel(small)
	q := f.queue(ch)
	body := make([]byte, 3*8192+17)
	for i := range body {
		body[i] = byte(i)
	}
	publishMsg(t, ch, "", q, false, amqp.Publishing{Body: body})
	m := recv(t, consume(t, ch, q, true))
	if string(m.Body) != string(body) {
		t.Errorf("multi-frame body corrupted: got %d bytes", len(m.Body))
	}
}

func TestChannelMax(t *testing.T) {
	f := newFixture(t)
	conn := f.dialConfig(amqp.Config{ChannelMax: 5})
	if conn.Config.ChannelMax != 5 {
		t.Fatalf("negotiated channel_max %d, want 5", conn.Config.ChannelMax)
	}
	var chans []*amqp.Channel
	for i := range 5 {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("channel %d of 5: %v", i+1, err)
		}
		chans = append(chans, ch)
	}
	if _, err := conn.Channel(); err == nil {
		t.Fatalf("6th channel opened with channel_max 5")
	}
	// Freeing one makes room again.
	if err := chans[2].Close(); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	f.queue(ch)
}

// amqp091-go does not announce authentication_failure_close, so RabbitMQ
// just closes the socket (after a delay) and the client reports
// ErrCredentials (403). The connection.close variant is checked with a raw
// client in raw_test.go.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.dialURL(f.urlWith(sp("guest"), sp("definitely-wrong"), nil), amqp.Config{})
	expectError(t, err, amqp.AccessRefused)
}

func TestUnknownUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.dialURL(f.urlWith(sp("nosuchuser-conf"), sp("x"), nil), amqp.Config{})
	expectError(t, err, amqp.AccessRefused)
}

func TestUnknownVhost(t *testing.T) {
	f := newFixture(t)
	_, err := f.dialURL(f.urlWith(nil, nil, sp("nosuchvhost")), amqp.Config{})
	expectError(t, err, amqp.NotAllowed, "NOT_ALLOWED", "vhost", "nosuchvhost")
}

func TestChannelOpenCloseMany(t *testing.T) {
	f := newFixture(t)
	conn := f.dial()
	q := f.queue(f.channel(conn))
	for i := range 200 {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if i%50 == 0 {
			publish(t, ch, "", q, fmt.Sprint(i))
		}
		if err := ch.Close(); err != nil {
			t.Fatalf("close #%d: %v", i, err)
		}
	}
	// Many channels open at once, each usable.
	var chans []*amqp.Channel
	for range 50 {
		chans = append(chans, f.channel(conn))
	}
	for _, ch := range chans {
		if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := drainGet(t, chans[0], q)
	if !equalStrings(got, strs("0", "50", "100", "150")) {
		t.Errorf("got %v", got)
	}
}

func TestConnectionCloseRequeuesUnacked(t *testing.T) {
	f := newFixture(t)
	conn, ch := f.connChan()
	q := f.queue(ch)
	for i := range 3 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	c2, ch2 := f.connChan()
	d := consume(t, ch2, q, false)
	got := recvN(t, d, 3)
	for _, m := range got {
		if m.Redelivered {
			t.Errorf("first delivery of %q has redelivered=true", m.Body)
		}
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitMessages(conn, q, 3)
	again := recvN(t, consume(t, ch, q, true), 3)
	if b := bodies(again); !equalStrings(b, strs("0", "1", "2")) {
		t.Errorf("requeued order %v, want [0 1 2]", b)
	}
	for _, m := range again {
		if !m.Redelivered {
			t.Errorf("requeued %q has redelivered=false", m.Body)
		}
	}
}

func TestConnectionCloseByServerErrorClosesChannels(t *testing.T) {
	f := newFixture(t)
	conn := f.dial()
	ch1 := f.channel(conn)
	ch2 := f.channel(conn)
	connClosed := watchConnClose(conn)
	c2 := watchClose(ch2)
	// Reusing a consumer tag on a channel is a connection error (530).
	q := f.queue(ch1)
	if _, err := ch1.Consume(q, "dup-tag", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err := ch1.Consume(q, "dup-tag", false, false, false, false, nil)
	expectError(t, err, amqp.NotAllowed, "NOT_ALLOWED", "reuse consumer tag", "dup-tag")
	awaitClose(t, connClosed, amqp.NotAllowed)
	awaitClose(t, c2, amqp.NotAllowed)
	if !conn.IsClosed() {
		t.Errorf("connection still open after a connection error")
	}
}
