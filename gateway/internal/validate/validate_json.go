package validate

// JSON bodies: oaScan parses and validates in one pass over the bytes.
// A schema mismatch or a syntax error stops the scan; the first one is
// reported with the path of the field.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/warrenmq/warren/mapping"
)

// oaValidateJSON validates body against s; the error is a 400.
func oaValidateJSON(s *oaSchema, body []byte) error {
	sc := oaScans.Get().(*oaScan)
	sc.reset(body)
	ok := sc.value(s) && sc.end()
	var err error
	if !ok {
		err = apiError(http.StatusBadRequest, sc.msg)
	}
	sc.reset(nil)
	oaScans.Put(sc)
	return err
}

var oaScans = sync.Pool{New: func() any { return new(oaScan) }}

type oaScan struct {
	b     []byte
	i     int
	depth int
	quiet int     // >0 while trying alternatives: no messages
	path  []oaSeg // where the scan is
	text  []byte  // a decoded string
	msg   string  // the first failure
}

// oaSeg is one step of a path: an object key or an array index.
type oaSeg struct {
	key   []byte
	index int
	isKey bool
}

func (sc *oaScan) reset(b []byte) {
	sc.b, sc.i, sc.depth, sc.quiet, sc.msg = b, 0, 0, 0, ""
	sc.path = sc.path[:0]
	if cap(sc.text) > 64<<10 {
		sc.text = nil
	}
}

