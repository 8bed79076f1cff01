package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/warrenmq/warren/mapping"
)

func TestReadFrameSequence(t *testing.T) {
	var stream []byte
	stream = AppendHeartbeat(stream)
	stream, _ = AppendMethodFrame(stream, 1, &BasicPublish{Exchange: "ex", RoutingKey: "rk"})
	stream, _ = AppendHeaderFrame(stream, 1, ClassBasic, 5, &mapping.Properties{ContentType: "text/plain"})
	stream = AppendBodyFrames(stream, 1, []byte("hello"), 0)
	stream = AppendFrame(stream, FrameHeartbeat, 5, nil) // heartbeat on a channel: the server decides

	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data err": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(mk(), 16) // smaller than a frame: exercises refills
			want := []struct {
				typ uint8
				ch  uint16
			}{{FrameHeartbeat, 0}, {FrameMethod, 1}, {FrameHeader, 1}, {FrameBody, 1}, {FrameHeartbeat, 5}}
			var frames []Frame
			for _, w := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				if f.Type != w.typ || f.Channel != w.ch {
					t.Fatalf("got type %d channel %d, want %d %d", f.Type, f.Channel, w.typ, w.ch)
				}
				frames = append(frames, f)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("at end: err = %v, want io.EOF", err)
			}
			if frames[0].Payload != nil {
				t.Fatalf("heartbeat payload %q", frames[0].Payload)
			}
			m, err := ReadMethod(frames[1].Payload)
			if p, ok := m.(*BasicPublish); err != nil || !ok || p.RoutingKey != "rk" {
				t.Fatalf("method %+v, %v", m, err)
			}
			cls, size, props, err := ParseContentHeader(frames[2].Payload)
			if err != nil || cls != ClassBasic || size != 5 || props.ContentType != "text/plain" {
				t.Fatalf("header %d %d %+v %v", cls, size, props, err)
			}
			if string(frames[3].Payload) != "hello" {
				t.Fatalf("body %q", frames[3].Payload)
			}
		})
	}
}

func TestReadFramePayloadsAreIndependent(t *testing.T) {
	stream := AppendFrame(nil, FrameBody, 1, []byte("first"))
	stream = AppendFrame(stream, FrameBody, 1, []byte("second"))
	r := NewReader(bytes.NewReader(stream), 0)
	a, _ := r.ReadFrame()
	b, _ := r.ReadFrame()
	if string(a.Payload) != "first" || string(b.Payload) != "second" {
		t.Fatalf("payloads %q %q", a.Payload, b.Payload)
	}
}

func TestReadFrameErrors(t *testing.T) {
	hdr := func(typ byte, size uint32) string {
		return string([]byte{typ, 0, 1, byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)})
	}
	cases := map[string]struct {
		in   string
		max  uint32
		want error
	}{
		"size 0xFFFFFFFF":    {hdr(FrameBody, 0xFFFFFFFF), 0, ErrFrameTooLarge},
		"size just over max": {hdr(FrameBody, FrameMinSize-7), FrameMinSize, ErrFrameTooLarge},
		"over default max":   {hdr(FrameMethod, DefaultMaxFrameSize), 0, ErrFrameTooLarge},
		"bad frame end":      {hdr(FrameBody, 2) + "ab\x00", 0, ErrBadFrameEnd},
		"heartbeat bad end":  {hdr(FrameHeartbeat, 0) + "X", 0, ErrBadFrameEnd},
		"unknown type":       {hdr(4, 0) + "\xce", 0, ErrUnknownFrameType},
		"protocol header":    {"AMQP\x00\x00\x09\x01", 0, ErrUnknownFrameType},
		"short header":       {"\x01\x00", 0, io.ErrUnexpectedEOF},
		"short payload":      {hdr(FrameBody, 10) + "abc", 0, io.ErrUnexpectedEOF},
		"missing frame end":  {hdr(FrameBody, 3) + "abc", 0, io.ErrUnexpectedEOF},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewReader(strings.NewReader(c.in), 0)
			if c.max != 0 {
				r.SetMaxFrameSize(c.max)
			}
			_, err := r.ReadFrame()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if errors.Is(c.want, ErrFrame) {
				if code, ok := ReplyCodeFor(err); !ok || code != FrameError {
					t.Fatalf("ReplyCodeFor = %d, %v", code, ok)
				}
			}
		})
	}
}

