package mapping

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// equalValues is reflect.DeepEqual except that floats compare by bits, so a
// NaN read back equals the NaN written.
func equalValues(a, b any) bool {
	switch a := a.(type) {
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case Table:
		b, ok := b.(Table)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !equalValues(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}

func roundTripTable(t *testing.T, in Table) Table {
	t.Helper()
	enc, err := AppendTable([]byte("prefix"), in)
	if err != nil {
		t.Fatalf("AppendTable(%v): %v", in, err)
	}
	if !bytes.HasPrefix(enc, []byte("prefix")) {
		t.Fatalf("AppendTable clobbered dst")
	}
	enc = append(enc[len("prefix"):], "trailing"...)
	out, n, err := ReadTable(enc)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	if n != len(enc)-len("trailing") {
		t.Fatalf("ReadTable consumed %d of %d bytes", n, len(enc)-len("trailing"))
	}
	return out
}

func TestTableRoundTripEveryType(t *testing.T) {
	ts := time.Date(2024, 2, 29, 12, 30, 45, 0, time.UTC)
	cases := map[string]any{
		"t true":  true,
		"t false": false,
		"b":       int8(-7),
		"B":       uint8(250),
		"s":       int16(-30000),
		"u":       uint16(60000),
		"I":       int32(math.MinInt32),
		"i":       uint32(math.MaxUint32),
		"l":       int64(math.MinInt64),
		"f":       float32(1.5),
		"f NaN":   float32(math.NaN()),
		"d":       math.Inf(-1),
		"D":       Decimal{Scale: 3, Value: -12345},
		"S":       "hello, wörld",
		"S empty": "",
		"x":       []byte{0, 1, 0xff},
		"x empty": []byte{},
		"T":       ts,
		"V":       nil,
		"F":       Table{"a": int32(1), "nested": Table{"deep": "yes"}},
		"F empty": Table{},
		"A":       []any{int32(1), "two", Table{"three": int64(3)}, []any{nil, true}},
		"A empty": []any{},
		"S long":  strings.Repeat("k", 1000),
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			in := Table{name: v}
			out := roundTripTable(t, in)
			if !equalValues(in, out) {
				t.Fatalf("round trip: got %#v, want %#v", out, in)
			}
		})
	}
	all := Table{}
	for k, v := range cases {
		all[k] = v
	}
	all[strings.Repeat("k", 255)] = "max key"
	if out := roundTripTable(t, all); !equalValues(all, out) {
		t.Fatalf("round trip of all: got %#v, want %#v", out, all)
	}
}

func TestTableConvenienceTypes(t *testing.T) {
	in := Table{
		"int":     42,
		"uint":    uint(7),
		"uint64":  uint64(math.MaxInt64),
		"map":     map[string]any{"k": "v"},
		"tables":  []Table{{"a": true}, {}},
		"maps":    []map[string]any{{"b": int8(1)}},
		"strings": []string{"x", "y"},
	}
	want := Table{
		"int":     int64(42),
		"uint":    int64(7),
		"uint64":  int64(math.MaxInt64),
		"map":     Table{"k": "v"},
		"tables":  []any{Table{"a": true}, Table{}},
		"maps":    []any{Table{"b": int8(1)}},
		"strings": []any{"x", "y"},
	}
	if out := roundTripTable(t, in); !equalValues(want, out) {
		t.Fatalf("got %#v, want %#v", out, want)
	}
}

func TestTableEmptyAndNil(t *testing.T) {
	for _, in := range []Table{nil, {}} {
		enc, err := AppendTable(nil, in)
		if err != nil || !bytes.Equal(enc, []byte{0, 0, 0, 0}) {
			t.Fatalf("AppendTable(%#v) = %x, %v", in, enc, err)
		}
		out, n, err := ReadTable(enc)
		if err != nil || n != 4 || out == nil || len(out) != 0 {
			t.Fatalf("ReadTable = %#v, %d, %v; want empty non-nil", out, n, err)
		}
	}
	a, n, err := ReadArray([]byte{0, 0, 0, 0})
	if err != nil || n != 4 || a == nil || len(a) != 0 {
		t.Fatalf("ReadArray = %#v, %d, %v; want empty non-nil", a, n, err)
	}
}

// TestTableGolden checks exact bytes for single-entry tables, as RabbitMQ
// and amqp091-go write them.
func TestTableGolden(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{true, "t\x01"},
		{int8(-1), "b\xff"},
		{uint8(1), "B\x01"},
		{int16(-2), "s\xff\xfe"},
		{uint16(2), "u\x00\x02"},
		{int32(3), "I\x00\x00\x00\x03"},
		{uint32(4), "i\x00\x00\x00\x04"},
		{int64(5), "l\x00\x00\x00\x00\x00\x00\x00\x05"},
		{float32(1), "f\x3f\x80\x00\x00"},
		{float64(1), "d\x3f\xf0\x00\x00\x00\x00\x00\x00"},
		{Decimal{Scale: 2, Value: 314}, "D\x02\x00\x00\x01\x3a"},
		{"ab", "S\x00\x00\x00\x02ab"},
		{[]byte("ab"), "x\x00\x00\x00\x02ab"},
		{time.Unix(1, 0), "T\x00\x00\x00\x00\x00\x00\x00\x01"},
		{nil, "V"},
		{Table{}, "F\x00\x00\x00\x00"},
		{[]any{uint8(9)}, "A\x00\x00\x00\x02B\x09"},
	}
	for _, c := range cases {
		got, err := AppendTable(nil, Table{"k": c.v})
		if err != nil {
			t.Fatalf("%T: %v", c.v, err)
		}
		body := "\x01k" + c.want
		want := string([]byte{0, 0, 0, byte(len(body))}) + body
		if string(got) != want {
			t.Errorf("%T %v: got %q, want %q", c.v, c.v, got, want)
		}
	}
}

