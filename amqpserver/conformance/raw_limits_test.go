package conformance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Malformed input on a raw socket. Each case provokes one protocol
// violation and checks the reply RabbitMQ 3.10 gives for it (code and
// keywords of the reply text, measured against a real RabbitMQ with
// WARREN_TEST_AMQP_URL), that the socket is closed afterwards, and that a
// second, well-behaved client on another connection keeps working.

// frameBytes builds a frame; end is the frame-end octet (0xCE when valid).
func frameBytes(typ byte, channel uint16, payload []byte, end byte) []byte {
	var b bytes.Buffer
	b.WriteByte(typ)
	_ = binary.Write(&b, binary.BigEndian, channel)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(payload)))
	b.Write(payload)
	b.WriteByte(end)
	return b.Bytes()
}

func methodPayload(class, method uint16, args []byte) []byte {
	var p bytes.Buffer
	_ = binary.Write(&p, binary.BigEndian, class)
	_ = binary.Write(&p, binary.BigEndian, method)
	p.Write(args)
	return p.Bytes()
}

// headerPayload is a basic content header without properties.
func headerPayload(class uint16, bodySize uint64) []byte {
	var p bytes.Buffer
	_ = binary.Write(&p, binary.BigEndian, class)
	_ = binary.Write(&p, binary.BigEndian, uint16(0))
	_ = binary.Write(&p, binary.BigEndian, bodySize)
	_ = binary.Write(&p, binary.BigEndian, uint16(0))
	return p.Bytes()
}

// publishArgs are basic.publish's arguments to the default exchange.
func publishArgs(key string) []byte {
	var a bytes.Buffer
	a.Write([]byte{0, 0})
	shortstr(&a, "")
	shortstr(&a, key)
	a.WriteByte(0)
	return a.Bytes()
}

func (rc *rawConn) write(b []byte) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// rawOutcome is how the server reacted to a violation.
type rawOutcome struct {
	kind  string // "connection" (connection.close), "channel" (channel.close) or "dropped" (socket closed without a close method)
	code  uint16
	text  string
	after time.Duration
	err   error // for "dropped": what the read returned
	// closedAfter: after connection.close and our close-ok, the server
	// closed the socket.
	closedAfter bool
}

// awaitOutcome reads frames until a close method or the end of the socket.
// It answers a connection.close with close-ok and then waits for the
// socket to close.
func (rc *rawConn) awaitOutcome(timeout time.Duration) rawOutcome {
	rc.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		fr, err := rc.read(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.t.Fatalf("no reaction from the server within %v", timeout)
			}
			return rawOutcome{kind: "dropped", after: time.Since(start), err: err, closedAfter: true}
		}
		c, m := fr.method()
		switch {
		case c == 10 && m == 50:
			code, text := parseClose(fr)
			o := rawOutcome{kind: "connection", code: code, text: text, after: time.Since(start)}
			rc.sendNoFail(frameBytes(1, 0, methodPayload(10, 51, nil), 0xCE)) // close-ok; the server may already have closed
			o.closedAfter = rc.waitEOF(waitTimeout)
			return o
		case c == 20 && m == 40:
			code, text := parseClose(fr)
			return rawOutcome{kind: "channel", code: code, text: text, after: time.Since(start)}
		}
	}
}

