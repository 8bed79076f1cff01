package validate

// Compiling the OpenAPI document. Every keyword of the document is
// either checked or listed as an annotation; anything else is an error, so
// that a keyword the validator does not know is never silently ignored.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// oaSchemaKeywords are the schema keywords the validator checks.
var oaSchemaKeywords = []string{
	"$ref", "type", "enum", "nullable", "format",
	"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"minLength", "maxLength", "pattern",
	"properties", "required", "additionalProperties",
	"items", "minItems", "maxItems",
	"oneOf", "anyOf", "allOf",
}

// oaAnnotations are keywords that do not constrain a request.
var oaAnnotations = []string{"description", "example", "examples", "default", "title", "deprecated", "externalDocs"}

// oaFormats are the formats the validator knows: byte (base64) and
// date-time (RFC 3339) are checked, binary marks raw bodies.
var oaFormats = []string{"binary", "byte", "date-time"}

// oaParamKeywords and oaOpKeywords: the rest of the document's vocabulary.
var (
	oaParamKeywords = []string{"name", "in", "required", "schema", "description", "example", "examples", "deprecated"}
	oaOpKeywords    = []string{"tags", "summary", "description", "operationId", "parameters", "requestBody", "responses", "security", "deprecated", "externalDocs"}
	oaBodyKeywords  = []string{"description", "required", "content"}
	oaMediaKeywords = []string{"schema", "example", "examples"}
	oaMethods       = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
)

func oaKnown(list []string, k string) bool {
	if strings.HasPrefix(k, "x-") {
		return true
	}
	for _, l := range list {
		if l == k {
			return true
		}
	}
	return false
}

// oaTable is the compiled document.
type oaTable struct {
	routes  map[string]*oaRoute  // by echo route template
	all     []*oaOp              // every operation
	schemas map[string]*oaSchema // every component schema, compiled
}

// lookup finds the operation of a request by method and echo route.
func (t *oaTable) lookup(method, route string) *oaOp {
	r := t.routes[route]
	i := oaMethodIndex(method)
	if r == nil || i < 0 {
		return nil
	}
	return r[i]
}

type oaCompiler struct {
	params  map[string]any
	schemas map[string]any
	schemes map[string]any
	done    map[string]*oaSchema
	errs    []string
}

func (cc *oaCompiler) errorf(format string, args ...any) {
	cc.errs = append(cc.errs, fmt.Sprintf(format, args...))
}

