package validate

// Parameters: each value (text) is converted to the JSON type its schema
// declares and checked with the schema compiled by kin-openapi.

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

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
		if v == "" { // an empty value counts as absent, as the handlers treat it
			if p.required {
				return apiError(http.StatusBadRequest, p.label()+" is required")
			}
			continue
		}
		if err := p.check(v, op.opts); err != nil {
			return apiError(http.StatusBadRequest, p.label()+err.Error()+", got '"+oaClip(v)+"'")
		}
	}
	return nil
}

// check converts v to the parameter's type and validates it; the error
// says what was wrong, without the value: " must be an integer between 1
// and 1000" when v is not of the type, ": " and the library's reason
// otherwise.
func (p *oaParam) check(v string, opts []openapi3.SchemaValidationOption) error {
	var val any = v
	ok := true
	switch p.kind {
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		val, ok = float64(n), err == nil
	case "number":
		f, err := strconv.ParseFloat(v, 64)
		val, ok = f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	case "boolean":
		// What strconv.ParseBool takes (true, false, 1, 0, ...), as the
		// handlers do.
		b, err := strconv.ParseBool(v)
		val, ok = b, err == nil
	}
	if !ok {
		return errors.New(" must be " + p.want())
	}
	if err := p.schema.VisitJSON(val, opts...); err != nil {
		return errors.New(": " + oaReason(err))
	}
	return nil
}

// want says what type (and range) a value of a non-string parameter is.
func (p *oaParam) want() string {
	s := p.schema
	n := func(f *float64) string { return strconv.FormatFloat(*f, 'f', -1, 64) }
	w := map[string]string{"integer": "an integer", "number": "a number", "boolean": "true or false"}[p.kind]
	switch {
	case s.Min != nil && s.Max != nil && !s.ExclusiveMin.IsTrue() && !s.ExclusiveMax.IsTrue():
		w += " between " + n(s.Min) + " and " + n(s.Max)
	case s.Min != nil:
		w += " of at least " + n(s.Min)
	case s.Max != nil:
		w += " of at most " + n(s.Max)
	}
	return w
}

// oaVisitOpts: formats checked (byte, date-time), first error only,
// messages without the schema and value dumps.
var oaVisitOpts = []openapi3.SchemaValidationOption{
	openapi3.EnableFormatValidation(), openapi3.DisableSchemaErrorDetails(),
}

// oaVisitOptsRequest adds request semantics (readOnly properties
// refused), for documents that mark properties readOnly or writeOnly:
// VisitAsRequest costs a sorted copy of an object schema's property
// names at every object it visits, so it is on only where it can matter.
var oaVisitOptsRequest = append([]openapi3.SchemaValidationOption{openapi3.VisitAsRequest()}, oaVisitOpts...)

// oaReason is what a kin-openapi error says was wrong, without its
// location prefix (the caller names the field).
func oaReason(err error) string {
	var se *openapi3.SchemaError
	if errors.As(err, &se) && se.Reason != "" {
		return se.Reason
	}
	msg := err.Error()
	if strings.HasPrefix(msg, `Error at "`) {
		if i := strings.Index(msg, `": `); i > 0 {
			msg = msg[i+3:]
		}
	}
	return msg
}

// oaMaxShown bounds how much of a bad value an error message repeats.
const oaMaxShown = 60

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