func TestReadFrameExactlyMax(t *testing.T) {
	payload := bytes.Repeat([]byte{'x'}, FrameMinSize-FrameOverhead)
	r := NewReader(bytes.NewReader(AppendFrame(nil, FrameBody, 1, payload)), 0)
	r.SetMaxFrameSize(FrameMinSize)
	if f, err := r.ReadFrame(); err != nil || len(f.Payload) != len(payload) {
		t.Fatalf("frame of exactly frame-max: %d, %v", len(f.Payload), err)
	}
	r.SetMaxFrameSize(1)
	if r.MaxFrameSize() != FrameMinSize {
		t.Fatalf("max below minimum not raised: %d", r.MaxFrameSize())
	}
	r.SetMaxFrameSize(0)
	if r.MaxFrameSize() != DefaultMaxFrameSize {
		t.Fatalf("max 0 not defaulted: %d", r.MaxFrameSize())
	}
}

// A huge declared size must not make the reader allocate before failing.
func TestReadFrameTooLargeDoesNotAllocate(t *testing.T) {
	in := []byte{FrameBody, 0, 1, 0xff, 0xff, 0xff, 0xff}
	rd := bytes.NewReader(in)
	r := NewReader(rd, 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		rd.Reset(in)
		r.br.Reset(rd)
		if _, err := r.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// The error values allocate a little; a payload would be 4 GiB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("%d bytes allocated for 10 rejected frames", n)
	}
}

func TestAppendBodyFrames(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	for _, frameMax := range []uint32{0, 1, FrameMinSize, FrameMinSize + 1, 5008, 10008, 10009, 1 << 20} {
		out := AppendBodyFrames([]byte("p"), 3, body, frameMax)
		r := NewReader(bytes.NewReader(out[1:]), 0)
		r.SetMaxFrameSize(1 << 20)
		var got []byte
		frames := 0
		for {
			f, err := r.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			limit := max(frameMax, FrameMinSize)
			if frameMax != 0 && uint32(len(f.Payload))+FrameOverhead > limit {
				t.Fatalf("frameMax %d: frame of %d", frameMax, len(f.Payload)+FrameOverhead)
			}
			if f.Type != FrameBody || f.Channel != 3 || len(f.Payload) == 0 {
				t.Fatalf("bad frame %d/%d/%d", f.Type, f.Channel, len(f.Payload))
			}
			got = append(got, f.Payload...)
			frames++
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("frameMax %d: body differs", frameMax)
		}
		if frameMax == 5008 && frames != 2 || frameMax == 10008 && frames != 1 || frameMax == 10009 && frames != 1 {
			t.Fatalf("frameMax %d: %d frames", frameMax, frames)
		}
	}
	if out := AppendBodyFrames(nil, 1, nil, 4096); len(out) != 0 {
		t.Fatalf("empty body gave %q", out)
	}
}

func TestWritersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64<<10)
	m := &BasicDeliver{ConsumerTag: "ctag", DeliveryTag: 42, Exchange: "ex", RoutingKey: "rk"}
	p := &mapping.Properties{ContentType: "text/plain", DeliveryMode: 2, Headers: mapping.Table{"a": int32(1)}}
	body := make([]byte, 10000)
	allocs := testing.AllocsPerRun(100, func() {
		out, err := AppendMethodFrame(buf[:0], 1, m)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = AppendHeaderFrame(out, 1, ClassBasic, uint64(len(body)), p); err != nil {
			t.Fatal(err)
		}
		out = AppendBodyFrames(out, 1, body, 4096)
		_ = AppendHeartbeat(out)
	})
	if allocs != 0 {
		t.Fatalf("writers allocate %v times per message", allocs)
	}
}

