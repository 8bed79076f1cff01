package validate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/openapi"
)

// TestValidateBodyPassThrough: the body a handler reads is the body sent,
// validated or not (too large, chunked, not JSON).
func TestValidateBodyPassThrough(t *testing.T) {
	doc := []byte(`{"openapi": "3.0.3", "paths": {"/echo/{id}": {"post": {
		"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
		"requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["a"], "additionalProperties": false,
			"properties": {"a": {"type": "string", "minLength": 1, "maxLength": 3}, "b": {"type": "string", "format": "byte"}, "n": {"type": "number", "nullable": true, "exclusiveMaximum": true, "maximum": 10},
				"m": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["max"]}]},
				"o": {"allOf": [{"type": "object", "required": ["x"]}, {"type": "object", "required": ["y"]}], "nullable": true}}}}}},
		"responses": {}}}}, "components": {}}`)
	tab, err := compileOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	v := &oaValidator{t: tab, maxBody: 64, auth: func(echo.Context) (*mapping.UserInfo, error) { return nil, nil }}
	e := echo.New()
	e.Use(v.middleware)
	e.POST("/echo/:id", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/octet-stream", b)
	})
	ts := httptest.NewServer(e)
	defer ts.Close()
	big := `{"a": "x", "pad": "` + strings.Repeat("y", 100) + `"}` // over maxBody: not validated
	for _, tc := range []struct {
		path, ctype string
		body        io.Reader
		sent        string
		want        int
		reason      string
	}{
		{"/echo/1", "application/json", strings.NewReader(" {\"a\": \"x\"}\n"), " {\"a\": \"x\"}\n", 200, ""},
		{"/echo/1", "application/json; charset=utf-8", strings.NewReader(`{"a": "xyz", "b": "AAEC", "n": null}`), `{"a": "xyz", "b": "AAEC", "n": null}`, 200, ""},
		{"/echo/1", "text/plain", strings.NewReader(`{"a": 1}`), `{"a": 1}`, 200, ""},
		{"/echo/1", "application/json", io.MultiReader(strings.NewReader(`{"a":`), strings.NewReader(` "z"}`)), `{"a": "z"}`, 200, ""}, // chunked
		{"/echo/1", "application/json", strings.NewReader(big), big, 200, ""},
		{"/echo/1", "application/json", io.MultiReader(strings.NewReader(big)), big, 200, ""}, // chunked and too large
		{"/echo/0", "application/json", strings.NewReader(`{"a": "x"}`), "", 400, "path parameter id must be an integer of at least 1, got '0'"},
		{"/echo/x", "application/json", strings.NewReader(`{"a": "x"}`), "", 400, "path parameter id must be an integer of at least 1, got 'x'"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": ""}`), "", 400, `request body field 'a' must be a string of at least 1 characters and of at most 3 characters, got ""`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "\u00e9\u00e9\u00e9\u00e9"}`), "", 400, "request body field 'a' must be a string of at least 1 characters"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "b": "!!"}`), "", 400, "request body field 'b' must be a string in base64"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "n": 10}`), "", 400, "request body field 'n' must be a number less than 10 or null, got 10"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "c": 1}`), "", 400, "request body field 'c' is not a known field of the object (a, b, m, n, o)"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": 5, "o": {"x": 1, "y": [2]}}`), `{"a": "x", "m": 5, "o": {"x": 1, "y": [2]}}`, 200, ""},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": "max", "o": null}`), `{"a": "x", "m": "max", "o": null}`, 200, ""},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": "min"}`), "", 400, `request body field 'm' must be an integer, or 'max', got "min"`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "o": {"x": 1}}`), "", 400, `request body field 'o' must be an object with x and an object with y or null, got {"x": 1}`},
		{"/echo/1", "application/json", strings.NewReader(`{"\u0061": "x", "\q": 1}`), "", 400, "request body is not valid JSON: bad escape"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "\u0063": 1}`), "", 400, "request body field 'c' is not a known field"},
	} {
		req, _ := http.NewRequest("POST", ts.URL+tc.path, tc.body)
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || tc.want == 200 && string(b) != tc.sent || tc.want != 200 && !strings.Contains(string(b), jsonEscape(tc.reason)) {
			t.Errorf("%s %q: %d %s, want %d %q", tc.path, tc.sent, resp.StatusCode, b, tc.want, tc.reason)
		}
	}
}

// jsonEscape is how s appears inside a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestOpenAPICompiles: every operation of the document compiles (no
// unresolved $ref, no keyword the validator would ignore); gateway's
// TestRoutesCompiled checks that every served route finds its operation.
func TestOpenAPICompiles(t *testing.T) {
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		t.Fatalf("the OpenAPI document uses what the validator does not support: %v\nsupported schema keywords: %v; annotations: %v; formats: %v",
			err, oaSchemaKeywords, oaAnnotations, oaFormats)
	}
	for name, sc := range tab.schemas {
		if !sc.compiled || sc.want == "" {
			t.Errorf("schema %s did not compile", name)
		}
	}

	// What the compiler must refuse rather than ignore.
	for _, tc := range []struct{ doc, want string }{
		{`"schema": {"type": "object", "minProperties": 1}`, `unsupported schema keyword "minProperties"`},
		{`"schema": {"not": {"type": "string"}}`, `unsupported schema keyword "not"`},
		{`"schema": {"type": "string", "format": "uuid"}`, "unsupported format uuid"},
		{`"schema": {"$ref": "#/components/schemas/Missing"}`, `unresolved $ref "#/components/schemas/Missing"`},
		{`"schema": {"$ref": "#/components/schemas/Missing", "type": "string"}`, `keyword "type" next to $ref`},
		{`"schema": {"type": "array"}`, "an array schema needs items"},
		{`"schema": {"type": "string", "pattern": "("}`, "pattern: error parsing regexp"},
		{`"schema": {"type": "null"}`, "unsupported type null"},
		{`"schema": {"type": "object", "properties": {"a": {"type": "string", "required": true}}}`, "required must be a list"},
		{`"schema": {"type": "integer", "exclusiveMinimum": 0}`, "exclusiveMinimum must be true or false"},
	} {
		doc := `{"paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {` + tc.doc + `}}}, "responses": {}}}}, "components": {"schemas": {}}}`
		if _, err := compileOpenAPI([]byte(doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.doc, err, tc.want)
		}
	}
	for _, tc := range []struct{ param, want string }{
		{`{"$ref": "#/components/parameters/Nope"}`, "unresolved parameter $ref"},
		{`{"name": "c", "in": "cookie", "schema": {"type": "string"}}`, `unsupported location "cookie"`},
		{`{"name": "q", "in": "query", "content": {"application/json": {}}}`, `unsupported parameter keyword "content"`},
		{`{"name": "q", "in": "query", "style": "deepObject", "schema": {"type": "object"}}`, `unsupported parameter keyword "style"`},
		{`{"name": "q", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}`, "only string, integer, number and boolean parameters"},
	} {
		doc := `{"paths": {"/x": {"get": {"parameters": [` + tc.param + `], "responses": {}}}}, "components": {}}`
		if _, err := compileOpenAPI([]byte(doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.param, err, tc.want)
		}
	}
}

