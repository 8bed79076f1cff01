package mapping

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"
)

// Headers-exchange matching, following RabbitMQ's
// rabbit_exchange_type_headers.
//
// The binding argument "x-match" chooses the mode:
//
//	all        every binding argument must match (the default)
//	any        at least one binding argument must match
//	all-with-x like all, but arguments named "x-..." take part too
//	any-with-x like any, but arguments named "x-..." take part too
//
// "x-match" itself never takes part, and in the all and any modes neither
// does any other argument whose name starts with "x-". A binding argument
// with a void (nil) value matches a header of that name with any value;
// any other argument matches a header of that name with an equal value.
// So all with no remaining arguments matches every message, and any with
// none matches no message.
//
// Equality follows Erlang's == on RabbitMQ's decoded values, which is what
// RabbitMQ uses at the top level of the headers:
//
//   - numbers compare by numeric value across all integer and float types
//     (int8 1, uint32 1, int64 1 and float64 1.0 are equal);
//   - a timestamp is decoded by RabbitMQ as its integer seconds, so
//     time.Time compares as its Unix seconds, also with numbers;
//   - string and []byte are both Erlang binaries and compare by bytes;
//   - bool, Decimal (scale and value, so 1.0 ≠ 1.00) and void compare
//     with values of their own type only;
//   - nested tables and arrays compare strictly: RabbitMQ keeps the type
//     of each element there, so elements must have the same Go type and
//     equal values (tables compare as sets of keys, since Table is
//     unordered).
//
// A float NaN equals nothing, not even itself (Erlang has no NaN).

// xMatch is a parsed "x-match" mode.
type xMatch int

const (
	xMatchAll xMatch = iota
	xMatchAny
	xMatchAllWithX
	xMatchAnyWithX
)

// parseXMatch returns the mode of a binding. Like RabbitMQ, a missing or
// invalid value means all (invalid values are refused at bind time by
// validXMatch).
func parseXMatch(bindArgs Table) xMatch {
	s, _ := bindArgs["x-match"].(string)
	switch s {
	case "any":
		return xMatchAny
	case "all-with-x":
		return xMatchAllWithX
	case "any-with-x":
		return xMatchAnyWithX
	}
	return xMatchAll
}

// validXMatch checks the "x-match" binding argument of a headers-exchange
// binding: it must be absent or one of the strings all, any, all-with-x,
// any-with-x.
func validXMatch(bindArgs Table) error {
	v, ok := bindArgs["x-match"]
	if !ok {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("invalid x-match field type %s (value %v); expected longstr", amqpTypeName(v), v)
	}
	switch s {
	case "all", "any", "all-with-x", "any-with-x":
		return nil
	}
	return fmt.Errorf("invalid x-match field value %q; expected all, any, all-with-x, or any-with-x", s)
}

// amqpTypeName returns RabbitMQ's name for the field type of v.
func amqpTypeName(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case int8:
		return "byte"
	case uint8:
		return "unsignedbyte"
	case int16:
		return "short"
	case uint16:
		return "unsignedshort"
	case int32:
		return "signedint"
	case uint32:
		return "unsignedint"
	case int64, int:
		return "long"
	case float32:
		return "float"
	case float64:
		return "double"
	case Decimal:
		return "decimal"
	case string:
		return "longstr"
	case []byte:
		return "binary"
	case time.Time:
		return "timestamp"
	case Table:
		return "table"
	case []any:
		return "array"
	case nil:
		return "void"
	}
	return fmt.Sprintf("%T", v)
}

// headersMatch reports whether a message with the given headers matches a
// headers-exchange binding with the given arguments.
func headersMatch(bindArgs Table, headers Table) bool {
	mode := parseXMatch(bindArgs)
	withX := mode == xMatchAllWithX || mode == xMatchAnyWithX
	all := mode == xMatchAll || mode == xMatchAllWithX
	for k, want := range bindArgs {
		if k == "x-match" || !withX && strings.HasPrefix(k, "x-") {
			continue
		}
		got, present := headers[k]
		ok := present && (want == nil || headerValueEqual(want, got))
		if all && !ok {
			return false
		}
		if !all && ok {
			return true
		}
	}
	return all
}

// headerValueEqual compares two top-level header values as RabbitMQ does
// (see the comment at the top of this file).
func headerValueEqual(a, b any) bool {
	if x, ok := headerNumber(a); ok {
		y, ok := headerNumber(b)
		return ok && x.equal(y)
	}
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case []byte:
			return x == string(y) // no allocation
		}
		return false
	case []byte:
		switch y := b.(type) {
		case string:
			return string(x) == y
		case []byte:
			return bytes.Equal(x, y)
		}
		return false
	}
	return fieldValueEqual(a, b)
}

// fieldValueEqual compares two field values strictly: same Go type and
// equal value, recursively.
func fieldValueEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int8:
		y, ok := b.(int8)
		return ok && x == y
	case uint8:
		y, ok := b.(uint8)
		return ok && x == y
	case int16:
		y, ok := b.(int16)
		return ok && x == y
	case uint16:
		y, ok := b.(uint16)
		return ok && x == y
	case int32:
		y, ok := b.(int32)
		return ok && x == y
	case uint32:
		y, ok := b.(uint32)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case float32:
		y, ok := b.(float32)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case Decimal:
		y, ok := b.(Decimal)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		// The wire carries whole seconds.
		y, ok := b.(time.Time)
		return ok && x.Unix() == y.Unix()
	case Table:
		y, ok := b.(Table)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !fieldValueEqual(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !fieldValueEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// headerNum is a number as Erlang sees it: an integer or a float.
type headerNum struct {
	isFloat bool
	i       int64
	f       float64
}

// headerNumber returns v as a number if it is one at the top level of a
// header table (timestamps included).
func headerNumber(v any) (headerNum, bool) {
	switch x := v.(type) {
	case int8:
		return headerNum{i: int64(x)}, true
	case uint8:
		return headerNum{i: int64(x)}, true
	case int16:
		return headerNum{i: int64(x)}, true
	case uint16:
		return headerNum{i: int64(x)}, true
	case int32:
		return headerNum{i: int64(x)}, true
	case uint32:
		return headerNum{i: int64(x)}, true
	case int64:
		return headerNum{i: x}, true
	case time.Time:
		return headerNum{i: x.Unix()}, true
	case float32:
		return headerNum{isFloat: true, f: float64(x)}, true
	case float64:
		return headerNum{isFloat: true, f: x}, true
	}
	return headerNum{}, false
}

// equal compares two numbers exactly (no rounding of large integers).
func (x headerNum) equal(y headerNum) bool {
	switch {
	case !x.isFloat && !y.isFloat:
		return x.i == y.i
	case x.isFloat && y.isFloat:
		return x.f == y.f
	case x.isFloat:
		x, y = y, x
	}
	// x is an integer, y a float.
	f := y.f
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return false // fractional, NaN, infinite or out of range
	}
	return int64(f) == x.i
}