// where names the current position for a message.
func (sc *oaScan) where() string {
	if len(sc.path) == 0 {
		return "the request body"
	}
	var b strings.Builder
	b.WriteString("request body field '")
	for i, p := range sc.path {
		if p.isKey {
			if i > 0 {
				b.WriteByte('.')
			}
			b.Write(p.key)
		} else {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// mismatch records that the value at b[start:] does not match s.
func (sc *oaScan) mismatch(s *oaSchema, start int) bool {
	if sc.quiet > 0 || sc.msg != "" {
		return false
	}
	end := sc.skipQuiet(start)
	got := sc.b[start:end]
	if len(got) > oaMaxShown {
		got = append(got[:oaMaxShown:oaMaxShown], "..."...)
	}
	sc.msg = fmt.Sprintf("%s must be %s, got %s", sc.where(), s.want, got)
	return false
}

// skipQuiet finds the end of the value at start without reporting
// (for messages); on a syntax error it returns a short span.
func (sc *oaScan) skipQuiet(start int) int {
	i, d, q, m := sc.i, sc.depth, sc.quiet, sc.msg
	sc.i, sc.quiet = start, 1
	end := start
	if sc.skip() {
		end = sc.i
	} else {
		end = min(start+oaMaxShown, len(sc.b))
	}
	sc.i, sc.depth, sc.quiet, sc.msg = i, d, q, m
	return end
}

// tooDeep records that the body nests deeper than oaMaxDepth, naming the
// field where it does.
func (sc *oaScan) tooDeep() bool {
	if sc.quiet == 0 && sc.msg == "" {
		sc.msg = fmt.Sprintf("%s nests deeper than %d levels (a field table may nest %d deep)", sc.where(), oaMaxDepth, mapping.MaxTableDepth)
	}
	return false
}

// syntax records a syntax error at the current offset.
func (sc *oaScan) syntax(what string) bool {
	if sc.quiet == 0 && sc.msg == "" {
		sc.msg = fmt.Sprintf("the request body is not valid JSON: %s at offset %d", what, sc.i)
	}
	return false
}

func (sc *oaScan) ws() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// end accepts only white space after the value.
func (sc *oaScan) end() bool {
	sc.ws()
	if sc.i != len(sc.b) {
		return sc.syntax("data after the JSON value")
	}
	return true
}

// value validates the value at the current offset against s (nil: any
// value, syntax only) and moves past it.
func (sc *oaScan) value(s *oaSchema) bool {
	sc.ws()
	if s == nil {
		return sc.skip()
	}
	if s.nullable && sc.i < len(sc.b) && sc.b[sc.i] == 'n' {
		return sc.literal("null")
	}
	if len(s.oneOf)+len(s.anyOf)+len(s.allOf) > 0 {
		return sc.composite(s)
	}
	return sc.own(s)
}

// composite checks allOf, anyOf and oneOf by scanning the value once per
// alternative, then the schema's own keywords.
func (sc *oaScan) composite(s *oaSchema) bool {
	start := sc.i
	if !sc.skip() { // syntax first: alternatives then see valid JSON
		return false
	}
	end := sc.i
	try := func(a *oaSchema) bool {
		sc.i = start
		sc.quiet++
		d, p := sc.depth, len(sc.path)
		ok := sc.value(a)
		sc.quiet--
		sc.depth, sc.path = d, sc.path[:p]
		return ok
	}
	for _, a := range s.allOf {
		if !try(a) {
			return sc.mismatch(s, start)
		}
	}
	if len(s.anyOf) > 0 {
		ok := false
		for _, a := range s.anyOf {
			if try(a) {
				ok = true
				break
			}
		}
		if !ok {
			return sc.mismatch(s, start)
		}
	}
	if len(s.oneOf) > 0 {
		n := 0
		for _, a := range s.oneOf {
			if try(a) {
				n++
			}
		}
		if n != 1 {
			return sc.mismatch(s, start)
		}
	}
	sc.i = start // and the keywords next to the composites
	if !sc.own(s) {
		return false
	}
	sc.i = end
	return true
}

// own checks the value against s's keywords other than the composites.
func (sc *oaScan) own(s *oaSchema) bool {
	start := sc.i
	if sc.i >= len(sc.b) {
		return sc.syntax("unexpected end")
	}
	switch c := sc.b[sc.i]; {
	case c == '{':
		if s.types != 0 && s.types&oaObject == 0 {
			return sc.mismatch(s, start)
		}
		if len(s.enum) > 0 {
			return sc.mismatch(s, start)
		}
		return sc.object(s)
	case c == '[':
		if s.types != 0 && s.types&oaArray == 0 || len(s.enum) > 0 {
			return sc.mismatch(s, start)
		}
		return sc.array(s)
	case c == '"':
		if s.types != 0 && s.types&oaString == 0 {
			return sc.mismatch(s, start)
		}
		text, ok := sc.str(s.needsText())
		if !ok {
			return false
		}
		if s.needsText() && !s.checkString(string(text)) {
			return sc.mismatch(s, start)
		}
		return true
	case c == '-' || c >= '0' && c <= '9':
		isInt, ok := sc.number()
		if !ok {
			return false
		}
		if s.types != 0 && s.types&oaNumber == 0 && (s.types&oaInteger == 0 || !isInt && !sc.whole(start)) {
			return sc.mismatch(s, start)
		}
		if s.hasMin || s.hasMax || len(s.enum) > 0 {
			f, err := strconv.ParseFloat(string(sc.b[start:sc.i]), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) || !s.checkNumber(f) {
				return sc.mismatch(s, start)
			}
		}
		return true
	case c == 't' || c == 'f':
		word := "true"
		if c == 'f' {
			word = "false"
		}
		if !sc.literal(word) {
			return false
		}
		if s.types != 0 && s.types&oaBoolean == 0 || !s.checkEnum(c == 't') {
			return sc.mismatch(s, start)
		}
		return true
	case c == 'n':
		if !sc.literal("null") {
			return false
		}
		if s.types != 0 && s.types&oaNull == 0 || !s.checkEnum(nil) {
			return sc.mismatch(s, start)
		}
		return true
	}
	return sc.syntax(fmt.Sprintf("unexpected character %q", sc.b[sc.i]))
}

// whole: is the number at start..i a whole number (1.0, 1e3)?
func (sc *oaScan) whole(start int) bool {
	f, err := strconv.ParseFloat(string(sc.b[start:sc.i]), 64)
	return err == nil && f == math.Trunc(f)
}

func (sc *oaScan) object(s *oaSchema) bool {
	if sc.depth++; sc.depth > oaMaxDepth {
		return sc.tooDeep()
	}
	sc.i++ // {
	var seen uint64
	sc.ws()
	if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
		sc.i++
	} else {
		for {
			sc.ws()
			if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
				return sc.syntax("expected a field name")
			}
			key, ok := sc.key()
			if !ok {
				return false
			}
			sc.ws()
			if sc.i >= len(sc.b) || sc.b[sc.i] != ':' {
				return sc.syntax("expected ':'")
			}
			sc.i++
			sc.path = append(sc.path, oaSeg{key: key, isKey: true})
			sub, known := s.props[string(key)]
			if !known {
				if s.noAddl {
					sc.ws()
					if sc.quiet == 0 && sc.msg == "" {
						sc.msg = fmt.Sprintf("%s is not a known field of %s", sc.where(), s.fieldList())
					}
					return false
				}
				sub = s.addl
			}
			if !sc.value(sub) {
				return false
			}
			sc.path = sc.path[:len(sc.path)-1]
			if n, ok := s.reqIndex[string(key)]; ok {
				seen |= 1 << n
			}
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == ',' {
				sc.i++
				continue
			}
			if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
				sc.i++
				break
			}
			return sc.syntax("expected ',' or '}'")
		}
	}
	sc.depth--
	for n, name := range s.required {
		if seen&(1<<n) == 0 {
			if sc.quiet == 0 && sc.msg == "" {
				sc.path = append(sc.path, oaSeg{key: []byte(name), isKey: true})
				sc.msg = sc.where() + " is required"
				if sub := s.props[name]; sub != nil {
					sc.msg += ": " + sub.want
				}
			}
			return false
		}
	}
	return true
}

// fieldList names the fields of an object schema for a message.
func (s *oaSchema) fieldList() string {
	names := make([]string, 0, len(s.props))
	for k := range s.props {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "an object without fields"
	}
	return "the object (" + strings.Join(names, ", ") + ")"
}