// compileOpenAPI compiles a merged OpenAPI 3.0 document.
func compileOpenAPI(doc []byte) (*oaTable, error) {
	var d struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components map[string]map[string]any `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	cc := &oaCompiler{
		params:  d.Components["parameters"],
		schemas: d.Components["schemas"],
		schemes: d.Components["securitySchemes"],
		done:    map[string]*oaSchema{},
	}
	t := &oaTable{routes: map[string]*oaRoute{}, schemas: map[string]*oaSchema{}}
	names := make([]string, 0, len(cc.schemas))
	for n := range cc.schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.schemas[n] = cc.schemaRef("#/components/schemas/"+n, "components/schemas/"+n)
	}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		item := d.Paths[p]
		var shared []any
		if ps, ok := item["parameters"]; ok {
			shared, _ = ps.([]any)
		}
		for m, raw := range item {
			switch {
			case m == "parameters" || m == "summary" || m == "description":
				continue
			case !oaKnown(oaMethods, m):
				cc.errorf("%s: unsupported path item key %q", p, m)
				continue
			}
			opm, ok := raw.(map[string]any)
			if !ok {
				cc.errorf("%s %s: not an object", m, p)
				continue
			}
			op := cc.operation(strings.ToUpper(m)+" "+p, shared, opm)
			t.all = append(t.all, op)
			for _, ep := range oaEchoPaths(p) {
				if t.routes[ep] == nil {
					t.routes[ep] = new(oaRoute)
				}
				t.routes[ep][oaMethodIndex(strings.ToUpper(m))] = op
			}
		}
	}
	if len(cc.errs) > 0 {
		return t, errors.New("openapi: " + strings.Join(cc.errs, "; "))
	}
	return t, nil
}

// oaEchoPaths turns a document path into echo route templates: "{name}"
// is ":name", and a last segment "{path}" is also echo's "*" (see
// specPath in routes_test.go).
func oaEchoPaths(p string) []string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '{' {
			if j := strings.IndexByte(p[i:], '}'); j > 0 {
				b.WriteByte(':')
				b.WriteString(p[i+1 : i+j])
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	out := []string{b.String()}
	if strings.HasSuffix(p, "/{path}") {
		out = append(out, strings.TrimSuffix(p, "{path}")+"*")
	}
	return out
}

func (cc *oaCompiler) operation(name string, shared []any, m map[string]any) *oaOp {
	op := &oaOp{}
	for k := range m {
		if !oaKnown(oaOpKeywords, k) {
			cc.errorf("%s: unsupported operation keyword %q", name, k)
		}
	}
	ps, _ := m["parameters"].([]any)
	seen := map[string]int{}
	for _, raw := range append(append([]any{}, shared...), ps...) {
		p := cc.parameter(name, raw)
		if p == nil {
			continue
		}
		k := p.in + " " + strings.ToLower(p.name)
		if i, dup := seen[k]; dup { // an operation's own overrides the path's
			op.params[i] = p
			continue
		}
		seen[k] = len(op.params)
		op.params = append(op.params, p)
	}
	for _, p := range op.params {
		// A path parameter is there when the route matched; only a
		// constrained one is worth a look.
		if p.in == "path" && p.schema.trivialParam() {
			continue
		}
		if p.required || !p.schema.trivialParam() {
			op.checked = append(op.checked, p)
			if p.required && p.in == "query" {
				op.needQuery = true
			}
		}
	}
	if rb, ok := m["requestBody"]; ok {
		cc.requestBody(name, op, rb)
	}
	if sec, ok := m["security"].([]any); ok {
		op.secured = cc.needsBasic(name, sec)
	}
	return op
}

// needsBasic: does every alternative of the security requirement need
// HTTP basic credentials? (An empty alternative {} makes it optional.)
func (cc *oaCompiler) needsBasic(name string, sec []any) bool {
	if len(sec) == 0 {
		return false
	}
	for _, alt := range sec {
		req, _ := alt.(map[string]any)
		basic := false
		for scheme := range req {
			s, ok := cc.schemes[scheme].(map[string]any)
			if !ok {
				cc.errorf("%s: unknown security scheme %q", name, scheme)
				continue
			}
			if s["type"] == "http" && strings.EqualFold(fmt.Sprint(s["scheme"]), "basic") {
				basic = true
			}
		}
		if !basic {
			return false
		}
	}
	return true
}

func (cc *oaCompiler) parameter(op string, raw any) *oaParam {
	m, ok := raw.(map[string]any)
	if !ok {
		cc.errorf("%s: parameter is not an object", op)
		return nil
	}
	if ref, ok := m["$ref"].(string); ok {
		const prefix = "#/components/parameters/"
		target, found := cc.params[strings.TrimPrefix(ref, prefix)]
		if !strings.HasPrefix(ref, prefix) || !found {
			cc.errorf("%s: unresolved parameter $ref %q", op, ref)
			return nil
		}
		if m, ok = target.(map[string]any); !ok {
			cc.errorf("%s: parameter %q is not an object", op, ref)
			return nil
		}
	}
	p := &oaParam{}
	p.name, _ = m["name"].(string)
	p.in, _ = m["in"].(string)
	p.required, _ = m["required"].(bool)
	where := op + " parameter " + p.name
	for k := range m {
		if !oaKnown(oaParamKeywords, k) {
			cc.errorf("%s: unsupported parameter keyword %q", where, k)
		}
	}
	switch p.in {
	case "query", "path":
	case "header":
		p.key = textproto.CanonicalMIMEHeaderKey(p.name)
	default:
		cc.errorf("%s: unsupported location %q", where, p.in)
	}
	if p.name == "" {
		cc.errorf("%s: parameter without a name", op)
	}
	p.schema = cc.schema(m["schema"], where)
	if p.schema.types&(oaObject|oaArray|oaNull) != 0 || p.schema.props != nil || p.schema.items != nil {
		cc.errorf("%s: only string, integer, number and boolean parameters are supported", where)
	}
	return p
}

func (cc *oaCompiler) requestBody(name string, op *oaOp, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		cc.errorf("%s: requestBody is not an object", name)
		return
	}
	for k := range m {
		if !oaKnown(oaBodyKeywords, k) {
			cc.errorf("%s: unsupported requestBody keyword %q", name, k)
		}
	}
	op.bodyRequired, _ = m["required"].(bool)
	content, _ := m["content"].(map[string]any)
	for ct, mt := range content {
		mm, _ := mt.(map[string]any)
		for k := range mm {
			if !oaKnown(oaMediaKeywords, k) {
				cc.errorf("%s: unsupported media type keyword %q", name, k)
			}
		}
		s := cc.schema(mm["schema"], name+" body "+ct)
		if ct == "application/json" {
			op.body = s
		}
	}
}

// schemaRef compiles a component schema once; references to it share the
// result (and may be recursive).
func (cc *oaCompiler) schemaRef(ref, where string) *oaSchema {
	if s, ok := cc.done[ref]; ok {
		return s
	}
	const prefix = "#/components/schemas/"
	raw, found := cc.schemas[strings.TrimPrefix(ref, prefix)]
	if !strings.HasPrefix(ref, prefix) || !found {
		cc.errorf("%s: unresolved $ref %q", where, ref)
		s := &oaSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1, want: "any JSON value", compiled: true}
		cc.done[ref] = s
		return s
	}
	s := &oaSchema{}
	cc.done[ref] = s
	cc.fill(s, raw, strings.TrimPrefix(ref, "#/"))
	s.ref = strings.TrimPrefix(ref, prefix)
	return s
}

func (cc *oaCompiler) schema(raw any, where string) *oaSchema {
	if m, ok := raw.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			for k := range m {
				if k != "$ref" && !oaKnown(oaAnnotations, k) {
					cc.errorf("%s: keyword %q next to $ref would be ignored", where, k)
				}
			}
			return cc.schemaRef(ref, where)
		}
	}
	s := &oaSchema{}
	cc.fill(s, raw, where)
	return s
}

func (cc *oaCompiler) fill(s *oaSchema, raw any, where string) {
	s.minLen, s.maxLen, s.minItems, s.maxItems = -1, -1, -1, -1
	s.compiled = true
	defer func() { s.want = s.describe() }()
	if raw == nil {
		return // no schema: anything
	}
	m, ok := raw.(map[string]any)
	if !ok {
		cc.errorf("%s: schema is not an object", where)
		return
	}
	if ref, ok := m["$ref"].(string); ok { // a component that is only a $ref
		*s = *cc.schemaRef(ref, where)
		return
	}
	for k := range m {
		if !oaKnown(oaSchemaKeywords, k) && !oaKnown(oaAnnotations, k) {
			cc.errorf("%s: unsupported schema keyword %q", where, k)
		}
	}
	if t, ok := m["type"]; ok {
		switch t {
		case "object":
			s.types = oaObject
		case "array":
			s.types = oaArray
		case "string":
			s.types = oaString
		case "integer":
			s.types = oaInteger
		case "number":
			s.types = oaNumber
		case "boolean":
			s.types = oaBoolean
		default:
			cc.errorf("%s: unsupported type %v", where, t)
		}
	}
	flag := func(k string) bool {
		v, ok := m[k]
		if !ok {
			return false
		}
		b, isBool := v.(bool)
		if !isBool {
			cc.errorf("%s: %s must be true or false (OpenAPI 3.0)", where, k)
		}
		return b
	}
	if flag("nullable") {
		s.nullable = true
		if s.types != 0 { // an untyped schema takes null anyway
			s.types |= oaNull
		}
	}
	if e, ok := m["enum"]; ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 {
			cc.errorf("%s: enum must be a non-empty list", where)
		}
		for _, v := range list {
			switch v.(type) {
			case string, float64, bool, nil:
			default:
				cc.errorf("%s: enum of objects or arrays is not supported", where)
			}
		}
		s.enum = list
	}
	if f, ok := m["format"]; ok {
		fs, _ := f.(string)
		if !oaKnown(oaFormats, fs) {
			cc.errorf("%s: unsupported format %v", where, f)
		}
		s.format = fs
	}
	num := func(k string) (float64, bool) {
		v, ok := m[k]
		if !ok {
			return 0, false
		}
		f, isNum := v.(float64)
		if !isNum {
			cc.errorf("%s: %s must be a number", where, k)
		}
		return f, isNum
	}
	count := func(k string) int {
		f, ok := num(k)
		if !ok {
			return -1
		}
		if f < 0 || f != math.Trunc(f) {
			cc.errorf("%s: %s must be a whole number", where, k)
			return -1
		}
		return int(f)
	}
	s.min, s.hasMin = num("minimum")
	s.max, s.hasMax = num("maximum")
	s.exclMin, s.exclMax = flag("exclusiveMinimum"), flag("exclusiveMaximum")
	s.minLen, s.maxLen = count("minLength"), count("maxLength")
	s.minItems, s.maxItems = count("minItems"), count("maxItems")
	if p, ok := m["pattern"]; ok {
		ps, _ := p.(string)
		re, err := regexp.Compile(ps)
		if err != nil {
			cc.errorf("%s: pattern: %v", where, err)
		} else {
			s.pattern = re
		}
	}
	if props, ok := m["properties"]; ok {
		pm, ok := props.(map[string]any)
		if !ok {
			cc.errorf("%s: properties must be an object", where)
		}
		s.props = make(map[string]*oaSchema, len(pm))
		for k, v := range pm {
			s.props[k] = cc.schema(v, where+"."+k)
		}
	}
	if r, ok := m["required"]; ok {
		list, ok := r.([]any)
		if !ok {
			cc.errorf("%s: required must be a list of property names", where)
		}
		s.reqIndex = map[string]int{}
		for _, v := range list {
			name, ok := v.(string)
			if !ok {
				cc.errorf("%s: required must list names", where)
				continue
			}
			s.reqIndex[name] = len(s.required)
			s.required = append(s.required, name)
		}
		if len(s.required) > 64 {
			cc.errorf("%s: more than 64 required properties", where)
		}
	}
	if a, ok := m["additionalProperties"]; ok {
		switch a := a.(type) {
		case bool:
			s.noAddl = !a
		case map[string]any:
			s.addl = cc.schema(a, where+".additionalProperties")
		default:
			cc.errorf("%s: additionalProperties must be a boolean or a schema", where)
		}
	}
	if it, ok := m["items"]; ok {
		s.items = cc.schema(it, where+"[]")
	}
	if s.types == oaArray && s.items == nil {
		cc.errorf("%s: an array schema needs items", where)
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			cc.errorf("%s: %s must be a non-empty list", where, k)
			continue
		}
		var out []*oaSchema
		for i, alt := range list {
			out = append(out, cc.schema(alt, fmt.Sprintf("%s.%s[%d]", where, k, i)))
		}
		switch k {
		case "oneOf":
			s.oneOf = out
		case "anyOf":
			s.anyOf = out
		default:
			s.allOf = out
		}
	}
}

// describe says in words what a valid value is.
func (s *oaSchema) describe() string {
	w := s.describeOwn()
	if len(s.allOf) == 0 {
		return w
	}
	var all []string
	for _, a := range s.allOf {
		all = append(all, a.want)
	}
	if w != "any JSON value" {
		return w + " and " + strings.Join(all, " and ")
	}
	w = strings.Join(all, " and ")
	if s.nullable {
		w += " or null"
	}
	return w
}

func (s *oaSchema) describeOwn() string {
	if len(s.enum) > 0 {
		parts := make([]string, len(s.enum))
		for i, e := range s.enum {
			parts[i] = oaShowEnum(e)
		}
		w := "one of " + strings.Join(parts, ", ")
		if len(s.enum) == 1 {
			w = parts[0]
		}
		if s.nullable {
			w += " or null"
		}
		return w
	}
	var alts []string
	for _, a := range append(append([]*oaSchema{}, s.oneOf...), s.anyOf...) {
		if a.want == "" && a.compiled {
			a.want = a.describe() // a recursive reference still being compiled
		}
		alts = append(alts, a.want)
	}
	var w []string
	for _, t := range []struct {
		bit  uint8
		word string
	}{{oaObject, "an object"}, {oaArray, "an array"}, {oaString, "a string"}, {oaInteger, "an integer"}, {oaNumber, "a number"}, {oaBoolean, "true or false"}} {
		if s.types&t.bit != 0 {
			w = append(w, t.word+s.bounds(t.bit))
		}
	}
	if len(w) == 0 && len(alts) > 0 {
		if s.nullable {
			alts = append(alts, "null")
		}
		return strings.Join(alts, ", or ")
	}
	if len(w) == 0 {
		return "any JSON value" // (null too)
	}
	if s.nullable {
		w = append(w, "null")
	}
	return strings.Join(w, " or ")
}

func (s *oaSchema) bounds(bit uint8) string {
	n := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	var parts []string
	switch bit {
	case oaInteger, oaNumber:
		switch {
		case s.hasMin && s.hasMax && !s.exclMin && !s.exclMax:
			parts = append(parts, "between "+n(s.min)+" and "+n(s.max))
		default:
			if s.hasMin {
				parts = append(parts, map[bool]string{false: "of at least ", true: "greater than "}[s.exclMin]+n(s.min))
			}
			if s.hasMax {
				parts = append(parts, map[bool]string{false: "of at most ", true: "less than "}[s.exclMax]+n(s.max))
			}
		}
	case oaString:
		switch s.format {
		case "byte":
			parts = append(parts, "in base64")
		case "date-time":
			parts = append(parts, "with an RFC 3339 date and time")
		}
		if s.minLen >= 0 {
			parts = append(parts, fmt.Sprintf("of at least %d characters", s.minLen))
		}
		if s.maxLen >= 0 {
			parts = append(parts, fmt.Sprintf("of at most %d characters", s.maxLen))
		}
		if s.pattern != nil {
			parts = append(parts, "matching "+s.pattern.String())
		}
	case oaArray:
		if s.minItems >= 0 {
			parts = append(parts, fmt.Sprintf("of at least %d items", s.minItems))
		}
		if s.maxItems >= 0 {
			parts = append(parts, fmt.Sprintf("of at most %d items", s.maxItems))
		}
	case oaObject:
		if len(s.required) > 0 {
			parts = append(parts, "with "+strings.Join(s.required, ", "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " and ")
}

func oaShowEnum(e any) string {
	switch e := e.(type) {
	case string:
		return "'" + e + "'"
	case nil:
		return "null"
	}
	return fmt.Sprint(e)
}
