package validate

// The compiled document: operations, parameters and the checks on
// parameter values.

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// oaRoute holds a route's operations by method (oaMethods' order).
type oaRoute [8]*oaOp

func oaMethodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodPut:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodDelete:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodHead:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodTrace:
		return 7
	}
	return -1
}

// oaOp is one operation.
type oaOp struct {
	params       []*oaParam // every parameter
	checked      []*oaParam // those with something to check
	needQuery    bool       // a checked query parameter is required
	body         *oaSchema  // the application/json request body, or nil
	bodyRequired bool
	secured      bool // needs HTTP basic credentials
}

// oaParam is one parameter.
type oaParam struct {
	name     string
	in       string // query, header, path
	key      string // canonical header name
	required bool
	schema   *oaSchema
}

func (p *oaParam) label() string {
	switch p.in {
	case "header":
		return "header " + p.name
	case "path":
		return "path parameter " + p.name
	}
	return "query parameter " + p.name
}

// checkParams checks the parameters that have constraints.
func (op *oaOp) checkParams(c echo.Context) error {
	if len(op.checked) == 0 {
		return nil
	}
	req := c.Request()
	var q url.Values
	if op.needQuery || req.URL.RawQuery != "" {
		q = c.QueryParams()
	}
	for _, p := range op.checked {
		var v string
		switch p.in {
		case "query":
			if vs := q[p.name]; len(vs) > 0 {
				v = vs[0]
			}
		case "header":
			if vs := req.Header[p.key]; len(vs) > 0 {
				v = vs[0]
			}
		case "path":
			v = c.Param(p.name)
			if req.URL.RawPath != "" {
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
		}
		if v == "" {
			if p.required {
				return apiError(http.StatusBadRequest, p.label()+" is required: "+p.schema.want)
			}
			continue
		}
		if !p.schema.checkText(v) {
			return apiError(http.StatusBadRequest, fmt.Sprintf("%s must be %s, got '%s'", p.label(), p.schema.want, oaClip(v)))
		}
	}
	return nil
}

func oaClip(s string) string {
	if len(s) <= oaMaxShown {
		return s
	}
	n := oaMaxShown
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// JSON types a schema allows, as bits.
const (
	oaObject uint8 = 1 << iota
	oaArray
	oaString
	oaInteger
	oaNumber // number also admits integers
	oaBoolean
	oaNull
)

// oaSchema is a compiled schema: the keywords of oaSchemaKeywords.
type oaSchema struct {
	ref      string // the component it came from, for messages and tests
	types    uint8  // 0: any type
	nullable bool   // null passes, also past oneOf/anyOf/allOf
	enum     []any  // string, float64, bool or nil
	min, max float64
	hasMin   bool
	hasMax   bool
	exclMin  bool
	exclMax  bool
	minLen   int // -1: none
	maxLen   int
	pattern  *regexp.Regexp
	format   string // byte and date-time are checked
	props    map[string]*oaSchema
	required []string
	reqIndex map[string]int
	addl     *oaSchema // additionalProperties as a schema
	noAddl   bool      // additionalProperties: false
	items    *oaSchema
	minItems int // -1: none
	maxItems int
	oneOf    []*oaSchema
	anyOf    []*oaSchema
	allOf    []*oaSchema
	want     string // what a valid value is, in words
	compiled bool
}

// needsText: does checking a string need its decoded value?
func (s *oaSchema) needsText() bool {
	return len(s.enum) > 0 || s.pattern != nil || s.minLen >= 0 || s.maxLen >= 0 || s.format == "byte" || s.format == "date-time"
}

// trivial: does every value pass? (Only for parameters, whose values are
// strings.)
func (s *oaSchema) trivialParam() bool {
	return (s.types == 0 || s.types&oaString != 0) && !s.needsText() && len(s.oneOf)+len(s.anyOf)+len(s.allOf) == 0
}

// checkText checks a parameter value (always text) against the schema.
func (s *oaSchema) checkText(v string) bool {
	for _, a := range s.allOf {
		if !a.checkText(v) {
			return false
		}
	}
	if len(s.anyOf) > 0 {
		ok := false
		for _, a := range s.anyOf {
			if a.checkText(v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(s.oneOf) > 0 {
		n := 0
		for _, a := range s.oneOf {
			if a.checkText(v) {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	switch {
	case s.types == 0 || s.types&oaString != 0:
		return s.checkString(v)
	case s.types&(oaInteger|oaNumber) != 0:
		if s.types&oaNumber == 0 {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return s.checkNumber(float64(n))
			}
			return false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
		return s.checkNumber(f)
	case s.types&oaBoolean != 0:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false
		}
		return s.checkEnum(b)
	}
	return false
}

// checkString checks minLength, maxLength, pattern, format and enum.
func (s *oaSchema) checkString(v string) bool {
	if s.minLen >= 0 || s.maxLen >= 0 {
		n := utf8.RuneCountInString(v)
		if s.minLen >= 0 && n < s.minLen || s.maxLen >= 0 && n > s.maxLen {
			return false
		}
	}
	if s.pattern != nil && !s.pattern.MatchString(v) {
		return false
	}
	switch s.format {
	case "byte":
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return false
		}
	case "date-time":
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return false
		}
	}
	if len(s.enum) == 0 {
		return true
	}
	for _, e := range s.enum {
		if e, ok := e.(string); ok && e == v {
			return true
		}
	}
	return false
}

// checkNumber checks minimum, maximum and enum.
func (s *oaSchema) checkNumber(f float64) bool {
	if s.hasMin && (f < s.min || s.exclMin && f == s.min) {
		return false
	}
	if s.hasMax && (f > s.max || s.exclMax && f == s.max) {
		return false
	}
	if len(s.enum) == 0 {
		return true
	}
	for _, e := range s.enum {
		if e, ok := e.(float64); ok && e == f {
			return true
		}
	}
	return false
}

func (s *oaSchema) checkEnum(v any) bool {
	if len(s.enum) == 0 {
		return true
	}
	for _, e := range s.enum {
		if e == v {
			return true
		}
	}
	return false
}