// waitEOF reports whether the server closes the socket within timeout.
func (rc *rawConn) waitEOF(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		_, err := rc.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// sendNoFail is send for after a violation: the server may already have
// closed the socket.
func (rc *rawConn) sendNoFail(b []byte) {
	_ = rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = rc.c.Write(b)
}

// bystander is a well-behaved client that must keep working while another
// connection misbehaves.
type bystander struct {
	f     *fixture
	queue string
}

func newBystander(f *fixture) *bystander {
	_, ch := f.connChan()
	q := f.queue(ch)
	b := &bystander{f: f, queue: q}
	b.check() // and once more after the violation
	return b
}

func (b *bystander) check() {
	t := b.f.t
	t.Helper()
	start := time.Now()
	conn := b.f.dial()
	defer closeConn(conn)
	ch := b.f.channel(conn)
	publish(t, ch, "", b.queue, "still here")
	for {
		m, ok := get(t, ch, b.queue, true)
		if ok {
			if string(m.Body) != "still here" {
				t.Fatalf("bystander got %q", m.Body)
			}
			break
		}
		if time.Since(start) > waitTimeout {
			t.Fatalf("bystander's message did not arrive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("bystander round trip took %v", d)
	}
}

// openedRaw returns a raw connection past connection.open with channel 1 open.
func openedRaw(f *fixture) *rawConn {
	rc := f.rawDial()
	rc.open(nil, 0)
	rc.send(1, 20, 10, []byte{0}) // channel.open
	rc.expectMethod(20, 11)
	return rc
}

type rawCase struct {
	name string
	// provoke runs the violation and returns the outcome.
	provoke func(t *testing.T, f *fixture) rawOutcome
	kinds   []string // accepted outcome kinds
	codes   []uint16 // accepted reply codes (none for "dropped")
	words   []string // keywords of the reply text
}

func TestRawMalformedInput(t *testing.T) {
	cases := []rawCase{
		{
			// Before connection.tune-ok the frame limit is small (RabbitMQ
			// 4096, Warren 8192): a 10,000-byte start-ok is refused. Before
			// connection.open the peer "MUST close the socket without
			// sending any further data" (AMQP 0-9-1, 2.2.4): RabbitMQ
			// closes it silently, after a 3 s delay.
			name: "FrameTooLargeBeforeTune",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := f.rawDial()
				rc.expectMethod(10, 10)
				var args bytes.Buffer
				var props bytes.Buffer
				shortstr(&props, "padding")
				props.WriteByte('S')
				longstr(&props, strings.Repeat("x", 10000))
				_ = binary.Write(&args, binary.BigEndian, uint32(props.Len()))
				args.Write(props.Bytes())
				shortstr(&args, "PLAIN")
				longstr(&args, "\x00"+rc.user+"\x00"+rc.pass)
				shortstr(&args, "en_US")
				rc.sendNoFail(frameBytes(1, 0, methodPayload(10, 11, args.Bytes()), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"dropped"},
		},
		{
			// After tune-ok the negotiated frame_max (131072 in both)
			// holds: a 140,000-byte frame is a frame error.
			name: "FrameTooLargeAfterOpen",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(60, 40, publishArgs("nowhere")), 0xCE))
				rc.sendNoFail(frameBytes(2, 1, headerPayload(60, 140000), 0xCE))
				rc.sendNoFail(frameBytes(3, 1, make([]byte, 140000), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{501}, words: []string{"FRAME_ERROR"},
		},
		{
			name: "WrongFrameEnd",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(85, 10, []byte{0, 0, 0, 0, 0, 0, 0}), 0x00)) // basic.qos, bad end
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{501}, words: []string{"FRAME_ERROR"},
		},
		{
			name: "HeartbeatOnChannel5",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(8, 5, nil, 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			// RabbitMQ: 505 "UNEXPECTED_FRAME - type 8, all octets = <<>>".
			kinds: []string{"connection"}, codes: []uint16{505}, words: []string{"UNEXPECTED_FRAME"},
		},
		{
			name: "BodyBeforeHeader",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(60, 40, publishArgs("nowhere")), 0xCE))
				rc.sendNoFail(frameBytes(3, 1, []byte("body"), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{505}, words: []string{"UNEXPECTED_FRAME", "expected content header"},
		},
		{
			name: "HeaderBeforeMethod",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(2, 1, headerPayload(60, 4), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{505}, words: []string{"UNEXPECTED_FRAME", "expected method frame"},
		},
		{
			name: "BodyLongerThanDeclared",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(60, 40, publishArgs("nowhere")), 0xCE))
				rc.sendNoFail(frameBytes(2, 1, headerPayload(60, 4), 0xCE))
				rc.sendNoFail(frameBytes(3, 1, []byte("much longer than four"), 0xCE))
				// RabbitMQ does not notice the overlong body itself: it
				// waits for more body and fails on the next method frame
				// with 505. Closing at once with 501 is as good.
				time.Sleep(100 * time.Millisecond)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(85, 10, []byte{0, 0, 0, 0, 0, 0, 0}), 0xCE)) // basic.qos
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{501, 505}, words: []string{"_"},
		},
		{
			name: "UnknownClass",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(99, 1, nil), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			// RabbitMQ 3.10 drops the socket at once (its reader fails on
			// the unknown id and the peer sees a reset); a
			// connection.close 540 NOT_IMPLEMENTED or 503 COMMAND_INVALID
			// says more and is accepted too.
			kinds: []string{"dropped", "connection"}, codes: []uint16{540, 503},
		},
		{
			name: "UnknownMethod",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 1, methodPayload(60, 99, nil), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			// As UnknownClass: RabbitMQ drops the socket.
			kinds: []string{"dropped", "connection"}, codes: []uint16{540, 503},
		},
		{
			// Negotiate channel_max 2, then open channel 3.
			name: "ChannelAboveChannelMax",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := f.rawDial()
				_, frameMax := rc.plainStartOk()
				rc.tuneOkOpen(2, frameMax)
				rc.expectMethod(10, 41)
				rc.send(1, 20, 10, []byte{0})
				rc.expectMethod(20, 11)
				rc.send(2, 20, 10, []byte{0})
				rc.expectMethod(20, 11)
				rc.sendNoFail(frameBytes(1, 3, methodPayload(20, 10, []byte{0}), 0xCE))
				return rc.awaitOutcome(10 * time.Second)
			},
			kinds: []string{"connection"}, codes: []uint16{530}, words: []string{"NOT_ALLOWED", "channel_max"},
		},
		{
			// A channel number far above the default channel_max (2047),
			// with only one channel open.
			name: "ChannelNumberAboveDefaultChannelMax",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				rc.sendNoFail(frameBytes(1, 60000, methodPayload(20, 10, []byte{0}), 0xCE))
				fr, err := rc.read(waitTimeout)
				if err != nil {
					return rawOutcome{kind: "dropped", err: err, closedAfter: true}
				}
				if c, m := fr.method(); c == 20 && m == 11 && fr.channel == 60000 {
					return rawOutcome{kind: "accepted"}
				}
				if c, m := fr.method(); c == 10 && m == 50 {
					code, text := parseClose(fr)
					rc.sendNoFail(frameBytes(1, 0, methodPayload(10, 51, nil), 0xCE))
					return rawOutcome{kind: "connection", code: code, text: text, closedAfter: rc.waitEOF(waitTimeout)}
				}
				t.Fatalf("unexpected frame type %d on channel %d", fr.typ, fr.channel)
				return rawOutcome{}
			},
			// RabbitMQ 3.10 counts channels (530 when the count reaches
			// channel_max) and opens channel 60000 (open-ok); refusing
			// the number as the spec reads channel_max is acceptable too.
			kinds: []string{"accepted", "connection"}, codes: []uint16{504, 530},
		},
		{
			// RabbitMQ's max_message_size is 128 MiB (Warren's default
			// 16 MiB). RabbitMQ checks the size once the whole body has
			// arrived, Warren at the content header: a 129 MiB message is
			// streamed until the channel is closed with 406.
			name: "BodySizeOverMaxMessageSize",
			provoke: func(t *testing.T, f *fixture) rawOutcome {
				rc := openedRaw(f)
				const size = 129 << 20
				rc.sendNoFail(frameBytes(1, 1, methodPayload(60, 40, publishArgs("nowhere")), 0xCE))
				rc.sendNoFail(frameBytes(2, 1, headerPayload(60, size), 0xCE))
				stop := make(chan struct{})
				sent := make(chan struct{})
				go func() {
					defer close(sent)
					chunk := frameBytes(3, 1, make([]byte, 4096-8), 0xCE)
					for n := 0; n < size; n += 4096 - 8 {
						select {
						case <-stop:
							return
						default:
						}
						if size-n < 4096-8 {
							chunk = frameBytes(3, 1, make([]byte, size-n), 0xCE)
						}
						_ = rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
						if _, err := rc.c.Write(chunk); err != nil {
							return
						}
					}
				}()
				o := rc.awaitOutcome(20 * time.Second)
				close(stop)
				<-sent
				if o.kind == "channel" {
					// The connection survives a channel error.
					rc.send(1, 20, 41, nil) // channel.close-ok
					rc.send(2, 20, 10, []byte{0})
					rc.expectMethod(20, 11)
				}
				return o
			},
			kinds: []string{"channel"}, codes: []uint16{406}, words: []string{"PRECONDITION_FAILED", "message size", "larger than configured max size"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			by := newBystander(f)
			o := tc.provoke(t, f)
			t.Logf("%s: %s close %d %q after %v (socket closed afterwards: %v, read error %v)", tc.name, o.kind, o.code, o.text, o.after.Round(time.Millisecond), o.closedAfter, o.err)
			closeMethod := o.kind == "connection" || o.kind == "channel"
			if !slices.Contains(tc.kinds, o.kind) || closeMethod && !slices.Contains(tc.codes, o.code) {
				t.Errorf("got %s close %d %q, want %v close %v", o.kind, o.code, o.text, tc.kinds, tc.codes)
			}
			for _, w := range tc.words {
				if !closeMethod {
					break
				}
				if !strings.Contains(o.text, w) {
					t.Errorf("reply text %q lacks %q", o.text, w)
				}
			}
			if o.kind != "channel" && o.kind != "accepted" && !o.closedAfter {
				t.Errorf("socket still open after the connection was closed")
			}
			by.check()
		})
	}
}

