package validate

// JSON bodies: decoded once with encoding/json (numbers kept as
// json.Number), bounded in depth by the core's limit, then checked with
// the operation's schema compiled by kin-openapi. The first failure is
// reported with the path of the field.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/warrenmq/warren/mapping"
)

// oaMaxDepth bounds the nesting of validated JSON bodies: the core's
// limit on field tables (mapping.MaxTableDepth) plus the envelope a table
// sits in (a batch publish's array, item and properties object), so that
// the validator refuses no table the core would take; the shared codec
// (msgcodec) names the field of a table that is too deep for the core.
const oaMaxDepth = mapping.MaxTableDepth + 3

// oaDecode parses a JSON body: one value, white space around it, nesting
// at most oaMaxDepth deep.
func oaDecode(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, apiError(http.StatusBadRequest, "the request body is not valid JSON: it ends before the value does")
		}
		return nil, apiError(http.StatusBadRequest, "the request body is not valid JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, apiError(http.StatusBadRequest, fmt.Sprintf("the request body is not valid JSON: data after the JSON value at offset %d", dec.InputOffset()))
	}
	var path []string
	if oaTooDeep(v, 1, &path) {
		return nil, apiError(http.StatusBadRequest, fmt.Sprintf("%s nests deeper than %d levels (a field table may nest %d deep)",
			oaWhere(v, path), oaMaxDepth, mapping.MaxTableDepth))
	}
	return v, nil
}

// oaTooDeep: does a container of v sit deeper than oaMaxDepth (v's own
// level is d)? path is where, reversed.
func oaTooDeep(v any, d int, path *[]string) bool {
	switch v := v.(type) {
	case map[string]any:
		if d > oaMaxDepth {
			return true
		}
		for k, e := range v {
			if oaTooDeep(e, d+1, path) {
				*path = append(*path, k)
				return true
			}
		}
	case []any:
		if d > oaMaxDepth {
			return true
		}
		for i, e := range v {
			if oaTooDeep(e, d+1, path) {
				*path = append(*path, strconv.Itoa(i))
				return true
			}
		}
	}
	return false
}

// oaValidateJSON validates body against the operation's body schema and
// returns the decoded value; the error is a 400 naming the field.
func oaValidateJSON(op *oaOp, body []byte) (any, error) {
	v, err := oaDecode(body)
	if err != nil {
		return nil, err
	}
	if err := op.body.VisitJSON(v, op.opts...); err != nil {
		var path []string
		got := ""
		var se *openapi3.SchemaError
		if errors.As(err, &se) {
			path = se.JSONPointer()
			if se.SchemaField != "required" { // the path ends with the missing field
				got = ", got " + oaShow(se.Value)
			}
		}
		return nil, apiError(http.StatusBadRequest, oaWhereForward(v, path)+": "+oaReason(err)+got)
	}
	return v, nil
}

// oaWhere names the field at a reversed path in v.
func oaWhere(v any, rev []string) string {
	path := make([]string, len(rev))
	for i, p := range rev {
		path[len(rev)-1-i] = p
	}
	return oaWhereForward(v, path)
}

// oaWhereForward names the field at path in v: "request body field
// 'messages[3].properties.priority'", or "the request body".
func oaWhereForward(v any, path []string) string {
	if len(path) == 0 {
		return "the request body"
	}
	var b strings.Builder
	b.WriteString("request body field '")
	for i, p := range path {
		if a, ok := v.([]any); ok {
			b.WriteString("[" + p + "]")
			if n, err := strconv.Atoi(p); err == nil && n >= 0 && n < len(a) {
				v = a[n]
			}
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
		if m, ok := v.(map[string]any); ok {
			v = m[p]
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// oaShow is a bad value as JSON, clipped.
func oaShow(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return oaClip(string(b))
}
