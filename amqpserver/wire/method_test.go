package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// fill sets every field of the method struct m points to a distinct non-zero
// value; bools follow bitPattern (bit i of the pattern for the i-th bool).
func fill(m Method, seed int, bitPattern uint8) {
	v := reflect.ValueOf(m).Elem()
	nbool := 0
	for i := range v.NumField() {
		f := v.Field(i)
		n := seed*31 + i + 1
		switch f.Interface().(type) {
		case uint8:
			f.SetUint(uint64(0xA0 + n%0x50))
		case uint16:
			f.SetUint(uint64(0xA000 + n))
		case uint32:
			f.SetUint(uint64(0xA0000000 + n))
		case uint64:
			f.SetUint(0xA000000000000000 + uint64(n))
		case bool:
			f.SetBool(bitPattern&(1<<(nbool%8)) != 0)
			nbool++
		case string:
			f.SetString(fmt.Sprintf("%s-%d-\xff", v.Type().Field(i).Name, n))
		case mapping.Table:
			f.Set(reflect.ValueOf(mapping.Table{"k": "v", "n": int32(n), "nested": mapping.Table{"b": true}}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(int64(n)*1000, 0).UTC()))
		default:
			panic(fmt.Sprintf("%s.%s: unhandled type %s", m.Name(), v.Type().Field(i).Name, f.Type()))
		}
	}
}