// A client speaking another protocol (or another AMQP version) gets the
// protocol header the server supports, and the socket is closed.
// (RabbitMQ also accepts the legacy headers "AMQP\x01\x01\x00\x09" and
// "AMQP\x01\x01\x09\x01" as 0-9-1; they are not tested here.)
func TestRawBadProtocolHeader(t *testing.T) {
	for _, hdr := range []string{"AMQP\x00\x00\x09\x02", "AMQP\x00\x01\x00\x00", "AMQP\x00\x00\x08\x00", "GET / HTTP/1.1\r\n\r\n"} {
		t.Run(strings.NewReplacer("\x00", "0", "\x01", "1", "\x08", "8", "\x09", "9", "\x02", "2", "\r", "", "\n", "", " ", "_", "/", "").Replace(hdr), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			by := newBystander(f)
			rc := f.rawDialNoHeader()
			rc.write([]byte(hdr))
			_ = rc.c.SetReadDeadline(time.Now().Add(waitTimeout))
			got, err := io.ReadAll(rc.r)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("socket not closed after a bad protocol header (got %q)", got)
			}
			t.Logf("answer %q", got)
			if string(got) != "AMQP\x00\x00\x09\x01" {
				t.Errorf("answer %q, want %q", got, "AMQP\x00\x00\x09\x01")
			}
			by.check()
		})
	}
}

// rawDialNoHeader is rawDial without the protocol header.
func (f *fixture) rawDialNoHeader() *rawConn {
	f.t.Helper()
	host := hostOf(f.t, f.url)
	c, err := net.DialTimeout("tcp", host, waitTimeout)
	if err != nil {
		f.t.Fatalf("raw dial: %v", err)
	}
	f.track(c)
	return &rawConn{t: f.t, c: c, r: bufioReader(c)}
}

// hostOf returns host:port of an AMQP URL (port 5672 when absent).
func hostOf(t *testing.T, rawurl string) string {
	t.Helper()
	u, err := url.Parse(rawurl)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5672")
	}
	return u.Host
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