// TestValidateJSONAgreesWithEncodingJSON: with a schema that takes
// anything, the scanner accepts exactly what encoding/json accepts.
func TestValidateJSONAgreesWithEncodingJSON(t *testing.T) {
	anything := &oaSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	for _, in := range vdSeeds {
		err := oaValidateJSON(anything, []byte(in))
		if (err == nil) != json.Valid([]byte(in)) {
			t.Errorf("%q: scanner says %v, encoding/json valid=%v", in, err, json.Valid([]byte(in)))
		}
	}
}

var vdSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `-0.5e+3`, `1E9`, `true`, `false`, `null`, ` {"a" : [1, 2.5, "x", null, true, {"b": {}}]} `,
	`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `"\x"`, `"\u12"`, `"\u00e9\ud83d\ude00\ud800"`, "\"a\tb\"", `"\/\b\f\n\r\t\\\""`,
	`{"a" 1}`, `{1: 2}`, `[`, `{`, `"`, `tru`, `nul`, `{"a":1}{}`, `[[[[[]]]]]`, "\xff", `"` + "\xff\xfe" + `"`, `[1 2]`, "",
	`[{"routing_key": "q", "payload": "x", "properties": {"priority": 1e2, "delivery_mode": 2.0}}]`,
	`{"durable": "true", "auto_delete": true, "arguments": {"x": [1]}}`,
}

// FuzzValidateJSON: the body validator never panics on any input, with
// the schemas of the document; with a schema that takes anything it
// accepts exactly what encoding/json accepts.
func FuzzValidateJSON(f *testing.F) {
	for _, s := range vdSeeds {
		f.Add([]byte(s))
	}
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		f.Fatal(err)
	}
	var schemas []*oaSchema
	for _, op := range tab.all {
		if op.body != nil {
			schemas = append(schemas, op.body)
		}
	}
	anything := &oaSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range schemas {
			oaValidateJSON(s, b)
			oaValidateJSON(s, b[:len(b)/2]) // and cut short
		}
		err := oaValidateJSON(anything, b)
		if err != nil && strings.Contains(err.Error(), "nests deeper") {
			return
		}
		if (err == nil) != json.Valid(b) {
			t.Fatalf("%q: scanner says %v, encoding/json valid=%v", b, err, json.Valid(b))
		}
	})
}

// BenchmarkValidatePublish is the validator's cost on POST
// /v1/publish/{exchange}/{routing_key}, the busiest route.
//
//   - no-query: headers checked, nothing to parse: no allocation.
//   - query: echo parses the query once (c.QueryParams) and the handler
//     reads it from there (c.QueryParam), so the allocations shown are the
//     parse the handler would make anyway; the "+handler" pair shows that
//     the validator adds none.
func BenchmarkValidatePublish(b *testing.B) {
	e := echo.New()
	mw := Middleware(nil, nil)
	read := func(c echo.Context) error { c.QueryParam("vhost"); c.QueryParam("mandatory"); return nil }
	plain := mw(func(echo.Context) error { return nil })
	withRead := mw(read)
	run := func(b *testing.B, target string, h echo.HandlerFunc) {
		req := httptest.NewRequest("POST", target, bytes.NewReader([]byte("hello")))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("X-Amqp-Priority", "5")
		req.Header.Set("X-Amqp-Delivery-Mode", "persistent")
		rec := httptest.NewRecorder()
		c := e.NewContext(req, rec)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			c.Reset(req, rec)
			c.SetPath("/v1/publish/:exchange/:routing_key")
			if err := h(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no-query", func(b *testing.B) { run(b, "/v1/publish/amq.default/q", plain) })
	b.Run("query", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", plain) })
	b.Run("query+handler", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", withRead) })
	b.Run("handler-alone", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", read) })
}

// BenchmarkValidateBatchBody is the cost of checking a JSON body: a batch
// of 100 messages.
func BenchmarkValidateBatchBody(b *testing.B) {
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		b.Fatal(err)
	}
	op := tab.lookup("POST", "/v1/publish")
	var items []string
	for range 100 {
		items = append(items, `{"exchange": "amq.default", "routing_key": "q", "payload": "hello world", "properties": {"delivery_mode": 2, "headers": {"n": 1}}}`)
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := oaValidateJSON(op.body, body); err != nil {
			b.Fatal(err)
		}
	}
}