func (sc *oaScan) array(s *oaSchema) bool {
	if sc.depth++; sc.depth > oaMaxDepth {
		return sc.tooDeep()
	}
	sc.i++ // [
	n := 0
	sc.ws()
	if sc.i < len(sc.b) && sc.b[sc.i] == ']' {
		sc.i++
	} else {
		for {
			sc.path = append(sc.path, oaSeg{index: n})
			if !sc.value(s.items) {
				return false
			}
			sc.path = sc.path[:len(sc.path)-1]
			n++
			sc.ws()
			if sc.i < len(sc.b) && sc.b[sc.i] == ',' {
				sc.i++
				continue
			}
			if sc.i < len(sc.b) && sc.b[sc.i] == ']' {
				sc.i++
				break
			}
			return sc.syntax("expected ',' or ']'")
		}
	}
	sc.depth--
	if s.minItems >= 0 && n < s.minItems || s.maxItems >= 0 && n > s.maxItems {
		if sc.quiet == 0 && sc.msg == "" {
			sc.msg = fmt.Sprintf("%s must be %s, got %d items", sc.where(), s.want, n)
		}
		return false
	}
	return true
}

// key reads an object key; a key with escapes is decoded into its own
// buffer (it stays on the path while its value is scanned).
func (sc *oaScan) key() ([]byte, bool) {
	start := sc.i + 1
	text, ok := sc.str(true)
	if !ok {
		return nil, false
	}
	if len(text) == sc.i-1-start && bytes.Equal(text, sc.b[start:sc.i-1]) {
		return sc.b[start : sc.i-1], true
	}
	return append([]byte(nil), text...), true
}

// str reads a string; with decode it returns its decoded text (in a
// buffer reused by the next call).
func (sc *oaScan) str(decode bool) ([]byte, bool) {
	sc.i++ // "
	start := sc.i
	escaped := false
	for {
		if sc.i >= len(sc.b) {
			return nil, sc.syntax("unterminated string")
		}
		c := sc.b[sc.i]
		switch {
		case c == '"':
			raw := sc.b[start:sc.i]
			sc.i++
			if !decode {
				return nil, true
			}
			if !escaped {
				return raw, true
			}
			return sc.unescape(raw), true
		case c == '\\':
			escaped = true
			if sc.i+1 >= len(sc.b) {
				return nil, sc.syntax("unterminated string")
			}
			switch sc.b[sc.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				sc.i += 2
			case 'u':
				if sc.i+6 > len(sc.b) {
					return nil, sc.syntax("short \\u escape")
				}
				for _, h := range sc.b[sc.i+2 : sc.i+6] {
					if !oaHex(h) {
						return nil, sc.syntax("bad \\u escape")
					}
				}
				sc.i += 6
			default:
				sc.i++
				return nil, sc.syntax("bad escape")
			}
		case c < 0x20:
			return nil, sc.syntax("control character in string")
		default:
			sc.i++
		}
	}
}

func oaHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func oaHexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape decodes a string body already checked by str, as
// encoding/json does (lone surrogates become U+FFFD).
func (sc *oaScan) unescape(raw []byte) []byte {
	out := sc.text[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := oaHexVal(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, oaHexVal(raw[i+2:i+6])); r2 != utf8.RuneError {
						out = utf8.AppendRune(out, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, raw[i+1])
		}
		i += 2
	}
	sc.text = out
	return out
}

// number reads a JSON number; isInt says it has no fraction or exponent.
func (sc *oaScan) number() (isInt, ok bool) {
	b, i := sc.b, sc.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		sc.i = i
		return false, sc.syntax("bad number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			sc.i = i
			return false, sc.syntax("bad number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			sc.i = i
			return false, sc.syntax("bad number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	sc.i = i
	return isInt, true
}

func (sc *oaScan) literal(word string) bool {
	if len(sc.b)-sc.i < len(word) || string(sc.b[sc.i:sc.i+len(word)]) != word {
		return sc.syntax("unexpected literal")
	}
	sc.i += len(word)
	return true
}

// skip checks the syntax of one value and moves past it.
func (sc *oaScan) skip() bool {
	sc.ws()
	if sc.i >= len(sc.b) {
		return sc.syntax("unexpected end")
	}
	switch c := sc.b[sc.i]; {
	case c == '{':
		return sc.object(oaAnyObject)
	case c == '[':
		return sc.array(oaAnyArray)
	case c == '"':
		_, ok := sc.str(false)
		return ok
	case c == '-' || c >= '0' && c <= '9':
		_, ok := sc.number()
		return ok
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	}
	return sc.syntax(fmt.Sprintf("unexpected character %q", sc.b[sc.i]))
}

// oaAnyObject and oaAnyArray take any members (skip uses them).
var (
	oaAnyObject = &oaSchema{types: oaObject, minLen: -1, maxLen: -1, minItems: -1, maxItems: -1, want: "an object", compiled: true}
	oaAnyArray  = &oaSchema{types: oaArray, minLen: -1, maxLen: -1, minItems: -1, maxItems: -1, want: "an array", compiled: true}
)
