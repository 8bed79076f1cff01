package mapping

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestHeadersMatch(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	cases := []struct {
		name    string
		args    Table
		headers Table
		want    bool
	}{
		// Modes and defaults.
		{"all default, all equal", Table{"a": "1", "b": "2"}, Table{"a": "1", "b": "2", "c": "3"}, true},
		{"all default, one differs", Table{"a": "1", "b": "2"}, Table{"a": "1", "b": "3"}, false},
		{"all default, one missing", Table{"a": "1", "b": "2"}, Table{"a": "1"}, false},
		{"all explicit", Table{"x-match": "all", "a": "1"}, Table{"a": "1"}, true},
		{"all, no args", Table{}, Table{"a": "1"}, true},
		{"all, nil args", nil, nil, true},
		{"all, only x-match", Table{"x-match": "all"}, nil, true},
		{"all, only x- args", Table{"x-match": "all", "x-foo": "1"}, Table{}, true},
		{"all, nil headers", Table{"a": "1"}, nil, false},
		{"any, one matches", Table{"x-match": "any", "a": "1", "b": "2"}, Table{"b": "2"}, true},
		{"any, none matches", Table{"x-match": "any", "a": "1", "b": "2"}, Table{"a": "2", "c": "1"}, false},
		{"any, no args", Table{"x-match": "any"}, Table{"a": "1"}, false},
		{"any, only x- args", Table{"x-match": "any", "x-a": "1"}, Table{"x-a": "1"}, false},
		{"any, nil headers", Table{"x-match": "any", "a": "1"}, nil, false},
		{"invalid mode is all", Table{"x-match": "bogus", "a": "1", "b": "2"}, Table{"a": "1"}, false},
		{"non-string mode is all", Table{"x-match": int32(1), "a": "1"}, Table{"a": "1"}, true},
		// x- arguments.
		{"all ignores x- args", Table{"x-foo": "1", "a": "1"}, Table{"a": "1"}, true},
		{"any ignores x- args", Table{"x-match": "any", "x-foo": "1"}, Table{"x-foo": "1"}, false},
		{"all-with-x uses x- args", Table{"x-match": "all-with-x", "x-foo": "1", "a": "1"}, Table{"a": "1"}, false},
		{"all-with-x matches x- args", Table{"x-match": "all-with-x", "x-foo": "1", "a": "1"}, Table{"a": "1", "x-foo": "1"}, true},
		{"any-with-x matches x- arg", Table{"x-match": "any-with-x", "x-foo": "1", "a": "1"}, Table{"x-foo": "1"}, true},
		{"any-with-x none", Table{"x-match": "any-with-x", "x-foo": "1"}, Table{"x-foo": "2"}, false},
		{"with-x never matches on x-match", Table{"x-match": "any-with-x"}, Table{"x-match": "any-with-x"}, false},
		{"all-with-x only x-match", Table{"x-match": "all-with-x"}, Table{}, true},
		// Void means presence.
		{"void, present", Table{"a": nil}, Table{"a": "anything"}, true},
		{"void, present void", Table{"a": nil}, Table{"a": nil}, true},
		{"void, absent", Table{"a": nil}, Table{"b": "1"}, false},
		{"void any", Table{"x-match": "any", "a": nil, "b": "1"}, Table{"a": int32(0)}, true},
		{"non-void vs void header", Table{"a": "1"}, Table{"a": nil}, false},
		// Numbers compare by value across types.
		{"int32 = int32", Table{"a": int32(5)}, Table{"a": int32(5)}, true},
		{"int8 = int64", Table{"a": int8(5)}, Table{"a": int64(5)}, true},
		{"uint32 = int16", Table{"a": uint32(5)}, Table{"a": int16(5)}, true},
		{"int = float", Table{"a": int32(5)}, Table{"a": float64(5)}, true},
		{"float32 = float64", Table{"a": float32(0.5)}, Table{"a": float64(0.5)}, true},
		{"int != fractional float", Table{"a": int32(5)}, Table{"a": 5.5}, false},
		{"int != different int", Table{"a": int64(5)}, Table{"a": int64(6)}, false},
		{"big int exact", Table{"a": int64(1<<53 + 1)}, Table{"a": float64(1 << 53)}, false},
		{"NaN never equal", Table{"a": math.NaN()}, Table{"a": math.NaN()}, false},
		{"timestamp = timestamp", Table{"a": ts}, Table{"a": ts}, true},
		{"timestamp = seconds", Table{"a": ts}, Table{"a": int64(1700000000)}, true},
		{"number != string", Table{"a": int32(1)}, Table{"a": "1"}, false},
		{"bool = bool", Table{"a": true}, Table{"a": true}, true},
		{"bool != bool", Table{"a": true}, Table{"a": false}, false},
		{"bool != int", Table{"a": true}, Table{"a": int32(1)}, false},
		{"decimal = decimal", Table{"a": Decimal{2, 150}}, Table{"a": Decimal{2, 150}}, true},
		{"decimal scale matters", Table{"a": Decimal{1, 15}}, Table{"a": Decimal{2, 150}}, false},
		// Strings and byte arrays are both binaries.
		{"string = string", Table{"a": "héllo"}, Table{"a": "héllo"}, true},
		{"string = bytes", Table{"a": "abc"}, Table{"a": []byte("abc")}, true},
		{"bytes = bytes", Table{"a": []byte{0, 1}}, Table{"a": []byte{0, 1}}, true},
		{"bytes != bytes", Table{"a": []byte{0, 1}}, Table{"a": []byte{0, 2}}, false},
		{"empty string", Table{"a": ""}, Table{"a": ""}, true},
		// Nested values compare strictly.
		{"table = table", Table{"a": Table{"x": int32(1), "y": []any{"s", nil}}}, Table{"a": Table{"y": []any{"s", nil}, "x": int32(1)}}, true},
		{"table value type", Table{"a": Table{"x": int32(1)}}, Table{"a": Table{"x": int64(1)}}, false},
		{"table extra key", Table{"a": Table{"x": int32(1)}}, Table{"a": Table{"x": int32(1), "y": nil}}, false},
		{"empty tables", Table{"a": Table{}}, Table{"a": Table{}}, true},
		{"array = array", Table{"a": []any{int32(1), "b", []byte("c"), Table{"d": true}}}, Table{"a": []any{int32(1), "b", []byte("c"), Table{"d": true}}}, true},
		{"array order", Table{"a": []any{int32(1), int32(2)}}, Table{"a": []any{int32(2), int32(1)}}, false},
		{"array length", Table{"a": []any{int32(1)}}, Table{"a": []any{int32(1), int32(1)}}, false},
		{"array string vs bytes", Table{"a": []any{"b"}}, Table{"a": []any{[]byte("b")}}, false},
		{"array timestamps", Table{"a": []any{ts}}, Table{"a": []any{ts.Add(time.Millisecond)}}, true},
		{"array vs table", Table{"a": []any{}}, Table{"a": Table{}}, false},
	}
	for _, c := range cases {
		if got := headersMatch(c.args, c.headers); got != c.want {
			t.Errorf("%s: headersMatch(%v, %v) = %v, want %v", c.name, c.args, c.headers, got, c.want)
		}
	}
}

