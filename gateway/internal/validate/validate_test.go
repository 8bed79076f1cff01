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
	doc := []byte(`{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/echo/{id}": {"post": {
		"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
		"requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["a"], "additionalProperties": false,
			"properties": {"a": {"type": "string", "minLength": 1, "maxLength": 3}, "b": {"type": "string", "format": "byte"}, "n": {"type": "number", "nullable": true, "exclusiveMaximum": true, "maximum": 10},
				"m": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["max"]}]},
				"o": {"allOf": [{"type": "object", "required": ["x"]}, {"type": "object", "required": ["y"]}], "nullable": true}}}}}},
		"responses": {"200": {"description": "ok"}}}}}, "components": {}}`)
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
		if _, ok := Body(c); ok {
			c.Response().Header().Set("X-Validated", "yes")
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
		{"/echo/0", "application/json", strings.NewReader(`{"a": "x"}`), "", 400, "path parameter id: number must be at least 1, got '0'"},
		{"/echo/x", "application/json", strings.NewReader(`{"a": "x"}`), "", 400, "path parameter id must be an integer of at least 1, got 'x'"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": ""}`), "", 400, `request body field 'a': minimum string length is 1, got ""`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "\u00e9\u00e9\u00e9\u00e9"}`), "", 400, "request body field 'a': maximum string length is 3"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "b": "!!"}`), "", 400, `request body field 'b': string doesn't match the format "byte"`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "n": 10}`), "", 400, "request body field 'n': number must be less than 10, got 10"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "c": 1}`), "", 400, `the request body: property "c" is unsupported`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": 5, "o": {"x": 1, "y": [2]}}`), `{"a": "x", "m": 5, "o": {"x": 1, "y": [2]}}`, 200, ""},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": "max", "o": null}`), `{"a": "x", "m": "max", "o": null}`, 200, ""},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "m": "min"}`), "", 400, `request body field 'm': doesn't match any schema from "anyOf", got "min"`},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "o": {"x": 1}}`), "", 400, `request body field 'o': doesn't match all schemas from "allOf", got {"x":1}`},
		{"/echo/1", "application/json", strings.NewReader(`{"\u0061": "x", "\q": 1}`), "", 400, "request body is not valid JSON: invalid character 'q' in string escape code"},
		{"/echo/1", "application/json", strings.NewReader(`{"a": "x", "\u0063": 1}`), "", 400, `the request body: property "c" is unsupported`},
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
		// The decoded body is handed over exactly when it was validated.
		validated := strings.HasPrefix(tc.ctype, "application/json") && len(tc.sent) <= 64
		if tc.want == 200 && (resp.Header.Get("X-Validated") == "yes") != validated {
			t.Errorf("%s %q (%s): handed over %q, want %v", tc.path, tc.sent, tc.ctype, resp.Header.Get("X-Validated"), validated)
		}
	}
}

// jsonEscape is how s appears inside a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestOpenAPICompiles: the document loads and validates in
// kin-openapi; gateway's TestRoutesCompiled checks that every served
// route finds its operation.
func TestOpenAPICompiles(t *testing.T) {
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.all) == 0 {
		t.Fatal("no operations compiled") // gateway's TestRoutesCompiled checks every served route
	}
	// What the compiler must refuse rather than ignore.
	for _, tc := range []struct{ doc, want string }{
		{`"schema": {"$ref": "#/components/schemas/Missing"}`, "Missing"},
		{`"schema": {"type": "string", "pattern": "("}`, "error parsing regexp"},
	} {
		doc := `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {` + tc.doc + `}}}, "responses": {"200": {"description": "ok"}}}}}, "components": {"schemas": {}}}`
		if _, err := compileOpenAPI([]byte(doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.doc, err, tc.want)
		}
	}
	for _, tc := range []struct{ param, want string }{
		{`{"name": "c", "in": "cookie", "schema": {"type": "string"}}`, `location "cookie" is not validated`},
		{`{"name": "q", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}`, "only string, integer, number and boolean parameters"},
	} {
		doc := `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {"parameters": [` + tc.param + `], "responses": {"200": {"description": "ok"}}}}}, "components": {}}`
		if _, err := compileOpenAPI([]byte(doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.param, err, tc.want)
		}
	}
}

// TestValidateJSONAgreesWithEncodingJSON: the body decoder accepts
// exactly what encoding/json accepts.
func TestValidateJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range vdSeeds {
		_, err := oaDecode([]byte(in))
		if (err == nil) != json.Valid([]byte(in)) {
			t.Errorf("%q: decoder says %v, encoding/json valid=%v", in, err, json.Valid([]byte(in)))
		}
	}
}

// TestValidateDepth: a field table as deep as the core takes passes a
// batch publish; one level more is refused, naming the field.
func TestValidateDepth(t *testing.T) {
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	op := tab.lookup("POST", "/v1/publish")
	nest := func(n int) string { // a headers table of n levels
		return `[{"routing_key": "q", "payload": "x", "properties": {"headers": ` + strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n) + `}}]`
	}
	if _, err := oaValidateJSON(op, []byte(nest(mapping.MaxTableDepth))); err != nil {
		t.Errorf("a table %d deep: %v", mapping.MaxTableDepth, err)
	}
	_, err = oaValidateJSON(op, []byte(nest(mapping.MaxTableDepth+1)))
	if err == nil || !strings.Contains(err.Error(), "request body field '[0].properties.headers.a.a") || !strings.Contains(err.Error(), "nests deeper") {
		t.Errorf("a table %d deep: %v", mapping.MaxTableDepth+1, err)
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
// the schemas of the document, whole or cut short; the decoder accepts
// exactly what encoding/json accepts (but for depth).
func FuzzValidateJSON(f *testing.F) {
	for _, s := range vdSeeds {
		f.Add([]byte(s))
	}
	tab, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		f.Fatal(err)
	}
	var ops []*oaOp
	for _, op := range tab.all {
		if op.body != nil {
			ops = append(ops, op)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, op := range ops {
			oaValidateJSON(op, b)
			oaValidateJSON(op, b[:len(b)/2]) // and cut short
		}
		_, err := oaDecode(b)
		if err != nil && strings.Contains(err.Error(), "nests deeper") {
			return
		}
		if (err == nil) != json.Valid(b) {
			t.Fatalf("%q: decoder says %v, encoding/json valid=%v", b, err, json.Valid(b))
		}
	})
}

// BenchmarkValidatePublish is the validator's cost on POST
// /v1/publish/{exchange}/{routing_key}, the busiest route.
//
//   - bare: no property headers, no query: no library call, no allocation.
//   - no-query: X-Amqp-Priority and X-Amqp-Delivery-Mode, each checked
//     with its kin-openapi schema (about 0.35 µs and 4 allocations each).
//   - query: echo parses the query once (c.QueryParams) and the handler
//     reads it from there (c.QueryParam), so the parse is one the handler
//     would make anyway; "handler-alone" is that parse without validation.
func BenchmarkValidatePublish(b *testing.B) {
	e := echo.New()
	mw := Middleware(nil, nil)
	read := func(c echo.Context) error { c.QueryParam("vhost"); c.QueryParam("mandatory"); return nil }
	plain := mw(func(echo.Context) error { return nil })
	withRead := mw(read)
	run := func(b *testing.B, target string, h echo.HandlerFunc, props bool) {
		req := httptest.NewRequest("POST", target, bytes.NewReader([]byte("hello")))
		req.Header.Set("Content-Type", "text/plain")
		if props {
			req.Header.Set("X-Amqp-Priority", "5")
			req.Header.Set("X-Amqp-Delivery-Mode", "persistent")
		}
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
	b.Run("bare", func(b *testing.B) { run(b, "/v1/publish/amq.default/q", plain, false) })
	b.Run("no-query", func(b *testing.B) { run(b, "/v1/publish/amq.default/q", plain, true) })
	b.Run("query", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", plain, true) })
	b.Run("query+handler", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", withRead, true) })
	b.Run("handler-alone", func(b *testing.B) { run(b, "/v1/publish/amq.default/q?vhost=%2F&mandatory=true", read, true) })
}

// BenchmarkValidateBatchBody is the cost of decoding and checking a JSON
// body, a batch of 100 messages; the handler then uses the decoded value
// instead of decoding the bytes itself.
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
		if _, err := oaValidateJSON(op, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidateReadOnly: request semantics are on when the document marks
// a property readOnly (and off otherwise, where they cost time for
// nothing): a request may not set it.
func TestValidateReadOnly(t *testing.T) {
	doc := `{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema":
		{"type": "object", "properties": {"id": {"type": "string", "readOnly": true}, "name": {"type": "string"}}}}}}, "responses": {"200": {"description": "ok"}}}}}}`
	tab, err := compileOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	op := tab.lookup("POST", "/x")
	if _, err := oaValidateJSON(op, []byte(`{"name": "n"}`)); err != nil {
		t.Errorf("without the readOnly property: %v", err)
	}
	if _, err := oaValidateJSON(op, []byte(`{"name": "n", "id": "i"}`)); err == nil || !strings.Contains(err.Error(), "request body field 'id'") || !strings.Contains(err.Error(), "readOnly") {
		t.Errorf("with the readOnly property: %v", err)
	}
}