func TestEveryMethodRoundTrip(t *testing.T) {
	all := allMethods()
	if len(all) != 64 {
		t.Fatalf("allMethods has %d methods, the spec has 64", len(all))
	}
	names := map[string]bool{}
	for i, proto := range all {
		for _, bits := range []uint8{0xff, 0x55, 0xaa, 0} {
			m := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(Method)
			fill(m, i, bits)
			t.Run(fmt.Sprintf("%s/%02x", m.Name(), bits), func(t *testing.T) {
				enc, err := m.Append(nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ReadMethod(enc)
				if err != nil {
					t.Fatalf("ReadMethod(%x): %v", enc, err)
				}
				if !reflect.DeepEqual(got, m) {
					t.Fatalf("got %+v, want %+v", got, m)
				}
				if got.ClassID() != m.ClassID() || got.MethodID() != m.MethodID() ||
					MethodName(m.ClassID(), m.MethodID()) != m.Name() {
					t.Fatalf("ids/name mismatch")
				}
				// Every truncation is a syntax error, and so is a trailing byte.
				for n := 4; n < len(enc); n++ {
					if _, err := ReadMethod(enc[:n]); !errors.Is(err, ErrSyntax) {
						t.Fatalf("truncated to %d of %d: err = %v", n, len(enc), err)
					}
				}
				if _, err := ReadMethod(append(enc, 0)); !errors.Is(err, ErrSyntax) {
					t.Fatalf("trailing byte: err = %v", err)
				}
				// And through a frame.
				frame, err := AppendMethodFrame([]byte("x"), 7, m)
				if err != nil {
					t.Fatal(err)
				}
				f, err := NewReader(bytes.NewReader(frame[1:]), 0).ReadFrame()
				if err != nil || f.Type != FrameMethod || f.Channel != 7 {
					t.Fatalf("frame: %+v, %v", f, err)
				}
				if back, err := ReadMethod(f.Payload); err != nil || !reflect.DeepEqual(back, m) {
					t.Fatalf("method from frame: %+v, %v", back, err)
				}
			})
		}
		names[proto.Name()] = true
	}
	for _, want := range []string{"connection.start", "connection.update-secret-ok", "basic.publish",
		"queue.declare-ok", "exchange.bind", "confirm.select", "tx.commit-ok", "basic.nack"} {
		if !names[want] {
			t.Errorf("method %s not generated", want)
		}
	}
}

func TestMethodProperties(t *testing.T) {
	for _, m := range allMethods() {
		content := m.Name() == "basic.publish" || m.Name() == "basic.return" ||
			m.Name() == "basic.deliver" || m.Name() == "basic.get-ok"
		if m.HasContent() != content {
			t.Errorf("%s: HasContent = %v", m.Name(), m.HasContent())
		}
	}
	if !(&QueueDeclare{}).Synchronous() || (&BasicPublish{}).Synchronous() {
		t.Errorf("Synchronous wrong")
	}
	if ClassBasic != 60 || ClassConfirm != 85 || ClassTx != 90 {
		t.Errorf("class ids wrong")
	}
}

func TestReplyCodes(t *testing.T) {
	want := map[uint16]bool{
		ReplySuccess: false, ContentTooLarge: false, NoRoute: false, NoConsumers: false,
		ConnectionForced: true, InvalidPath: true, AccessRefused: false, NotFound: false,
		ResourceLocked: false, PreconditionFailed: false, FrameError: true, SyntaxError: true,
		CommandInvalid: true, ChannelError: true, UnexpectedFrame: true, ResourceError: true,
		NotAllowed: true, NotImplemented: true, InternalError: true,
	}
	for code, hard := range want {
		if IsHardError(code) != hard {
			t.Errorf("IsHardError(%d) = %v", code, !hard)
		}
		if ReplyCodeName(code) == "" {
			t.Errorf("ReplyCodeName(%d) empty", code)
		}
	}
	if NotFound != 404 || PreconditionFailed != 406 || NotImplemented != 540 || ReplyCodeName(404) != "NOT_FOUND" {
		t.Errorf("constants wrong")
	}
	for err, code := range map[error]uint16{
		fmt.Errorf("x: %w", ErrFrameTooLarge): FrameError,
		ErrBadFrameEnd:                        FrameError,
		fmt.Errorf("y: %w", ErrSyntax):        SyntaxError,
		ErrNotImplemented:                     NotImplemented,
	} {
		if got, ok := ReplyCodeFor(err); !ok || got != code {
			t.Errorf("ReplyCodeFor(%v) = %d, %v", err, got, ok)
		}
	}
	if _, ok := ReplyCodeFor(errors.New("io")); ok {
		t.Errorf("ReplyCodeFor(other) = ok")
	}
}

func TestReadMethodErrors(t *testing.T) {
	cases := map[string]struct {
		in   string
		want error
	}{
		"empty":              {"", ErrSyntax},
		"short id":           {"\x00\x3c\x00", ErrSyntax},
		"unknown class":      {"\x00\x63\x00\x0a", ErrNotImplemented},
		"unknown method":     {"\x00\x3c\x00\x63", ErrNotImplemented},
		"bad table":          {"\x00\x0a\x00\x0b\xff\xff\xff\xff", ErrSyntax},
		"table unknown type": {"\x00\x0a\x00\x0b\x00\x00\x00\x03\x01kZ\x05PLAIN\x00\x00\x00\x00\x00", ErrSyntax},
		"longstr huge":       {"\x00\x0a\x00\x15\xff\xff\xff\xf0", ErrSyntax},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadMethod([]byte(c.in)); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestAppendMethodErrors(t *testing.T) {
	dst := []byte("keep")
	out, err := AppendMethodFrame(dst, 1, &BasicPublish{Exchange: strings.Repeat("e", 256)})
	if !errors.Is(err, ErrUnencodable) || string(out) != "keep" {
		t.Fatalf("long shortstr: %q, %v", out, err)
	}
	if !strings.Contains(err.Error(), "basic.publish") {
		t.Errorf("error does not name the method: %v", err)
	}
	out, err = AppendMethodFrame(dst, 1, &QueueDeclare{Arguments: mapping.Table{"bad": struct{}{}}})
	if !errors.Is(err, ErrUnencodable) || !errors.Is(err, mapping.ErrUnencodable) || string(out) != "keep" {
		t.Fatalf("bad table: %q, %v", out, err)
	}
	if _, err := (&BasicPublish{Exchange: strings.Repeat("e", 255)}).Append(nil); err != nil {
		t.Fatalf("255-byte shortstr: %v", err)
	}
}

// Golden payloads computed by hand from the specification.
func TestMethodGolden(t *testing.T) {
	cases := []struct {
		m    Method
		want string
	}{
		{&ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60},
			"\x00\x0a\x00\x1e\x07\xff\x00\x02\x00\x00\x00\x3c"},
		{&BasicPublish{Exchange: "ex", RoutingKey: "rk", Mandatory: true},
			"\x00\x3c\x00\x28\x00\x00\x02ex\x02rk\x01"},
		{&QueueDeclare{Queue: "q", Durable: true, AutoDelete: true, Arguments: mapping.Table{}},
			"\x00\x32\x00\x0a\x00\x00\x01q\x0a\x00\x00\x00\x00"},
		{&BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, Redelivered: true, Exchange: "", RoutingKey: "q"},
			"\x00\x3c\x00\x3c\x01c\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x01q"},
		{&ConnectionClose{ReplyCode: 404, ReplyText: "NOT_FOUND", FailingClassID: 50, FailingMethodID: 10},
			"\x00\x0a\x00\x32\x01\x94\x09NOT_FOUND\x00\x32\x00\x0a"},
		{&ConnectionStartOk{ClientProperties: mapping.Table{}, Mechanism: "PLAIN", Response: "\x00g\x00g", Locale: "en_US"},
			"\x00\x0a\x00\x0b\x00\x00\x00\x00\x05PLAIN\x00\x00\x00\x04\x00g\x00g\x05en_US"},
		{&ConfirmSelectOk{}, "\x00\x55\x00\x0b"},
	}
	for _, c := range cases {
		got, err := c.m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.m.Name(), got, c.want)
		}
		back, err := ReadMethod([]byte(c.want))
		if err != nil || !reflect.DeepEqual(back, c.m) {
			t.Errorf("%s: read back %+v, %v", c.m.Name(), back, err)
		}
	}
}