func TestHeadersValidXMatch(t *testing.T) {
	for _, args := range []Table{nil, {}, {"a": "b"}, {"x-match": "all"}, {"x-match": "any"},
		{"x-match": "all-with-x"}, {"x-match": "any-with-x"}} {
		if err := validXMatch(args); err != nil {
			t.Errorf("validXMatch(%v) = %v", args, err)
		}
	}
	for _, c := range []struct {
		args Table
		want string
	}{
		{Table{"x-match": "ALL"}, `invalid x-match field value "ALL"; expected all, any, all-with-x, or any-with-x`},
		{Table{"x-match": ""}, `invalid x-match field value ""; expected all, any, all-with-x, or any-with-x`},
		{Table{"x-match": "all "}, `invalid x-match field value "all "`},
		{Table{"x-match": int32(1)}, "invalid x-match field type signedint (value 1); expected longstr"},
		{Table{"x-match": []byte("all")}, "invalid x-match field type binary"},
		{Table{"x-match": nil}, "invalid x-match field type void"},
	} {
		err := validXMatch(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validXMatch(%v) = %v, want %q", c.args, err, c.want)
		}
	}
}

func BenchmarkHeadersMatch(b *testing.B) {
	args := Table{"x-match": "all", "format": "pdf", "type": "report", "n": int32(3)}
	headers := Table{"format": []byte("pdf"), "type": "report", "n": int64(3), "other": true}
	b.ReportAllocs()
	for b.Loop() {
		if !headersMatch(args, headers) {
			b.Fatal("no match")
		}
	}
}
