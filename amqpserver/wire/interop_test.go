package wire

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/mapping"
)

// scriptedServer plays the server side of a connection over net.Pipe with
// this package only, so that amqp091-go checks what we write and we check
// what it writes.
type scriptedServer struct {
	t    *testing.T
	conn net.Conn
	r    *Reader
}

func (s *scriptedServer) send(ch uint16, m Method) {
	s.t.Helper()
	b, err := AppendMethodFrame(nil, ch, m)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.conn.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scriptedServer) write(b []byte) {
	s.t.Helper()
	if _, err := s.conn.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

func expect[M Method](s *scriptedServer, ch uint16) M {
	s.t.Helper()
	for {
		f, err := s.r.ReadFrame()
		if err != nil {
			s.t.Fatalf("reading frame: %v", err)
		}
		if f.Type == FrameHeartbeat {
			continue
		}
		if f.Type != FrameMethod || f.Channel != ch {
			s.t.Fatalf("got frame type %d on channel %d, want a method on %d", f.Type, f.Channel, ch)
		}
		m, err := ReadMethod(f.Payload)
		if err != nil {
			s.t.Fatalf("ReadMethod: %v", err)
		}
		got, ok := m.(M)
		if !ok {
			var want M
			s.t.Fatalf("got %s, want %T", m.Name(), want)
		}
		return got
	}
}

func TestInteropWithAMQP091Go(t *testing.T) {
	srvConn, cliConn := net.Pipe()
	defer srvConn.Close()
	s := &scriptedServer{t: t, conn: srvConn, r: NewReader(srvConn, 0)}
	_ = srvConn.SetDeadline(time.Now().Add(10 * time.Second))

	type result struct {
		conn *amqp.Connection
		err  error
	}
	opened := make(chan result, 1)
	go func() {
		c, err := amqp.Open(cliConn, amqp.Config{
			SASL:      []amqp.Authentication{&amqp.PlainAuth{Username: "guest", Password: "guest"}},
			Vhost:     "/",
			FrameSize: FrameMinSize,
			Heartbeat: 0,
		})
		opened <- result{c, err}
	}()

	if err := s.r.ReadProtocolHeader(); err != nil {
		t.Fatalf("protocol header: %v", err)
	}
	s.send(0, &ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: mapping.Table{
			"product":      "Warren",
			"capabilities": mapping.Table{"publisher_confirms": true, "basic.nack": true},
		},
		Mechanisms: "PLAIN AMQPLAIN", Locales: "en_US",
	})
	startOk := expect[*ConnectionStartOk](s, 0)
	if startOk.Mechanism != "PLAIN" || startOk.Response != "\x00guest\x00guest" {
		t.Fatalf("start-ok %+v", startOk)
	}
	if caps, ok := startOk.ClientProperties["capabilities"].(mapping.Table); !ok || caps["consumer_cancel_notify"] != true {
		t.Fatalf("client properties %#v", startOk.ClientProperties)
	}
	s.send(0, &ConnectionTune{ChannelMax: 16, FrameMax: FrameMinSize, Heartbeat: 0})
	tuneOk := expect[*ConnectionTuneOk](s, 0)
	if tuneOk.FrameMax != FrameMinSize || tuneOk.ChannelMax != 16 {
		t.Fatalf("tune-ok %+v", tuneOk)
	}
	s.r.SetMaxFrameSize(tuneOk.FrameMax)
	if open := expect[*ConnectionOpen](s, 0); open.VirtualHost != "/" {
		t.Fatalf("open %+v", open)
	}
	s.send(0, &ConnectionOpenOk{})
	res := <-opened
	if res.err != nil {
		t.Fatalf("amqp.Open: %v", res.err)
	}
	conn := res.conn

	chDone := make(chan *amqp.Channel, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			t.Error(err)
		}
		chDone <- ch
	}()
	expect[*ChannelOpen](s, 1)
	s.send(1, &ChannelOpenOk{})
	ch := <-chDone
	if ch == nil {
		t.FailNow()
	}

	// queue.declare with arguments.
	declared := make(chan error, 1)
	go func() {
		q, err := ch.QueueDeclare("q1", true, false, false, false, amqp.Table{"x-max-length": int32(10), "x-queue-type": "classic"})
		if err == nil && (q.Messages != 7 || q.Consumers != 2) {
			t.Errorf("declare-ok read as %+v", q)
		}
		declared <- err
	}()
	qd := expect[*QueueDeclare](s, 1)
	if qd.Queue != "q1" || !qd.Durable || qd.AutoDelete || qd.Arguments["x-max-length"] != int32(10) ||
		qd.Arguments["x-queue-type"] != "classic" {
		t.Fatalf("queue.declare %+v", qd)
	}
	s.send(1, &QueueDeclareOk{Queue: "q1", MessageCount: 7, ConsumerCount: 2})
	if err := <-declared; err != nil {
		t.Fatal(err)
	}

	// basic.publish of a body larger than a frame.
	body := bytes.Repeat([]byte("0123456789"), 1000)
	ts := time.Unix(1700000000, 0)
	go func() {
		err := ch.PublishWithContext(context.Background(), "ex", "rk", true, false, amqp.Publishing{
			ContentType: "text/plain", DeliveryMode: 2, Headers: amqp.Table{"h": "v", "n": int64(-1)},
			CorrelationId: "c1", ReplyTo: "r", Timestamp: ts, Priority: 5, Body: body,
		})
		if err != nil {
			t.Error(err)
		}
	}()
	pub := expect[*BasicPublish](s, 1)
	if pub.Exchange != "ex" || pub.RoutingKey != "rk" || !pub.Mandatory || pub.Immediate {
		t.Fatalf("publish %+v", pub)
	}
	f, err := s.r.ReadFrame()
	if err != nil || f.Type != FrameHeader {
		t.Fatalf("header frame %+v %v", f, err)
	}
	cls, size, props, err := ParseContentHeader(f.Payload)
	if err != nil || cls != ClassBasic || size != uint64(len(body)) {
		t.Fatalf("content header %d %d %v", cls, size, err)
	}
	if props.ContentType != "text/plain" || !props.Persistent() || props.Headers["h"] != "v" ||
		props.Headers["n"] != int64(-1) || props.CorrelationID != "c1" || props.ReplyTo != "r" ||
		!props.Timestamp.Equal(ts) || props.Priority != 5 {
		t.Fatalf("properties %+v", props)
	}
	var got []byte
	for uint64(len(got)) < size {
		f, err := s.r.ReadFrame()
		if err != nil || f.Type != FrameBody {
			t.Fatalf("body frame %d %v", f.Type, err)
		}
		if len(f.Payload)+FrameOverhead > FrameMinSize {
			t.Fatalf("client sent a %d-byte frame", len(f.Payload)+FrameOverhead)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("body differs")
	}

	// basic.consume, then a delivery written by us.
	deliveries := make(chan (<-chan amqp.Delivery), 1)
	go func() {
		d, err := ch.Consume("q1", "", false, false, false, false, nil)
		if err != nil {
			t.Error(err)
		}
		deliveries <- d
	}()
	bc := expect[*BasicConsume](s, 1)
	s.send(1, &BasicConsumeOk{ConsumerTag: bc.ConsumerTag})
	dch := <-deliveries
	var out []byte
	out, _ = AppendMethodFrame(out, 1, &BasicDeliver{ConsumerTag: bc.ConsumerTag, DeliveryTag: 9, Redelivered: true, Exchange: "ex", RoutingKey: "rk"})
	out, err = AppendHeaderFrame(out, 1, ClassBasic, uint64(len(body)), &mapping.Properties{
		ContentType: "application/json", MessageID: "m9", Timestamp: ts, AppID: "warren",
		Headers: mapping.Table{
			"t": true, "b": int8(-2), "B": uint8(2), "s": int16(-3), "u": uint16(3), "I": int32(-4),
			"i": uint32(4), "l": int64(-5), "f": float32(1.5), "d": 2.5, "D": mapping.Decimal{Scale: 1, Value: 15},
			"S": "str", "x": []byte{1, 2}, "T": ts, "V": nil, "F": mapping.Table{"k": "v"}, "A": []any{int32(1), "a"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out = AppendBodyFrames(out, 1, body, FrameMinSize)
	s.write(out)
	select {
	case d := <-dch:
		if d.DeliveryTag != 9 || !d.Redelivered || d.Exchange != "ex" || d.RoutingKey != "rk" ||
			d.ContentType != "application/json" || d.MessageId != "m9" || d.AppId != "warren" ||
			!d.Timestamp.Equal(ts) || !bytes.Equal(d.Body, body) {
			t.Fatalf("delivery %+v", d)
		}
		h := d.Headers
		if h["t"] != true || h["b"] != int8(-2) || h["B"] != byte(2) || h["s"] != int16(-3) ||
			h["u"] != uint16(3) || h["I"] != int32(-4) || h["i"] != uint32(4) || h["l"] != int64(-5) ||
			h["f"] != float32(1.5) || h["d"] != 2.5 || h["D"] != (amqp.Decimal{Scale: 1, Value: 15}) ||
			h["S"] != "str" || !bytes.Equal(h["x"].([]byte), []byte{1, 2}) || !h["T"].(time.Time).Equal(ts) ||
			h["V"] != nil || h["F"].(amqp.Table)["k"] != "v" || h["A"].([]any)[1] != "a" {
			t.Fatalf("headers as amqp091-go reads them: %#v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}

	// connection.close from the client.
	closed := make(chan error, 1)
	go func() { closed <- conn.Close() }()
	cc := expect[*ConnectionClose](s, 0)
	if cc.ReplyCode != ReplySuccess {
		t.Fatalf("close %+v", cc)
	}
	s.send(0, &ConnectionCloseOk{})
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