func TestAppendTableErrors(t *testing.T) {
	cyclic := Table{}
	cyclic["self"] = cyclic
	cases := map[string]Table{
		"unsupported type":     {"ch": make(chan int)},
		"nested unsupported":   {"outer": Table{"inner": struct{}{}}},
		"unsupported in array": {"arr": []any{1, complex(1, 2)}},
		"key too long":         {strings.Repeat("k", 256): 1},
		"uint64 overflow":      {"big": uint64(math.MaxInt64) + 1},
		"cyclic":               cyclic,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendTable(dst, in)
			if !errors.Is(err, ErrUnencodable) {
				t.Fatalf("err = %v, want ErrUnencodable", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst not restored on error: %q", out)
			}
		})
	}
	_, err := AppendTable(nil, Table{"badkey": make(chan int)})
	if err == nil || !strings.Contains(err.Error(), "badkey") || !strings.Contains(err.Error(), "chan int") {
		t.Fatalf("error should name key and type: %v", err)
	}
}

// nestedTables returns a table holding a table holding ... depth levels,
// each entry keyed "n". Level d (counting from the innermost, 1) is 7d-3
// bytes long, so the whole thing is written outside-in in one pass.
func nestedTables(depth int) []byte {
	out := make([]byte, 0, 7*depth)
	for d := depth; d >= 1; d-- {
		out = binary.BigEndian.AppendUint32(out, uint32(7*d-7))
		if d > 1 {
			out = append(out, 1, 'n', 'F')
		}
	}
	return out
}

