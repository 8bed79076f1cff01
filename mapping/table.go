package mapping

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxTableDepth is how deeply field tables and arrays may nest, counting the
// outermost table as 1. Deeper input is rejected before it is descended into,
// so hostile input cannot exhaust the stack.
const MaxTableDepth = 64

// ErrMalformed reports a field table, array or property list whose bytes do
// not parse: a length running past the input, an unknown type letter,
// nesting beyond MaxTableDepth. Errors returned by ReadTable, ReadArray and
// ReadProperties wrap it (errors.Is).
var ErrMalformed = errors.New("malformed field data")

// ErrUnencodable reports a value that has no AMQP wire form: an unsupported
// Go type, a key longer than 255 bytes, a string longer than its length
// prefix allows. Errors returned by the Append functions wrap it.
var ErrUnencodable = errors.New("value cannot be encoded")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func unencodable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnencodable}, args...)...)
}

// AppendTable appends t as a length-prefixed AMQP field table. A nil table
// is written as an empty one. Entry order follows map iteration order, so
// the bytes are not deterministic, but ReadTable gives back an equal Table.
//
// Besides the canonical types listed on Table it accepts, for convenience:
// int, int64-sized uint/uint64 values (written as 'l'), map[string]any
// ('F'), and []Table, []map[string]any, []string (written as 'A').
func AppendTable(dst []byte, t Table) ([]byte, error) {
	return appendTable(dst, t, 1)
}

func appendTable(dst []byte, t Table, depth int) ([]byte, error) {
	if depth > MaxTableDepth {
		return dst, unencodable("tables nested deeper than %d", MaxTableDepth)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for k, v := range t {
		if len(k) > math.MaxUint8 {
			return dst[:start], unencodable("table key %.32q... is %d bytes, the limit is 255", k, len(k))
		}
		dst = append(dst, byte(len(k)))
		dst = append(dst, k...)
		var err error
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst[:start], fmt.Errorf("table key %q: %w", k, err)
		}
	}
	return patchLen(dst, start)
}

// AppendArray appends a as a length-prefixed AMQP field array (the body of
// an 'A' value). A nil array is written as an empty one.
func AppendArray(dst []byte, a []any) ([]byte, error) {
	return appendArray(dst, a, 1)
}

func appendArray(dst []byte, a []any, depth int) ([]byte, error) {
	if depth > MaxTableDepth {
		return dst, unencodable("arrays nested deeper than %d", MaxTableDepth)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i, v := range a {
		var err error
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst[:start], fmt.Errorf("array element %d: %w", i, err)
		}
	}
	return patchLen(dst, start)
}

// appendSlice writes any slice of values that AppendArray would accept
// element by element, without converting it to []any first.
func appendSlice[E any](dst []byte, a []E, depth int) ([]byte, error) {
	if depth > MaxTableDepth {
		return dst, unencodable("arrays nested deeper than %d", MaxTableDepth)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i := range a {
		var err error
		if dst, err = appendValue(dst, a[i], depth); err != nil {
			return dst[:start], fmt.Errorf("array element %d: %w", i, err)
		}
	}
	return patchLen(dst, start)
}

// patchLen writes the length of dst[start+4:] into dst[start:start+4].
func patchLen(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - 4
	if uint64(n) > math.MaxUint32 {
		return dst[:start], unencodable("%d bytes do not fit a 32-bit length", n)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// appendValue appends the type letter and the value; depth is the depth of
// the table or array that holds v.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, 'V'), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, 't', b), nil
	case int8:
		return append(dst, 'b', byte(v)), nil
	case uint8:
		return append(dst, 'B', v), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(dst, 's'), uint16(v)), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(dst, 'u'), v), nil
	case int32:
		return binary.BigEndian.AppendUint32(append(dst, 'I'), uint32(v)), nil
	case uint32:
		return binary.BigEndian.AppendUint32(append(dst, 'i'), v), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(dst, 'l'), uint64(v)), nil
	case int:
		return binary.BigEndian.AppendUint64(append(dst, 'l'), uint64(v)), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return dst, unencodable("uint %d does not fit int64", v)
		}
		return binary.BigEndian.AppendUint64(append(dst, 'l'), uint64(v)), nil
	case uint64:
		if v > math.MaxInt64 {
			return dst, unencodable("uint64 %d does not fit int64", v)
		}
		return binary.BigEndian.AppendUint64(append(dst, 'l'), v), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(dst, 'f'), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, 'd'), math.Float64bits(v)), nil
	case Decimal:
		return binary.BigEndian.AppendUint32(append(dst, 'D', v.Scale), uint32(v.Value)), nil
	case string:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, unencodable("string of %d bytes", len(v))
		}
		dst = binary.BigEndian.AppendUint32(append(dst, 'S'), uint32(len(v)))
		return append(dst, v...), nil
	case []byte:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, unencodable("byte array of %d bytes", len(v))
		}
		dst = binary.BigEndian.AppendUint32(append(dst, 'x'), uint32(len(v)))
		return append(dst, v...), nil
	case time.Time:
		return binary.BigEndian.AppendUint64(append(dst, 'T'), uint64(v.Unix())), nil
	case Table:
		return appendTable(append(dst, 'F'), v, depth+1)
	case map[string]any:
		return appendTable(append(dst, 'F'), v, depth+1)
	case []any:
		return appendArray(append(dst, 'A'), v, depth+1)
	case []Table:
		return appendSlice(append(dst, 'A'), v, depth+1)
	case []map[string]any:
		return appendSlice(append(dst, 'A'), v, depth+1)
	case []string:
		return appendSlice(append(dst, 'A'), v, depth+1)
	default:
		return dst, unencodable("unsupported type %T", v)
	}
}

