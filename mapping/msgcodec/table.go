package msgcodec

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// The keys of the typed one-key objects.
const (
	bytesKey     = "$bytes"
	timestampKey = "$timestamp"
)

// Error is a value that has no AMQP form; Field names where it was, as a
// dotted path ("properties.headers.a.b").
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// TableToJSON converts a field table to JSON values (never nil).
func TableToJSON(t mapping.Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = ValueToJSON(v)
	}
	return out
}

// ValueToJSON converts one field-table value to its JSON form.
func ValueToJSON(v any) any {
	switch x := v.(type) {
	case mapping.Table:
		return TableToJSON(x)
	case map[string]any:
		return TableToJSON(mapping.Table(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ValueToJSON(e)
		}
		return out
	case []byte:
		return map[string]any{bytesKey: base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return map[string]any{timestampKey: x.Unix()}
	case mapping.Decimal:
		return float64(x.Value) / math.Pow10(int(x.Scale))
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
		return float64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return v
}

// TableFromJSON converts a decoded JSON object (with or without
// json.Decoder.UseNumber) to a field table. field names the object in
// errors (for example "properties.headers" or "arguments").
func TableFromJSON(m map[string]any, field string) (mapping.Table, error) {
	if m == nil {
		return nil, nil
	}
	return tableFromJSON(m, field, 1)
}

func tableFromJSON(m map[string]any, field string, depth int) (mapping.Table, error) {
	if depth > mapping.MaxTableDepth {
		return nil, errorf(field, "tables and arrays nest deeper than %d levels", mapping.MaxTableDepth)
	}
	t := make(mapping.Table, len(m))
	for k, v := range m {
		x, err := valueFromJSON(v, join(field, k), depth)
		if err != nil {
			return nil, err
		}
		t[k] = x
	}
	return t, nil
}

func valueFromJSON(v any, field string, depth int) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, errorf(field, "number %s is out of range", x)
		}
		return f, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x[bytesKey]; ok {
				str, isStr := s.(string)
				b, err := base64.StdEncoding.DecodeString(str)
				if !isStr || err != nil {
					return nil, errorf(join(field, bytesKey), "must be a base64 string")
				}
				return b, nil
			}
			if s, ok := x[timestampKey]; ok {
				n, err := valueFromJSON(s, join(field, timestampKey), depth)
				sec, isInt := n.(int64)
				if err != nil || !isInt {
					return nil, errorf(join(field, timestampKey), "must be whole Unix seconds")
				}
				return time.Unix(sec, 0).UTC(), nil
			}
		}
		return tableFromJSON(x, field, depth+1)
	case []any:
		if depth+1 > mapping.MaxTableDepth {
			return nil, errorf(field, "tables and arrays nest deeper than %d levels", mapping.MaxTableDepth)
		}
		out := make([]any, len(x))
		for i, e := range x {
			y, err := valueFromJSON(e, fmt.Sprintf("%s[%d]", field, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case string, bool, nil:
		return x, nil
	}
	return nil, errorf(field, "a %T has no field-table form", v)
}
