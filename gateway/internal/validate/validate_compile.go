package validate

// Compiling the OpenAPI document with kin-openapi (getkin/kin-openapi):
// the library loads, resolves ($ref) and validates the document once;
// this file only indexes its operations by echo route, so that no
// library router runs per request.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// oaRoute holds a route's operations by method (oaMethodIndex).
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
	name         string     // "POST /v1/publish", for messages and tests
	checked      []*oaParam // the parameters with something to check
	needQuery    bool       // a checked query parameter is required
	body         *openapi3.Schema
	bodyRequired bool
	secured      bool                              // needs HTTP basic credentials
	opts         []openapi3.SchemaValidationOption // oaVisitOpts or oaVisitOptsRequest
}

// oaParam is one parameter.
type oaParam struct {
	name     string
	in       string // query, header, path
	key      string // canonical header name
	required bool
	schema   *openapi3.Schema
	kind     string // the JSON type a value is converted to: string, integer, number, boolean
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

// oaTable is the compiled document.
type oaTable struct {
	routes map[string]*oaRoute // by echo route template
	all    []*oaOp             // every operation
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

// compileOpenAPI loads and validates an OpenAPI 3.0 document and indexes
// its operations.
func compileOpenAPI(doc []byte) (*oaTable, error) {
	ld := openapi3.NewLoader()
	d, err := ld.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	// Examples are documentation; a request is checked against schemas.
	if err := d.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	t := &oaTable{routes: map[string]*oaRoute{}}
	opts := oaVisitOpts
	if bytes.Contains(doc, []byte(`"readOnly"`)) || bytes.Contains(doc, []byte(`"writeOnly"`)) {
		opts = oaVisitOptsRequest
	}
	var errs []string
	for _, p := range d.Paths.InMatchingOrder() {
		item := d.Paths.Value(p)
		for m, o := range item.Operations() {
			op, err := oaOperation(d, m+" "+p, item.Parameters, o)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			op.opts = opts
			t.all = append(t.all, op)
			for _, ep := range oaEchoPaths(p) {
				if t.routes[ep] == nil {
					t.routes[ep] = new(oaRoute)
				}
				t.routes[ep][oaMethodIndex(m)] = op
			}
		}
	}
	if len(errs) > 0 {
		return t, fmt.Errorf("openapi: %s", strings.Join(errs, "; "))
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

func oaOperation(d *openapi3.T, name string, shared openapi3.Parameters, o *openapi3.Operation) (*oaOp, error) {
	op := &oaOp{name: name}
	var params []*openapi3.Parameter
	seen := map[string]int{}
	for _, list := range []openapi3.Parameters{shared, o.Parameters} {
		for _, ref := range list {
			p := ref.Value
			k := p.In + " " + strings.ToLower(p.Name)
			if i, dup := seen[k]; dup { // an operation's own overrides the path's
				params[i] = p
				continue
			}
			seen[k] = len(params)
			params = append(params, p)
		}
	}
	for _, p := range params {
		cp, err := oaParameter(name, p)
		if err != nil {
			return nil, err
		}
		// A path parameter is there when the route matched; only a
		// constrained one is worth a look.
		if !oaTrivial(cp) || cp.required && cp.in != "path" {
			op.checked = append(op.checked, cp)
			if cp.required && cp.in == "query" {
				op.needQuery = true
			}
		}
	}
	if rb := o.RequestBody; rb != nil && rb.Value != nil {
		op.bodyRequired = rb.Value.Required
		// The exact media type: Content.Get would also match "*/*", the
		// raw publish body.
		if mt := rb.Value.Content["application/json"]; mt != nil && mt.Schema != nil {
			op.body = mt.Schema.Value
		}
	}
	if o.Security != nil {
		op.secured = oaNeedsBasic(d, *o.Security)
	}
	return op, nil
}

func oaParameter(op string, p *openapi3.Parameter) (*oaParam, error) {
	cp := &oaParam{name: p.Name, in: p.In, required: p.Required}
	switch p.In {
	case "query", "path":
	case "header":
		cp.key = textproto.CanonicalMIMEHeaderKey(p.Name)
	default:
		return nil, fmt.Errorf("%s parameter %s: location %q is not validated", op, p.Name, p.In)
	}
	if p.Schema == nil || p.Schema.Value == nil {
		return nil, fmt.Errorf("%s parameter %s: no schema", op, p.Name)
	}
	cp.schema = p.Schema.Value
	switch ty := cp.schema.Type; {
	case ty == nil || len(*ty) == 0 || ty.Is("string"):
		cp.kind = "string"
	case ty.Is("integer"), ty.Is("number"), ty.Is("boolean"):
		cp.kind = (*ty)[0]
	default:
		return nil, fmt.Errorf("%s parameter %s: only string, integer, number and boolean parameters are validated", op, p.Name)
	}
	return cp, nil
}

// oaTrivial: does every value of the parameter pass?
func oaTrivial(p *oaParam) bool {
	s := p.schema
	return p.kind == "string" && len(s.Enum) == 0 && s.Pattern == "" && s.MinLength == 0 && s.MaxLength == nil &&
		s.Format == "" && len(s.OneOf)+len(s.AnyOf)+len(s.AllOf) == 0 && s.Not == nil
}

// oaNeedsBasic: does every alternative of the security requirement need
// HTTP basic credentials? (An empty alternative {} makes it optional.)
func oaNeedsBasic(d *openapi3.T, sec openapi3.SecurityRequirements) bool {
	if len(sec) == 0 {
		return false
	}
	for _, alt := range sec {
		basic := false
		for scheme := range alt {
			ref := d.Components.SecuritySchemes[scheme]
			if ref != nil && ref.Value != nil && ref.Value.Type == "http" && strings.EqualFold(ref.Value.Scheme, "basic") {
				basic = true
			}
		}
		if !basic {
			return false
		}
	}
	return true
}
