package msgcodec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

func nestJSON(depth int) string {
	return strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth)
}

// TestTableDepthIsTheCore's: the JSON side accepts exactly the nesting the
// core encodes, and names the field it refuses.
func TestTableDepthIsTheCores(t *testing.T) {
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{1, true}, {mapping.MaxTableDepth, true}, {mapping.MaxTableDepth + 1, false}, {512, false}} {
		var m map[string]any
		if err := json.Unmarshal([]byte(nestJSON(tc.depth)), &m); err != nil {
			t.Fatal(err)
		}
		tab, err := TableFromJSON(m, "properties.headers")
		if tc.ok != (err == nil) {
			t.Fatalf("depth %d: err %v", tc.depth, err)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, "properties.headers.a.a") {
				t.Errorf("depth %d: error %v does not name the field", tc.depth, err)
			}
			continue
		}
		if _, encErr := mapping.AppendTable(nil, tab); encErr != nil {
			t.Errorf("depth %d accepted by the codec but not encodable by the core: %v", tc.depth, encErr)
		}
	}
}

func TestTypedValuesRoundTrip(t *testing.T) {
	in := mapping.Table{
		"s": "x", "l": int64(-5), "d": 2.5, "t": true, "v": nil,
		"x": []byte{0, 0xff}, "T": time.Unix(1700000000, 0).UTC(),
		"F": mapping.Table{"A": []any{int64(1), "two", mapping.Table{"deep": false}}},
	}
	b, err := json.Marshal(TableToJSON(in))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	out, err := TableFromJSON(m, "headers")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip\n in %#v\nout %#v\njson %s", in, out, b)
	}
	for _, bad := range []string{`{"x":{"$bytes":"!!"}}`, `{"x":{"$bytes":1}}`, `{"x":{"$timestamp":1.5}}`} {
		var m map[string]any
		json.Unmarshal([]byte(bad), &m)
		if _, err := TableFromJSON(m, "headers"); err == nil || !strings.Contains(err.Error(), "headers.x.$") {
			t.Errorf("%s: error %v", bad, err)
		}
	}
}

func TestPropsFromJSON(t *testing.T) {
	var j Props
	if err := json.Unmarshal([]byte(`{"delivery_mode":"2","priority":3,"expiration":60000,"message_id":"m"}`), &j); err != nil {
		t.Fatal(err)
	}
	p, err := PropsFromJSON(&j, 0, "properties")
	if err != nil || !p.Persistent() || p.Priority != 3 || p.Expiration != "60000" || p.MessageID != "m" {
		t.Fatalf("%+v %v", p, err)
	}
	j = Props{}
	json.Unmarshal([]byte(`{"delivery_mode":3}`), &j)
	if _, err := PropsFromJSON(&j, 0, "properties"); err == nil || !strings.Contains(err.Error(), "properties.delivery_mode") {
		t.Fatalf("delivery_mode 3: %v", err)
	}
	back := PropsToJSON(&p)
	if *back.DeliveryMode != 2 || *back.MessageID != "m" || back.ContentType != nil {
		t.Fatalf("%+v", back)
	}
}
