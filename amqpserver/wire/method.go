package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Method is one AMQP method with its arguments. Every method of the
// specification has a generated struct implementing it (ConnectionStart,
// BasicPublish, ...); use them as pointers.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	// Name is the specification's name, such as "basic.publish".
	Name() string
	// HasContent reports whether a content header and body follow.
	HasContent() bool
	// Synchronous reports whether the peer waits for a reply method.
	Synchronous() bool
	// Append appends the method payload (class id, method id, arguments)
	// to dst. On error the returned slice may hold part of the method;
	// callers truncate it (AppendMethodFrame does).
	Append(dst []byte) ([]byte, error)
	read(b []byte) error
}

// ReadMethod parses the payload of a method frame. An unknown class or method
// id gives an error wrapping ErrNotImplemented; a truncated or malformed
// payload, one wrapping ErrSyntax.
func ReadMethod(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, fmt.Errorf("%w: method frame of %d bytes has no class and method id", ErrSyntax, len(payload))
	}
	classID := binary.BigEndian.Uint16(payload)
	methodID := binary.BigEndian.Uint16(payload[2:])
	m := newMethod(classID, methodID)
	if m == nil {
		return nil, fmt.Errorf("%w: class %d method %d", ErrNotImplemented, classID, methodID)
	}
	if err := m.read(payload[4:]); err != nil {
		return nil, err
	}
	return m, nil
}

// MethodName returns the specification name of a class and method id, such
// as "basic.publish", or "class.method" numbers if the spec has none.
func MethodName(classID, methodID uint16) string {
	if m := newMethod(classID, methodID); m != nil {
		return m.Name()
	}
	return fmt.Sprintf("%d.%d", classID, methodID)
}

func appendShortstr(dst []byte, s string) ([]byte, error) {
	if len(s) > math.MaxUint8 {
		return dst, fmt.Errorf("%w: shortstr %.32q... is %d bytes, the limit is 255", ErrUnencodable, s, len(s))
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...), nil
}

func appendLongstr(dst []byte, s string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return dst, fmt.Errorf("%w: longstr of %d bytes", ErrUnencodable, len(s))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...), nil
}

// decoder reads method arguments from b. The first short read records an
// error and makes every later read return zero, so generated code reads all
// fields and checks once, in finish.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) short(n int, what string) bool {
	if d.err != nil {
		return true
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%s needs %d bytes, %d remain", what, n, len(d.b))
		return true
	}
	return false
}

func (d *decoder) u8() uint8 {
	if d.short(1, "octet") {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16() uint16 {
	if d.short(2, "short") {
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.short(4, "long") {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.short(8, "longlong") {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) timestamp() time.Time {
	if d.short(8, "timestamp") {
		return time.Time{}
	}
	return time.Unix(int64(d.u64()), 0).UTC()
}

func (d *decoder) shortstr() string {
	if d.short(1, "shortstr length") {
		return ""
	}
	n := int(d.b[0])
	if d.short(1+n, "shortstr") {
		return ""
	}
	s := string(d.b[1 : 1+n])
	d.b = d.b[1+n:]
	return s
}

func (d *decoder) longstr() string {
	if d.short(4, "longstr length") {
		return ""
	}
	n := uint64(binary.BigEndian.Uint32(d.b))
	if uint64(len(d.b)-4) < n {
		d.err = fmt.Errorf("longstr of %d bytes, %d remain", n, len(d.b)-4)
		return ""
	}
	s := string(d.b[4 : 4+n])
	d.b = d.b[4+n:]
	return s
}

func (d *decoder) table() mapping.Table {
	if d.err != nil {
		return nil
	}
	t, n, err := mapping.ReadTable(d.b)
	if err != nil {
		d.err = err
		return nil
	}
	d.b = d.b[n:]
	return t
}

// finish reports the first decoding error, or bytes left after the last
// argument, as an ErrSyntax naming the method.
func (d *decoder) finish(method string) error {
	if d.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSyntax, method, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %s: %d bytes after the last argument", ErrSyntax, method, len(d.b))
	}
	return nil
}

func appendTable(dst []byte, t mapping.Table) ([]byte, error) {
	out, err := mapping.AppendTable(dst, t)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrUnencodable, err)
	}
	return out, nil
}
