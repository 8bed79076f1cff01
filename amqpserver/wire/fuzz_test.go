package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// chunkReader returns its input in pieces of the given sizes, cycling, so a
// parser sees frames split at every boundary (after nats-server's FuzzParser,
// which feeds each input in two halves).
type chunkReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), r.sizes[r.i%len(r.sizes)])
	r.i++
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func fuzzSeeds() [][]byte {
	hdr := func(typ byte, ch uint16, size uint32) []byte {
		return []byte{typ, byte(ch >> 8), byte(ch), byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}
	}
	pub, _ := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "ex", RoutingKey: "rk"})
	head, _ := AppendHeaderFrame(nil, 1, ClassBasic, 1<<63, &mapping.Properties{ContentType: "t", Headers: mapping.Table{"a": []any{int32(1)}}})
	start, _ := AppendMethodFrame(nil, 0, &ConnectionStartOk{ClientProperties: mapping.Table{"p": "x"}, Mechanism: "PLAIN", Response: "\x00g\x00g", Locale: "en_US"})
	return [][]byte{
		{},
		ProtocolHeader,
		AppendHeartbeat(nil),
		append(hdr(FrameHeartbeat, 5, 0), FrameEnd),
		append(hdr(FrameBody, 1, 0xFFFFFFFF), 1, 2, 3),
		append(hdr(FrameBody, 1, 0x80000000), 1, 2, 3),
		append(hdr(FrameBody, 1, 2), 'a', 'b', 0xCD),
		append(hdr(FrameMethod, 1, 4), 0, 60, 0, 40, FrameEnd),
		append(append(pub, head...), AppendFrame(nil, FrameBody, 1, []byte("body"))...),
		start,
		AppendFrame(nil, FrameMethod, 1, []byte("\x00\x3c\x00\x28\x00\x00\x02\xc3\x28\x02rk\x00")), // invalid UTF-8 exchange
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		// Reference: the whole input at once.
		var want []Frame
		var wantErr error
		r := NewReader(bytes.NewReader(in), 0)
		r.SetMaxFrameSize(FrameMinSize)
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				wantErr = err
				break
			}
			if len(fr.Payload)+FrameOverhead > FrameMinSize {
				t.Fatalf("frame of %d bytes passed frame-max %d", len(fr.Payload)+FrameOverhead, FrameMinSize)
			}
			want = append(want, fr)
		}
		// The same input in two halves, then in small chunks, reads the same.
		half := len(in) / 2
		if len(in) > 0 {
			half = int(split) % len(in)
		}
		for _, sizes := range [][]int{{max(half, 1), len(in)}, {1, 2, 3, int(split)%7 + 1}} {
			r := NewReader(&chunkReader{b: in, sizes: sizes}, 16)
			r.SetMaxFrameSize(FrameMinSize)
			for i := 0; ; i++ {
				fr, err := r.ReadFrame()
				if err != nil {
					if i != len(want) || !sameErr(err, wantErr) {
						t.Fatalf("chunks %v: error %v after %d frames, want %v after %d", sizes, err, i, wantErr, len(want))
					}
					break
				}
				if i >= len(want) || !reflect.DeepEqual(fr, want[i]) {
					t.Fatalf("chunks %v: frame %d differs", sizes, i)
				}
			}
		}
		// Whatever frames were read go through the method and header
		// parsers without panicking, and re-encode to the same frames.
		for _, fr := range want {
			switch fr.Type {
			case FrameMethod:
				_, _ = ReadMethod(fr.Payload)
			case FrameHeader:
				_, _, _, _ = ParseContentHeader(fr.Payload)
			}
			out := AppendFrame(nil, fr.Type, fr.Channel, fr.Payload)
			back, err := NewReader(bytes.NewReader(out), 0).ReadFrame()
			if err != nil || !reflect.DeepEqual(back, fr) {
				t.Fatalf("re-encoded frame: %+v, %v", back, err)
			}
		}
	})
}

// sameErr compares errors from two reads of the same stream: same sentinel.
func sameErr(a, b error) bool {
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, ErrFrameTooLarge, ErrBadFrameEnd, ErrUnknownFrameType} {
		if errors.Is(a, e) != errors.Is(b, e) {
			return false
		}
	}
	return true
}

func FuzzReadMethod(f *testing.F) {
	for _, s := range fuzzSeeds() {
		if len(s) > 8 && s[0] == FrameMethod {
			f.Add(s[7 : len(s)-1])
		}
	}
	for _, m := range allMethods() {
		fill(m, 1, 0x55)
		b, err := m.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// connection.start-ok whose client properties nest 100 tables deep.
	deep := []byte{0, 10, 0, 11}
	deep = append(deep, nestedTableBytes(100)...)
	f.Add(append(deep, "\x05PLAIN\x00\x00\x00\x00\x00"...))
	f.Add([]byte("\x00\x0a\x00\x15\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMethod(in)
		if err != nil {
			if _, ok := ReplyCodeFor(err); !ok {
				t.Fatalf("error without a reply code: %v", err)
			}
			return
		}
		enc, err := m.Append(nil)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", m.Name(), err)
		}
		m2, err := ReadMethod(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded %s: %v", m.Name(), err)
		}
		// %#v prints maps sorted and NaN as NaN, where DeepEqual fails.
		if a, b := fmt.Sprintf("%#v", m), fmt.Sprintf("%#v", m2); a != b {
			t.Fatalf("unstable %s: %+v != %+v", m.Name(), m, m2)
		}
	})
}

func nestedTableBytes(depth int) []byte {
	out := make([]byte, 0, 7*depth)
	for d := depth; d >= 1; d-- {
		n := uint32(7*d - 7)
		out = append(out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		if d > 1 {
			out = append(out, 1, 'n', 'F')
		}
	}
	return out
}

func FuzzParseContentHeader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		if len(s) > 8 && s[0] == FrameHeader {
			f.Add(s[7 : len(s)-1])
		}
	}
	f.Add([]byte("\x00\x3c\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x3c\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff"))
	f.Add([]byte("\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x00\x02\xc3\x28"))
	f.Add(append([]byte("\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00"), nestedTableBytes(100)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		cls, size, p, err := ParseContentHeader(in)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		out, err := AppendHeaderFrame(nil, 1, cls, size, &p)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		cls2, size2, p2, err := ParseContentHeader(out[7 : len(out)-1])
		if err != nil || cls2 != cls || size2 != size || p2.Flags != p.Flags {
			t.Fatalf("unstable: %d %d %+v %v", cls2, size2, p2, err)
		}
		if p.Headers == nil && !bytes.Equal(out[7:len(out)-1], in) {
			t.Fatalf("re-encoded %x, read %x", out[7:len(out)-1], in)
		}
	})
}