func TestAppendHeaderFrameGolden(t *testing.T) {
	out, err := AppendHeaderFrame(nil, 2, ClassBasic, 3, &mapping.Properties{DeliveryMode: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "\x02\x00\x02\x00\x00\x00\x0f" + "\x00\x3c\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x03" + "\x10\x00\x02" + "\xce"
	if string(out) != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
	if _, err := AppendHeaderFrame([]byte("k"), 1, ClassBasic, 0, &mapping.Properties{Type: strings.Repeat("t", 300)}); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("long type: %v", err)
	}
	if hb := AppendHeartbeat(nil); string(hb) != "\x08\x00\x00\x00\x00\x00\x00\xce" {
		t.Fatalf("heartbeat %q", hb)
	}
}

func TestParseContentHeader(t *testing.T) {
	ts := time.Unix(1700000000, 0).UTC()
	p := mapping.Properties{ContentType: "a", Timestamp: ts, Headers: mapping.Table{"x": "y"}, Priority: 4}
	frame, err := AppendHeaderFrame(nil, 1, ClassBasic, 1<<63, &p)
	if err != nil {
		t.Fatal(err)
	}
	payload := frame[7 : len(frame)-1]
	cls, size, got, err := ParseContentHeader(payload)
	if err != nil || cls != ClassBasic || size != 1<<63 || got.ContentType != "a" || !got.Timestamp.Equal(ts) ||
		got.Headers["x"] != "y" || got.Priority != 4 {
		t.Fatalf("%d %d %+v %v", cls, size, got, err)
	}
	bad := map[string][]byte{
		"short":          payload[:13],
		"weight":         append([]byte{0, 60, 0, 1}, payload[4:]...),
		"trailing":       append(append([]byte{}, payload...), 0),
		"continuation":   append(append([]byte{}, payload[:12]...), 0, 1),
		"truncated prop": payload[:len(payload)-1],
	}
	for name, in := range bad {
		if _, _, _, err := ParseContentHeader(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestReadProtocolHeader(t *testing.T) {
	if err := NewReader(bytes.NewReader(ProtocolHeader), 0).ReadProtocolHeader(); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"AMQP\x01\x01\x00\x09", "GET / HTTP/1.1\r\n", "AMQP\x00\x00\x09\x02"} {
		if err := NewReader(strings.NewReader(in), 0).ReadProtocolHeader(); !errors.Is(err, ErrProtocolHeader) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
	if err := NewReader(strings.NewReader("AMQP"), 0).ReadProtocolHeader(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: err = %v", err)
	}
}

func BenchmarkReadPublish(b *testing.B) {
	var stream []byte
	stream, _ = AppendMethodFrame(stream, 1, &BasicPublish{Exchange: "amq.direct", RoutingKey: "orders"})
	stream, _ = AppendHeaderFrame(stream, 1, ClassBasic, 100, &mapping.Properties{ContentType: "application/json", DeliveryMode: 2})
	stream = AppendBodyFrames(stream, 1, make([]byte, 100), 131072)
	rd := bytes.NewReader(stream)
	r := NewReader(rd, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		rd.Reset(stream)
		f, _ := r.ReadFrame()
		if _, err := ReadMethod(f.Payload); err != nil {
			b.Fatal(err)
		}
		f, _ = r.ReadFrame()
		if _, _, _, err := ParseContentHeader(f.Payload); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDelivery(b *testing.B) {
	buf := make([]byte, 0, 4096)
	m := &BasicDeliver{ConsumerTag: "ctag-1", DeliveryTag: 1, Exchange: "amq.direct", RoutingKey: "orders"}
	p := &mapping.Properties{ContentType: "application/json", DeliveryMode: 2}
	body := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		out, _ := AppendMethodFrame(buf[:0], 1, m)
		out, _ = AppendHeaderFrame(out, 1, ClassBasic, uint64(len(body)), p)
		buf = AppendBodyFrames(out, 1, body, 131072)
	}
}
