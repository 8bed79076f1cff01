package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// intoFlex takes a boolean or a string, as the management API's flexible
// fields do.
type intoFlex struct{ Set, Value bool }

func (f *intoFlex) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		f.Set, f.Value = true, t
	case string:
		f.Set, f.Value = true, t == "true"
	case nil:
	default:
		return errors.New("not a boolean")
	}
	return nil
}

type intoInner struct {
	N  int8   `json:"n"`
	S  string `json:"s"`
	XS []int  `json:"xs"`
}

type intoEmbedded struct {
	intoInner
	Top string `json:"top"`
}

// intoQuoted has a ",string" field: Assign leaves it to encoding/json.
type intoQuoted struct {
	Str int    `json:"str,string"`
	S   string `json:"s"`
}

type intoKinds struct {
	S      string            `json:"s"`
	I      int               `json:"i"`
	I8     int8              `json:"i8"`
	U16    uint16            `json:"u16"`
	F32    float32           `json:"f32"`
	F64    float64           `json:"f64"`
	B      bool              `json:"b"`
	Num    json.Number       `json:"num"`
	Any    any               `json:"any"`
	PS     *string           `json:"ps"`
	PPI    **int             `json:"ppi"`
	M      map[string]any    `json:"m"`
	MI     map[string]int    `json:"mi"`
	MK     map[int]string    `json:"mk"`
	L      []any             `json:"l"`
	LS     []string          `json:"ls"`
	LP     []*intoInner      `json:"lp"`
	Arr    [2]int            `json:"arr"`
	Bytes  []byte            `json:"bytes"`
	Raw    json.RawMessage   `json:"raw"`
	PRaw   *json.RawMessage  `json:"praw"`
	Flex   intoFlex          `json:"flex"`
	PFlex  *intoFlex         `json:"pflex"`
	IP     net.IP            `json:"ip"` // a TextUnmarshaler
	Inner  intoInner         `json:"inner"`
	PInner *intoInner        `json:"pinner"`
	Emb    intoEmbedded      `json:"emb"`
	MR     map[string]string `json:"mr"`
	NoTag  string
	Skip   string `json:"-"`
	hidden string //nolint:unused // unexported: never assigned
}

// intoSame checks that Assign on the tree of doc gives what encoding/json
// (UseNumber) gives on the tree's own JSON: the same value, or an error
// for both.
func intoSame[T any](t *testing.T, doc []byte) {
	t.Helper()
	tree, err := oaDecodeAny(doc)
	if err != nil {
		return
	}
	canon, err := json.Marshal(tree)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	var want, got T
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	werr := dec.Decode(&want)
	gerr := Assign(tree, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s into %T: encoding/json says %v, Assign says %v", canon, got, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%s into %T:\nencoding/json %#v\nAssign        %#v", canon, got, want, got)
	}
	if gerr != nil {
		var he *echo.HTTPError
		if !errors.As(gerr, &he) || he.Code != 400 {
			t.Fatalf("%s into %T: error %v is not a 400", canon, got, gerr)
		}
	}
}

