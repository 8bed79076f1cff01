package validate

// Into: the handlers that read their input into Go types (the management
// API's bodies, the definitions import) take it from the validated tree
// instead of parsing the request body a second time. The tree is assigned
// following the encoding/json rules those types rely on (with UseNumber),
// so a handler gets the value json.Unmarshal would give for the tree's own
// JSON form. Where the tree no longer holds what the raw bytes did, the
// tree wins, and it is the tree the validator checked: a key given twice
// counts once (its last value), and of keys that match one field only by
// case, the one last in sorted order is assigned last.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/labstack/echo/v4"
)

// Into assigns the validated body to v (a pointer) when the validator
// decoded one; ok is false when it did not (no JSON Content-Type, a body
// too large to validate, no validator), and the handler then decodes the
// bytes itself.
func Into(c echo.Context, v any) (ok bool, err error) {
	tree, ok := Body(c)
	if !ok {
		return false, nil
	}
	return true, Assign(tree, v)
}

// Assign stores a decoded JSON tree (map[string]any, []any, string, bool,
// json.Number, nil) into v, a non-nil pointer, as json.Unmarshal with
// UseNumber would store the tree's JSON. Errors are 400s naming the field.
func Assign(tree, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("validate.Assign needs a non-nil pointer, got %T", v)
	}
	var p intoPath
	return p.assign(tree, rv.Elem())
}

