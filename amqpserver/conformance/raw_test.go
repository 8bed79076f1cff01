package conformance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawConn is a minimal AMQP 0-9-1 client speaking frames directly, for the
// few behaviours amqp091-go cannot show (it picks consumer tags itself and
// does not announce authentication_failure_close).
type rawConn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	user string
	pass string
	vh   string
	// pushback holds a frame that startAndTune read instead of tune.
	pushback *rawFrame
}

type rawFrame struct {
	typ     byte
	channel uint16
	payload []byte
}

func (f rawFrame) method() (class, method uint16) {
	if f.typ != 1 || len(f.payload) < 4 {
		return 0, 0
	}
	return binary.BigEndian.Uint16(f.payload), binary.BigEndian.Uint16(f.payload[2:])
}

func (f *fixture) rawDial() *rawConn {
	f.t.Helper()
	u, err := url.Parse(f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5672")
	}
	c, err := net.DialTimeout("tcp", host, waitTimeout)
	if err != nil {
		f.t.Fatalf("raw dial: %v", err)
	}
	f.track(c)
	rc := &rawConn{t: f.t, c: c, r: bufio.NewReader(c), user: "guest", pass: "guest", vh: "/"}
	if u.User != nil {
		rc.user = u.User.Username()
		rc.pass, _ = u.User.Password()
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		rc.vh, _ = url.PathUnescape(p)
	}
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		f.t.Fatal(err)
	}
	return rc
}

func shortstr(b *bytes.Buffer, s string) {
	b.WriteByte(byte(len(s)))
	b.WriteString(s)
}

func longstr(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.WriteString(s)
}