// oaDecodeAny decodes as the validator does, without its depth limit.
func oaDecodeAny(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

var intoDocs = []string{
	`{}`, `null`, `[]`, `"x"`, `1`, `true`,
	`{"s":"a","i":-3,"i8":127,"u16":65535,"f32":1.5,"f64":-2e300,"b":true,"num":1.50}`,
	`{"i8":128}`, `{"i8":-129}`, `{"u16":65536}`, `{"u16":-1}`, `{"i":1.0}`, `{"i":1e2}`, `{"i":"1"}`,
	`{"f32":1e39}`, `{"f64":1e400}`, `{"s":1}`, `{"s":true}`, `{"b":"true"}`, `{"b":0}`,
	`{"num":"12.5"}`, `{"num":"x"}`, `{"num":" 1"}`, `{"num":true}`,
	`{"any":{"a":[1,"b",null,{"c":2.5}]}}`, `{"any":null}`, `{"any":123456789012345678901234567890}`,
	`{"ps":"x"}`, `{"ps":null}`, `{"ppi":7}`, `{"ppi":null}`, `{"ppi":"x"}`,
	`{"m":{"a":1,"b":{"c":[]}}}`, `{"m":[]}`, `{"m":null}`, `{"mi":{"a":1,"b":2}}`, `{"mi":{"a":"x"}}`,
	`{"mk":{"1":"a","-2":"b"}}`, `{"mk":{"x":"a"}}`,
	`{"l":[1,2]}`, `{"l":[]}`, `{"ls":["a","b"]}`, `{"ls":["a",1]}`, `{"ls":null}`, `{"ls":{}}`,
	`{"lp":[{"n":1},null,{"s":"x","xs":[1,2]}]}`, `{"lp":[{"n":300}]}`,
	`{"arr":[1]}`, `{"arr":[1,2,3]}`, `{"arr":"x"}`,
	`{"bytes":"aGVsbG8="}`, `{"bytes":"!!"}`, `{"bytes":[1,2]}`, `{"bytes":null}`,
	`{"raw":{"b":1,"a":[true,null,"\u003c"]}}`, `{"raw":null}`, `{"praw":null}`, `{"praw":5}`,
	`{"flex":true}`, `{"flex":"true"}`, `{"flex":3}`, `{"flex":null}`, `{"pflex":false}`, `{"pflex":null}`, `{"pflex":[]}`,
	`{"ip":"10.0.0.1"}`, `{"ip":"nope"}`, `{"ip":1}`, `{"ip":null}`,
	`{"inner":{"n":1,"s":"x","xs":[3]}}`, `{"inner":[]}`, `{"inner":null}`, `{"pinner":{"N":2}}`, `{"pinner":null}`,
	`{"emb":{"n":1,"top":"t","s":"x"}}`, `{"emb":{"n":"bad"}}`,
	`{"str":"12"}`, `{"str":12}`, `{"mr":{"a":"b"}}`, `{"mr":{"a":null}}`,
	`{"S":"upper","NOTAG":"n","notag":"m","skip":"x","-":"y","hidden":"h","unknown":[1,{"x":2}]}`,
	`{"s":"one","S":"two"}`, `{"inner":{"n":1},"INNER":{"s":"x"}}`, `{"m":{"a":1},"M":{"b":2}}`,
}

func TestAssignMatchesEncodingJSON(t *testing.T) {
	for _, d := range intoDocs {
		intoSame[intoKinds](t, []byte(d))
		intoSame[map[string]any](t, []byte(d))
		intoSame[map[string]json.RawMessage](t, []byte(d))
		intoSame[[]intoInner](t, []byte(d))
		intoSame[any](t, []byte(d))
		intoSame[*intoKinds](t, []byte(d))
		intoSame[intoQuoted](t, []byte(d))
	}
}

func TestAssignNamesTheField(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"i8":300}`, "request body field 'i8' must be an integer from -128 to 127"},
		{`{"u16":-1}`, "request body field 'u16' must be an integer from 0 to 65535"},
		{`{"s":1}`, "request body field 's' must be a string"},
		{`{"lp":[{"n":1},{"xs":[1,"x"]}]}`, "request body field 'lp[1].xs[1]' must be an integer"},
		{`{"inner":{"N":1.5}}`, "request body field 'inner.N' must be an integer from -128 to 127"},
		{`{"flex":3}`, "request body field 'flex' is not valid: not a boolean"},
		{`[]`, "the request body must be an object"},
	} {
		tree, err := oaDecodeAny([]byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		var v intoKinds
		err = Assign(tree, &v)
		var he *echo.HTTPError
		if !errors.As(err, &he) || he.Code != 400 || !strings.HasPrefix(he.Message.(string), c.want) {
			t.Errorf("%s: got %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestAssignNeedsAPointer(t *testing.T) {
	var v intoKinds
	if err := Assign(map[string]any{}, v); err == nil {
		t.Fatal("Assign took a non-pointer")
	}
}

func FuzzAssign(f *testing.F) {
	for _, d := range intoDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		intoSame[intoKinds](t, doc)
		intoSame[[]intoInner](t, doc)
		intoSame[map[string]intoInner](t, doc)
	})
}