var (
	numberType       = reflect.TypeFor[json.Number]()
	mapStringAnyType = reflect.TypeFor[map[string]any]()
	sliceAnyType     = reflect.TypeFor[[]any]()
	unmarshalerType  = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshType  = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// intoPath is the way down to the value being assigned, for errors.
type intoPath struct{ segs []string }

func (p *intoPath) where() string {
	if len(p.segs) == 0 {
		return "the request body"
	}
	var b strings.Builder
	b.WriteString("request body field '")
	for i, s := range p.segs {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	b.WriteByte('\'')
	return b.String()
}

func (p *intoPath) wrong(t reflect.Type) error {
	return apiError(http.StatusBadRequest, p.where()+" must be "+intoWant(t))
}

// intoWant describes the JSON a Go type takes.
func intoWant(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lo := -1 << (t.Bits() - 1)
		return fmt.Sprintf("an integer from %d to %d", lo, -(lo + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprintf("an integer from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("a number that fits a %d-bit float", t.Bits())
	case reflect.String:
		if t == numberType {
			return "a number"
		}
		return "a string"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a value of type " + t.String()
}

func (p *intoPath) assign(x any, v reflect.Value) error {
	orig := v
	u, v, text := intoIndirect(v, x == nil)
	if u != nil {
		// a subtree re-encoded, not the request body parsed again
		b, err := json.Marshal(x)
		if err != nil {
			return apiError(http.StatusBadRequest, p.where()+": "+err.Error())
		}
		if err := u.UnmarshalJSON(b); err != nil {
			return apiError(http.StatusBadRequest, p.where()+" is not valid: "+err.Error())
		}
		return nil
	}
	if text {
		return p.stdlib(x, orig)
	}
	switch x := x.(type) {
	case nil:
		switch v.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
			v.SetZero()
		}
		return nil
	case bool:
		switch {
		case v.Kind() == reflect.Bool:
			v.SetBool(x)
		case v.Kind() == reflect.Interface && v.NumMethod() == 0:
			v.Set(reflect.ValueOf(x))
		default:
			return p.wrong(v.Type())
		}
		return nil
	case float64: // a tree decoded without UseNumber
		return p.number(json.Number(strconv.FormatFloat(x, 'g', -1, 64)), v)
	case json.Number:
		return p.number(x, v)
	case string:
		switch {
		case v.Kind() == reflect.String:
			if v.Type() == numberType && !intoValidNumber(x) {
				return p.wrong(v.Type())
			}
			v.SetString(x)
		case v.Kind() == reflect.Interface && v.NumMethod() == 0:
			v.Set(reflect.ValueOf(x))
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
			return p.stdlib(x, orig) // base64
		default:
			return p.wrong(v.Type())
		}
		return nil
	case map[string]any:
		return p.object(x, v, orig)
	case []any:
		return p.array(x, v, orig)
	}
	return fmt.Errorf("validate.Assign: %T is not a decoded JSON value", x)
}

// intoIndirect walks down pointers to the value to set, allocating nil
// ones, and stops at a json.Unmarshaler (or, text, an
// encoding.TextUnmarshaler) as encoding/json does; for null it stops at
// the first pointer it can set to nil.
func intoIndirect(v reflect.Value, null bool) (json.Unmarshaler, reflect.Value, bool) {
	v0 := v
	haveAddr := false
	if v.Kind() != reflect.Pointer && v.Type().Name() != "" && v.CanAddr() {
		haveAddr = true
		v = v.Addr()
	}
	for {
		if v.Kind() == reflect.Interface && !v.IsNil() {
			e := v.Elem()
			if e.Kind() == reflect.Pointer && !e.IsNil() && (!null || e.Elem().Kind() == reflect.Pointer) {
				haveAddr = false
				v = e
				continue
			}
		}
		if v.Kind() != reflect.Pointer {
			break
		}
		if null && v.CanSet() {
			break
		}
		if v.Elem().Kind() == reflect.Interface && v.Elem().Elem().Equal(v) {
			v = v.Elem()
			break
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if v.Type().NumMethod() > 0 && v.CanInterface() {
			if u, ok := v.Interface().(json.Unmarshaler); ok {
				return u, reflect.Value{}, false
			}
			if !null {
				if _, ok := v.Interface().(encoding.TextUnmarshaler); ok {
					return nil, reflect.Value{}, true
				}
			}
		}
		if haveAddr {
			v = v0
			haveAddr = false
		} else {
			v = v.Elem()
		}
	}
	return nil, v, false
}

// stdlib hands a subtree to encoding/json, for what the handlers' types
// do not use (text unmarshalers, base64 bytes, arrays, embedded structs,
// ",string" fields, non-string map keys): the subtree re-encoded, not
// the request body parsed again.
func (p *intoPath) stdlib(x any, v reflect.Value) error {
	b, err := json.Marshal(x)
	if err != nil {
		return apiError(http.StatusBadRequest, p.where()+": "+err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v.Addr().Interface()); err != nil {
		return apiError(http.StatusBadRequest, p.where()+" is not valid: "+err.Error())
	}
	return nil
}

// asIs puts the tree's value in an interface field: only an empty
// interface takes any JSON value.
func (p *intoPath) asIs(x any, v reflect.Value) error {
	if v.NumMethod() != 0 {
		return p.wrong(v.Type())
	}
	v.Set(reflect.ValueOf(x))
	return nil
}

func (p *intoPath) number(x json.Number, v reflect.Value) error {
	s := string(x)
	switch v.Kind() {
	case reflect.Interface:
		return p.asIs(x, v)
	case reflect.String:
		if v.Type() != numberType {
			return p.wrong(v.Type())
		}
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return p.wrong(v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(n) {
			return p.wrong(v.Type())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil || v.OverflowFloat(n) {
			return p.wrong(v.Type())
		}
		v.SetFloat(n)
	default:
		return p.wrong(v.Type())
	}
	return nil
}

func (p *intoPath) object(x map[string]any, v, orig reflect.Value) error {
	switch v.Kind() {
	case reflect.Interface:
		return p.asIs(x, v)
	case reflect.Map:
		t := v.Type()
		if t == mapStringAnyType && v.IsNil() {
			v.Set(reflect.ValueOf(x)) // the tree as is: the same keys and values
			return nil
		}
		kt := t.Key()
		if kt.Kind() != reflect.String || reflect.PointerTo(kt).Implements(textUnmarshType) {
			return p.stdlib(x, orig)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(x)))
		}
		for k, e := range x {
			ev := reflect.New(t.Elem()).Elem()
			p.segs = append(p.segs, k)
			err := p.assign(e, ev)
			p.segs = p.segs[:len(p.segs)-1]
			if err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k).Convert(kt), ev)
		}
		return nil
	case reflect.Struct:
		fs := intoFieldsOf(v.Type())
		if fs.stdlib {
			return p.stdlib(x, orig)
		}
		return p.fields(x, v, fs)
	}
	return p.wrong(v.Type())
}

// fields assigns an object's keys to a struct's fields. Unknown keys are
// ignored. When two keys name one field (they differ in case), they are
// assigned in sorted order, the order of the tree's own JSON.
func (p *intoPath) fields(x map[string]any, v reflect.Value, fs *intoFields) error {
	seen := make([]bool, len(fs.list))
	clash := false
	for k := range x {
		if i := fs.lookup(k); i >= 0 {
			clash = clash || seen[i]
			seen[i] = true
		}
	}
	one := func(k string) error {
		i := fs.lookup(k)
		if i < 0 {
			return nil
		}
		p.segs = append(p.segs, k)
		err := p.assign(x[k], v.Field(fs.list[i].index))
		p.segs = p.segs[:len(p.segs)-1]
		return err
	}
	if !clash {
		for k := range x {
			if err := one(k); err != nil {
				return err
			}
		}
		return nil
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := one(k); err != nil {
			return err
		}
	}
	return nil
}

func (p *intoPath) array(x []any, v, orig reflect.Value) error {
	switch v.Kind() {
	case reflect.Interface:
		return p.asIs(x, v)
	case reflect.Array:
		return p.stdlib(x, orig)
	case reflect.Slice:
		if v.Type() == sliceAnyType && v.IsNil() {
			v.Set(reflect.ValueOf(x)) // the tree as is
			return nil
		}
		s := reflect.MakeSlice(v.Type(), len(x), len(x))
		reflect.Copy(s, v) // encoding/json decodes into the elements it has
		for i, e := range x {
			p.segs = append(p.segs, "["+strconv.Itoa(i)+"]")
			err := p.assign(e, s.Index(i))
			p.segs = p.segs[:len(p.segs)-1]
			if err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	return p.wrong(v.Type())
}

// intoFields is a struct's JSON fields, by name.
type intoFields struct {
	list   []intoField
	exact  map[string]int
	stdlib bool // the struct uses what Assign leaves to encoding/json
}

type intoField struct {
	name  string
	index int
}

// lookup finds the field of a key: its exact name, else one equal to it
// without regard to case; -1 for none.
func (fs *intoFields) lookup(k string) int {
	if i, ok := fs.exact[k]; ok {
		return i
	}
	for i, f := range fs.list {
		if strings.EqualFold(f.name, k) {
			return i
		}
	}
	return -1
}

var intoFieldCache sync.Map // reflect.Type -> *intoFields

func intoFieldsOf(t reflect.Type) *intoFields {
	if fs, ok := intoFieldCache.Load(t); ok {
		return fs.(*intoFields)
	}
	fs := &intoFields{exact: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			fs.stdlib = true // embedded fields: encoding/json's rules of dominance
			continue
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !intoValidTag(name) {
			name = sf.Name
		}
		for o := range strings.SplitSeq(opts, ",") {
			if o == "string" {
				fs.stdlib = true
			}
		}
		if _, dup := fs.exact[name]; dup {
			fs.stdlib = true // encoding/json drops or prefers one of them
		}
		fs.exact[name] = len(fs.list)
		fs.list = append(fs.list, intoField{name: name, index: i})
	}
	got, _ := intoFieldCache.LoadOrStore(t, fs)
	return got.(*intoFields)
}

// intoValidTag: may the tag name a field (encoding/json's rule)?
func intoValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}

// intoValidNumber: is s a JSON number?
func intoValidNumber(s string) bool { return intoNumberRE.MatchString(s) }

var intoNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