func (rc *rawConn) send(channel uint16, class, method uint16, args []byte) {
	rc.t.Helper()
	var p bytes.Buffer
	_ = binary.Write(&p, binary.BigEndian, class)
	_ = binary.Write(&p, binary.BigEndian, method)
	p.Write(args)
	var fr bytes.Buffer
	fr.WriteByte(1)
	_ = binary.Write(&fr, binary.BigEndian, channel)
	_ = binary.Write(&fr, binary.BigEndian, uint32(p.Len()))
	fr.Write(p.Bytes())
	fr.WriteByte(0xCE)
	_ = rc.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := rc.c.Write(fr.Bytes()); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// read returns the next frame, or an error (io.EOF when the server closed
// the socket).
func (rc *rawConn) read(timeout time.Duration) (rawFrame, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	var hdr [7]byte
	if _, err := io.ReadFull(rc.r, hdr[:]); err != nil {
		return rawFrame{}, err
	}
	size := binary.BigEndian.Uint32(hdr[3:])
	if size > 1<<20 {
		return rawFrame{}, errors.New("frame too large")
	}
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(rc.r, buf); err != nil {
		return rawFrame{}, err
	}
	if buf[size] != 0xCE {
		return rawFrame{}, errors.New("bad frame end")
	}
	return rawFrame{typ: hdr[0], channel: binary.BigEndian.Uint16(hdr[1:]), payload: buf[:size]}, nil
}

// expectMethod reads frames (skipping heartbeats) until a method frame.
func (rc *rawConn) expectMethod(class, method uint16) rawFrame {
	rc.t.Helper()
	for {
		f, err := rc.read(waitTimeout)
		if err != nil {
			rc.t.Fatalf("waiting for method %d.%d: %v", class, method, err)
		}
		if f.typ == 8 {
			continue
		}
		if c, m := f.method(); c != class || m != method {
			if c == 10 && m == 50 || c == 20 && m == 40 {
				code, text := parseClose(f)
				rc.t.Fatalf("waiting for method %d.%d, got close %d %q", class, method, code, text)
			}
			rc.t.Fatalf("waiting for method %d.%d, got frame type %d method %d.%d", class, method, f.typ, c, m)
		}
		return f
	}
}

func parseClose(f rawFrame) (uint16, string) {
	p := f.payload[4:]
	if len(p) < 3 {
		return 0, ""
	}
	code := binary.BigEndian.Uint16(p)
	n := int(p[2])
	if len(p) < 3+n {
		return code, ""
	}
	return code, string(p[3 : 3+n])
}

// handshake runs start/start-ok/tune/tune-ok with the given capabilities
// announced and credentials, stopping before connection.open.
func (rc *rawConn) startAndTune(caps map[string]bool, pass string, heartbeat uint16) (tuned bool) {
	rc.t.Helper()
	rc.expectMethod(10, 10)
	var table bytes.Buffer
	for k, v := range caps {
		shortstr(&table, k)
		table.WriteByte('t')
		if v {
			table.WriteByte(1)
		} else {
			table.WriteByte(0)
		}
	}
	var props bytes.Buffer
	shortstr(&props, "capabilities")
	props.WriteByte('F')
	_ = binary.Write(&props, binary.BigEndian, uint32(table.Len()))
	props.Write(table.Bytes())
	var args bytes.Buffer
	_ = binary.Write(&args, binary.BigEndian, uint32(props.Len()))
	args.Write(props.Bytes())
	shortstr(&args, "PLAIN")
	longstr(&args, "\x00"+rc.user+"\x00"+pass)
	shortstr(&args, "en_US")
	rc.send(0, 10, 11, args.Bytes())

	f, err := rc.read(waitTimeout)
	if err != nil {
		return false
	}
	if c, m := f.method(); c != 10 || m != 30 {
		rc.pushback = &f
		return false
	}
	p := f.payload[4:]
	channelMax := binary.BigEndian.Uint16(p)
	frameMax := binary.BigEndian.Uint32(p[2:])
	var tune bytes.Buffer
	_ = binary.Write(&tune, binary.BigEndian, channelMax)
	_ = binary.Write(&tune, binary.BigEndian, frameMax)
	_ = binary.Write(&tune, binary.BigEndian, heartbeat)
	rc.send(0, 10, 31, tune.Bytes())
	return true
}

func (rc *rawConn) open(caps map[string]bool, heartbeat uint16) {
	rc.t.Helper()
	if !rc.startAndTune(caps, rc.pass, heartbeat) {
		rc.t.Fatalf("handshake failed")
	}
	var args bytes.Buffer
	shortstr(&args, rc.vh)
	shortstr(&args, "")
	args.WriteByte(0)
	rc.send(0, 10, 40, args.Bytes())
	rc.expectMethod(10, 41)
}

func TestRawServerGeneratedConsumerTag(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.queue(ch)

	rc := f.rawDial()
	rc.open(nil, 0)
	rc.send(1, 20, 10, []byte{0}) // channel.open
	rc.expectMethod(20, 11)
	var tags []string
	for range 2 {
		var args bytes.Buffer
		args.Write([]byte{0, 0})
		shortstr(&args, q)
		shortstr(&args, "")  // let the server pick
		args.WriteByte(0x02) // no-ack
		args.Write([]byte{0, 0, 0, 0})
		rc.send(1, 60, 20, args.Bytes())
		ok := rc.expectMethod(60, 21)
		p := ok.payload[4:]
		tag := string(p[1 : 1+int(p[0])])
		if !strings.HasPrefix(tag, "amq.ctag-") {
			t.Errorf("server-generated consumer tag %q lacks amq.ctag- prefix", tag)
		}
		tags = append(tags, tag)
	}
	if tags[0] == tags[1] {
		t.Errorf("two generated consumer tags are equal: %q", tags[0])
	}
}

// With authentication_failure_close announced, a failed login gets a
// connection.close 403 instead of a dropped socket.
func TestRawAuthFailureClose(t *testing.T) {
	f := newFixture(t)
	rc := f.rawDial()
	if rc.startAndTune(map[string]bool{"authentication_failure_close": true}, "wrong-password", 0) {
		t.Fatalf("connection.tune after a wrong password")
	}
	if rc.pushback == nil {
		t.Fatalf("socket closed without connection.close")
	}
	fr := *rc.pushback
	if c, m := fr.method(); c != 10 || m != 50 {
		t.Fatalf("got method %d.%d, want connection.close", c, m)
	}
	code, text := parseClose(fr)
	t.Logf("reply %d %q", code, text)
	if code != 403 || !strings.HasPrefix(text, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN") {
		t.Errorf("connection.close %d %q", code, text)
	}
}

func TestRawMethodOnUnopenedChannel(t *testing.T) {
	f := newFixture(t)
	rc := f.rawDial()
	rc.open(nil, 0)
	var args bytes.Buffer
	args.Write([]byte{0, 0})
	shortstr(&args, "")
	args.WriteByte(0)
	args.Write([]byte{0, 0, 0, 0})
	rc.send(3, 50, 10, args.Bytes()) // queue.declare on channel 3, never opened
	fr := rc.expectMethod(10, 50)
	code, text := parseClose(fr)
	t.Logf("reply %d %q", code, text)
	if code != 504 || !strings.HasPrefix(text, "CHANNEL_ERROR - expected 'channel.open'") {
		t.Errorf("connection.close %d %q, want 504 CHANNEL_ERROR - expected 'channel.open'", code, text)
	}
}

func TestRawHeartbeats(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := f.rawDial()
	rc.open(nil, 1) // 1 s heartbeat, and this client never sends any
	start := time.Now()
	beats := 0
	for {
		fr, err := rc.read(6 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("silent client not disconnected within 6 s (heartbeat 1 s)")
			}
			break // closed by the server
		}
		if fr.typ == 8 {
			if fr.channel != 0 {
				t.Errorf("heartbeat on channel %d", fr.channel)
			}
			beats++
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d heartbeats, disconnected after %v", beats, elapsed)
	// RabbitMQ sends one every half interval (5 or so in those 3 s).
	if beats < 2 {
		t.Errorf("server sent %d heartbeat frames before dropping the client", beats)
	}
	if elapsed < 1500*time.Millisecond {
		t.Errorf("disconnected after only %v", elapsed)
	}
}