func TestReadTableDepth(t *testing.T) {
	if _, _, err := ReadTable(nestedTables(MaxTableDepth)); err != nil {
		t.Fatalf("depth %d: %v", MaxTableDepth, err)
	}
	if _, _, err := ReadTable(nestedTables(MaxTableDepth + 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("depth %d: err = %v, want ErrMalformed", MaxTableDepth+1, err)
	}
	// 100,000 levels: rejected at level 65 without deep recursion.
	deep := nestedTables(100_000)
	start := time.Now()
	if _, _, err := ReadTable(deep); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deep: err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("deep table took %v", d)
	}
	// Arrays nested deeply: "A" inside "A" with no length budget problem.
	arr := []byte{0, 0, 0, 0}
	for range 100 {
		body := append([]byte{'A'}, arr...)
		arr = append([]byte{0, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	if _, _, err := ReadArray(arr); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deep array: err = %v", err)
	}
	// The encoder refuses to write what the decoder would refuse to read.
	tb := Table{}
	for range MaxTableDepth {
		tb = Table{"n": tb}
	}
	if _, err := AppendTable(nil, tb); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("encode depth %d: err = %v", MaxTableDepth+1, err)
	}
}

func TestReadTableErrors(t *testing.T) {
	cases := map[string]string{
		"empty":              "",
		"short length":       "\x00\x00\x00",
		"length past input":  "\x00\x00\x00\x05\x01k",
		"huge length":        "\xff\xff\xff\xff",
		"key past table":     "\x00\x00\x00\x02\x05k",
		"missing type":       "\x00\x00\x00\x02\x01k",
		"unknown type":       "\x00\x00\x00\x03\x01kZ",
		"spec shortstr s":    "\x00\x00\x00\x04\x01ks\x00",
		"short int32":        "\x00\x00\x00\x05\x01kI\x00\x00",
		"string past table":  "\x00\x00\x00\x07\x01kS\x00\x00\x00\x09",
		"string huge":        "\x00\x00\x00\x07\x01kS\xff\xff\xff\xff",
		"bytes past table":   "\x00\x00\x00\x07\x01kx\x00\x00\x00\x01",
		"nested past parent": "\x00\x00\x00\x07\x01kF\x00\x00\x00\x05",
		"array bad element":  "\x00\x00\x00\x08\x01kA\x00\x00\x00\x01?",
		"decimal short":      "\x00\x00\x00\x07\x01kD\x01\x00\x00\x00",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ReadTable([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	full := Properties{
		Flags: FlagContentType | FlagContentEncoding | FlagHeaders | FlagDeliveryMode |
			FlagPriority | FlagCorrelationID | FlagReplyTo | FlagExpiration | FlagMessageID |
			FlagTimestamp | FlagType | FlagUserID | FlagAppID | FlagClusterID,
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers:         Table{"x-retries": int32(3), "nested": Table{"a": []any{"b"}}},
		DeliveryMode:    2,
		Priority:        9,
		CorrelationID:   "corr",
		ReplyTo:         "amq.rabbitmq.reply-to",
		Expiration:      "60000",
		MessageID:       "m-1",
		Timestamp:       time.Unix(1700000000, 0).UTC(),
		Type:            "order.created",
		UserID:          "guest",
		AppID:           "warren",
		ClusterID:       "c1",
	}
	cases := map[string]Properties{
		"none":               {},
		"all":                full,
		"zero delivery mode": {Flags: FlagDeliveryMode},
		"empty content type": {Flags: FlagContentType},
		"empty headers":      {Flags: FlagHeaders, Headers: Table{}},
		"epoch timestamp":    {Flags: FlagTimestamp, Timestamp: time.Unix(0, 0).UTC()},
		"only priority":      {Flags: FlagPriority, Priority: 1},
		"only cluster id":    {Flags: FlagClusterID, ClusterID: "x"},
		"max shortstr":       {Flags: FlagMessageID, MessageID: strings.Repeat("m", 255)},
		"negative timestamp": {Flags: FlagTimestamp, Timestamp: time.Unix(-5, 0).UTC()},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			enc, err := AppendProperties(nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ReadProperties(enc)
			if err != nil {
				t.Fatalf("ReadProperties(%x): %v", enc, err)
			}
			if !equalProperties(in, out) {
				t.Fatalf("got %+v, want %+v", out, in)
			}
		})
	}
}

func equalProperties(a, b Properties) bool {
	ah, bh := a.Headers, b.Headers
	a.Headers, b.Headers = nil, nil
	at, bt := a.Timestamp, b.Timestamp
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b) && at.Equal(bt) && equalValues(ah, bh)
}

func TestPropertiesWithoutFlags(t *testing.T) {
	in := Properties{ContentType: "text/plain", DeliveryMode: 2, Headers: Table{"h": "v"}, Timestamp: time.Unix(10, 0)}
	enc, err := AppendProperties(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ReadProperties(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := FlagContentType | FlagDeliveryMode | FlagHeaders | FlagTimestamp
	if out.Flags != want || out.ContentType != "text/plain" || out.DeliveryMode != 2 ||
		out.Headers["h"] != "v" || out.Timestamp.Unix() != 10 || !out.Persistent() {
		t.Fatalf("got %+v", out)
	}
}

func TestPropertiesGolden(t *testing.T) {
	p := Properties{ContentType: "t", DeliveryMode: 2, Timestamp: time.Unix(0x0102, 0)}
	got, err := AppendProperties(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	want := "\x90\x40\x01t\x02\x00\x00\x00\x00\x00\x00\x01\x02"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPropertiesErrors(t *testing.T) {
	p := Properties{ReplyTo: strings.Repeat("r", 256)}
	if out, err := AppendProperties([]byte("keep"), &p); !errors.Is(err, ErrUnencodable) || string(out) != "keep" {
		t.Fatalf("long shortstr: %q, %v", out, err)
	}
	p = Properties{Headers: Table{"bad": func() {}}}
	if _, err := AppendProperties(nil, &p); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("bad header: %v", err)
	}
	cases := map[string]string{
		"empty":            "",
		"one byte":         "\x80",
		"continuation":     "\x00\x01",
		"unused bit 1":     "\x00\x02",
		"short string":     "\x80\x00\x05ab",
		"missing string":   "\x80\x00",
		"bad headers":      "\x20\x00\x00\x00\x00\x09",
		"missing octet":    "\x10\x00",
		"short timestamp":  "\x00\x40\x00\x00\x00",
		"trailing bytes":   "\x00\x00\x00",
		"last field short": "\x00\x04\x03ab",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadProperties([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, n, err := ReadPropertiesPrefix([]byte("\x00\x00rest")); err != nil || n != 2 {
		t.Fatalf("prefix: %d, %v", n, err)
	}
}

func TestCodecAllocations(t *testing.T) {
	p := Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "id", Timestamp: time.Unix(5, 0)}
	h := Table{"a": int32(1), "b": "str", "c": true}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		var err error
		if _, err = AppendProperties(buf[:0], &p); err != nil {
			t.Fatal(err)
		}
		if _, err = AppendTable(buf[:0], h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("encoding allocates %v times per run", n)
	}
}

func BenchmarkAppendProperties(b *testing.B) {
	p := Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "id",
		Headers: Table{"x-a": int32(1), "x-b": "two"}, Timestamp: time.Unix(5, 0)}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendProperties(buf[:0], &p)
	}
}

func BenchmarkReadProperties(b *testing.B) {
	p := Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "id",
		Headers: Table{"x-a": int32(1), "x-b": "two"}, Timestamp: time.Unix(5, 0)}
	enc, _ := AppendProperties(nil, &p)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadProperties(enc); err != nil {
			b.Fatal(err)
		}
	}
}