// ReadTable parses a length-prefixed field table at the start of src and
// returns it with the number of bytes consumed. An empty table decodes to an
// empty, non-nil Table. Strings and byte arrays are copied: the result does
// not alias src.
func ReadTable(src []byte) (Table, int, error) {
	return readTable(src, 1)
}

func readTable(src []byte, depth int) (Table, int, error) {
	body, n, err := readBlock(src, "table")
	if err != nil {
		return nil, 0, err
	}
	if depth > MaxTableDepth {
		return nil, 0, malformed("field tables nested deeper than %d", MaxTableDepth)
	}
	// Every entry takes at least 2 bytes (empty key, then 'V'), which bounds
	// the size hint by the input.
	t := make(Table, min(len(body)/2, 8))
	for len(body) > 0 {
		klen := int(body[0])
		if 1+klen > len(body) {
			return nil, 0, malformed("table key of %d bytes runs past the table", klen)
		}
		key := string(body[1 : 1+klen])
		body = body[1+klen:]
		v, m, err := readValue(body, depth)
		if err != nil {
			return nil, 0, fmt.Errorf("table key %q: %w", key, err)
		}
		t[key] = v
		body = body[m:]
	}
	return t, n, nil
}

// ReadArray parses a length-prefixed field array (the body of an 'A' value)
// at the start of src and returns it with the number of bytes consumed. An
// empty array decodes to an empty, non-nil slice.
func ReadArray(src []byte) ([]any, int, error) {
	return readArray(src, 1)
}

func readArray(src []byte, depth int) ([]any, int, error) {
	body, n, err := readBlock(src, "array")
	if err != nil {
		return nil, 0, err
	}
	if depth > MaxTableDepth {
		return nil, 0, malformed("field arrays nested deeper than %d", MaxTableDepth)
	}
	a := make([]any, 0, min(len(body), 8))
	for len(body) > 0 {
		v, m, err := readValue(body, depth)
		if err != nil {
			return nil, 0, fmt.Errorf("array element %d: %w", len(a), err)
		}
		a = append(a, v)
		body = body[m:]
	}
	return a, n, nil
}

// readBlock splits a 32-bit length prefix and the bytes it covers off src.
func readBlock(src []byte, what string) (body []byte, n int, err error) {
	if len(src) < 4 {
		return nil, 0, malformed("%s length needs 4 bytes, have %d", what, len(src))
	}
	size := uint64(binary.BigEndian.Uint32(src))
	if size > uint64(len(src)-4) {
		return nil, 0, malformed("%s of %d bytes, only %d remain", what, size, len(src)-4)
	}
	return src[4 : 4+size], 4 + int(size), nil
}

// valueSize is the fixed size of each fixed-width type, after the letter.
var valueSize = [256]int8{
	't': 1, 'b': 1, 'B': 1, 's': 2, 'u': 2, 'I': 4, 'i': 4, 'l': 8,
	'f': 4, 'd': 8, 'D': 5, 'T': 8, 'V': 0,
	'S': -1, 'x': -1, 'F': -1, 'A': -1,
}

// readValue parses one type letter and value from the start of src; depth is
// the depth of the table or array holding it.
func readValue(src []byte, depth int) (any, int, error) {
	if len(src) == 0 {
		return nil, 0, malformed("missing value type")
	}
	typ := src[0]
	b := src[1:]
	if sz := valueSize[typ]; sz > 0 && len(b) < int(sz) {
		return nil, 0, malformed("value of type %q needs %d bytes, have %d", typ, sz, len(b))
	}
	switch typ {
	case 'V':
		return nil, 1, nil
	case 't':
		return b[0] != 0, 2, nil
	case 'b':
		return int8(b[0]), 2, nil
	case 'B':
		return b[0], 2, nil
	case 's':
		return int16(binary.BigEndian.Uint16(b)), 3, nil
	case 'u':
		return binary.BigEndian.Uint16(b), 3, nil
	case 'I':
		return int32(binary.BigEndian.Uint32(b)), 5, nil
	case 'i':
		return binary.BigEndian.Uint32(b), 5, nil
	case 'l':
		return int64(binary.BigEndian.Uint64(b)), 9, nil
	case 'f':
		return math.Float32frombits(binary.BigEndian.Uint32(b)), 5, nil
	case 'd':
		return math.Float64frombits(binary.BigEndian.Uint64(b)), 9, nil
	case 'D':
		return Decimal{Scale: b[0], Value: int32(binary.BigEndian.Uint32(b[1:]))}, 6, nil
	case 'T':
		return time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC(), 9, nil
	case 'S':
		body, n, err := readBlock(b, "string")
		if err != nil {
			return nil, 0, err
		}
		return string(body), 1 + n, nil
	case 'x':
		body, n, err := readBlock(b, "byte array")
		if err != nil {
			return nil, 0, err
		}
		out := make([]byte, len(body))
		copy(out, body)
		return out, 1 + n, nil
	case 'F':
		t, n, err := readTable(b, depth+1)
		if err != nil {
			return nil, 0, err
		}
		return t, 1 + n, nil
	case 'A':
		a, n, err := readArray(b, depth+1)
		if err != nil {
			return nil, 0, err
		}
		return a, 1 + n, nil
	default:
		return nil, 0, malformed("unknown field type %q", typ)
	}
}
