package mapping

import (
	"bytes"
	"testing"
)

func FuzzReadTable(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0, 0, 0, 0},
		{0xff, 0xff, 0xff, 0xff},
		{0x80, 0, 0, 0},
		[]byte("\x00\x00\x00\x03\x01kZ"),
		[]byte("\x00\x00\x00\x07\x01kS\xff\xff\xff\xff"),
		[]byte("\x00\x00\x00\x07\x01kx\x7f\xff\xff\xff"),
		[]byte("\x00\x00\x00\x0b\x01kT\x7f\xff\xff\xff\xff\xff\xff\xff"),
		[]byte("\x00\x00\x00\x0b\x01kT\x80\x00\x00\x00\x00\x00\x00\x00"),
		[]byte("\x00\x00\x00\x07\x01kd\x7f\xf8\x00\x00"),
		[]byte("\x00\x00\x00\x06\x02\xff\xfeS\x00\x00"),
		nestedTables(MaxTableDepth),
		nestedTables(MaxTableDepth + 1),
		nestedTables(2000),
	} {
		f.Add(seed)
	}
	all, err := AppendTable(nil, Table{
		"t": true, "b": int8(-1), "B": uint8(1), "s": int16(-2), "u": uint16(2),
		"I": int32(3), "i": uint32(4), "l": int64(5), "f": float32(1), "d": float64(1),
		"D": Decimal{2, 314}, "S": "str", "x": []byte{1}, "V": nil,
		"F": Table{"a": []any{Table{}, []any{}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, in []byte) {
		t1, n, err := ReadTable(in)
		if err != nil {
			return
		}
		if n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		enc, err := AppendTable(nil, t1)
		if err != nil {
			t.Fatalf("re-encoding a decoded table: %v", err)
		}
		t2, n2, err := ReadTable(enc)
		if err != nil || n2 != len(enc) {
			t.Fatalf("decoding re-encoded table: %d of %d, %v", n2, len(enc), err)
		}
		if !equalValues(t1, t2) {
			t.Fatalf("unstable: %#v != %#v", t1, t2)
		}
	})
}

func FuzzReadProperties(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0, 0},
		{0, 1},
		{0xff, 0xff},
		{0xff, 0xfc},
		[]byte("\x80\x00\xffab"),
		[]byte("\x20\x00\xff\xff\xff\xff"),
		[]byte("\x00\x40\x80\x00\x00\x00\x00\x00\x00\x00"),
		[]byte("\x00\x40\x7f\xff\xff\xff\xff\xff\xff\xff"),
		[]byte("\x80\x00\x02\xc3\x28"), // invalid UTF-8 content type
		append([]byte{0x20, 0}, nestedTables(100)...),
	} {
		f.Add(seed)
	}
	full, err := AppendProperties(nil, &Properties{
		Flags: 0xfffc, ContentType: "a", Headers: Table{"h": []any{int32(1)}},
		DeliveryMode: 2, Priority: 3, ReplyTo: "r", MessageID: "m", AppID: "x",
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Fuzz(func(t *testing.T, in []byte) {
		p1, err := ReadProperties(in)
		if err != nil {
			return
		}
		enc, err := AppendProperties(nil, &p1)
		if err != nil {
			t.Fatalf("re-encoding decoded properties: %v", err)
		}
		if p1.Headers == nil && !bytes.Equal(enc, in) {
			// Without a table the encoding is canonical: same bytes back.
			t.Fatalf("re-encoded %x, read %x", enc, in)
		}
		p2, err := ReadProperties(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded properties: %v", err)
		}
		if !equalProperties(p1, p2) || p1.Flags != p2.Flags {
			t.Fatalf("unstable: %+v != %+v", p1, p2)
		}
	})
}
