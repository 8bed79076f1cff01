package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/mapping"
)

// vdServer starts a gateway with a core in t.TempDir() behind a real
// HTTP listener.
func vdServer(t *testing.T) (*Server, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Logger: log}, r)
	ts := httptest.NewServer(s.echo)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
		r.Close()
	})
	return s, ts.URL
}

// vdCall is one request of the tables below.
type vdCall struct {
	method, path string
	body         string
	json         bool     // send Content-Type: application/json
	headers      []string // name, value, ...
	anonymous    bool     // no credentials
}

func (c vdCall) do(t *testing.T, base string) (int, string) {
	t.Helper()
	var body io.Reader
	if c.body != "" || c.json {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.json {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header.Set(c.headers[i], c.headers[i+1])
	}
	if !c.anonymous {
		req.SetBasicAuth("guest", "guest")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestValidateRejects: each kind of bad input gets 400 bad_request with a
// reason that names the parameter or field and what it must be.
func TestValidateRejects(t *testing.T) {
	_, base := vdServer(t)
	for _, tc := range []struct {
		call vdCall
		want string // in the reason
	}{
		// query parameters: type, range, enum
		{vdCall{method: "POST", path: "/v1/queues/q/get?count=abc"}, "query parameter count must be an integer between 1 and 1000, got 'abc'"},
		{vdCall{method: "POST", path: "/v1/queues/q/get?count=0"}, "query parameter count: number must be at least 1, got '0'"},
		{vdCall{method: "POST", path: "/v1/queues/q/get?count=1001"}, "query parameter count: number must be at most 1000, got '1001'"},
		{vdCall{method: "POST", path: "/v1/queues/q/get?ack=sometimes"}, "query parameter ack: value is not one of the allowed values [\"auto\",\"manual\"], got 'sometimes'"},
		{vdCall{method: "POST", path: "/v1/publish/amq.default/q?mandatory=maybe", body: "x"}, "query parameter mandatory must be true or false, got 'maybe'"},
		{vdCall{method: "POST", path: "/v1/nack/tok?requeue=perhaps"}, "query parameter requeue must be true or false"},
		{vdCall{method: "GET", path: "/v1/events?queue=q&prefetch=0"}, "query parameter prefetch: number must be at least 1, got '0'"},
		{vdCall{method: "GET", path: "/api/queues?page=x"}, "query parameter page must be an integer of at least 1, got 'x'"},
		{vdCall{method: "GET", path: "/api/queues/?page=1&page_size=501"}, "query parameter page_size: number must be at most 500, got '501'"},
		{vdCall{method: "DELETE", path: "/api/queues/%2F/q?if-unused=maybe"}, "query parameter if-unused must be true or false"},
		// headers
		{vdCall{method: "POST", path: "/v1/publish/amq.default/q", body: "x", headers: []string{"X-Amqp-Priority", "300"}}, "header X-Amqp-Priority: number must be at most 255, got '300'"},
		{vdCall{method: "POST", path: "/v1/rpc/amq.default/q", body: "x", headers: []string{"X-Amqp-Priority", "high"}}, "header X-Amqp-Priority must be an integer between 0 and 255, got 'high'"},
		{vdCall{method: "POST", path: "/v1/publish/amq.default/", body: "x", headers: []string{"X-Amqp-Delivery-Mode", "3"}}, "header X-Amqp-Delivery-Mode: value is not one of the allowed values [\"1\",\"2\",\"transient\",\"non-persistent\",\"persistent\"], got '3'"},
		// JSON bodies: type, enum, required, nesting, syntax
		{vdCall{method: "PUT", path: "/api/queues/%2F/q", json: true, body: `{"durable": "yes"}`}, `request body field 'durable': value doesn't match any schema from "oneOf", got "yes"`},
		{vdCall{method: "PUT", path: "/api/queues/%2F/q", json: true, body: `{"arguments": [1]}`}, `request body field 'arguments': value must be an object, got [1]`},
		{vdCall{method: "PUT", path: "/api/exchanges/%2F/x", json: true, body: `{"durable": true}`}, `request body field 'type': property "type" is missing`},
		{vdCall{method: "PUT", path: "/api/exchanges/%2F/x", json: true, body: `{"type": "bogus"}`}, `request body field 'type': value is not one of the allowed values ["direct","fanout","topic","headers"], got "bogus"`},
		{vdCall{method: "PUT", path: "/api/permissions/%2F/guest", json: true, body: `{"configure": ".*", "read": ".*"}`}, `request body field 'write': property "write" is missing`},
		{vdCall{method: "POST", path: "/api/queues/%2F/q/get", json: true, body: `{"count": 1, "ackmode": "keep", "encoding": "auto"}`}, `request body field 'ackmode': value is not one of the allowed values ["ack_requeue_true"`},
		{vdCall{method: "POST", path: "/api/users/bulk-delete", json: true, body: `{"users": ["a", 7]}`}, "request body field 'users[1]': value must be a string, got 7"},
		{vdCall{method: "POST", path: "/api/exchanges/%2F/amq.default/publish", json: true, body: `{"routing_key": "q", "payload": "x", "properties": {"delivery_mode": true}}`}, `request body field 'properties.delivery_mode': value doesn't match any schema from "oneOf", got true`},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `[{"routing_key": "q"}]`}, `request body field '[0].payload': property "payload" is missing`},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `[{"routing_key": "q", "payload": "x", "properties": {"priority": 300}}]`}, "request body field '[0].properties.priority': number must be at most 255, got 300"},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `[{"routing_key": "q", "payload": "x", "properties": {"delivery_mode": 1.5}}]`}, "request body field '[0].properties.delivery_mode': value is not one of the allowed values [1,2], got 1.5"},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `{"routing_key": "q", "payload": "x"}`}, "the request body: value must be an array, got {"},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `[{"routing_key": "q", "payload": "x"`}, "the request body is not valid JSON: it ends before the value does"},
		{vdCall{method: "POST", path: "/v1/publish", json: true, body: `[] []`}, "the request body is not valid JSON: data after the JSON value"},
		{vdCall{method: "POST", path: "/v1/route/amq.headers/", json: true, body: `{"headers": "x-match=all"}`}, `request body field 'headers': value must be an object, got "x-match=all"`},
		{vdCall{method: "POST", path: "/v1/tokens", json: true, body: `{"ttl_seconds": "600"}`}, `request body field 'ttl_seconds': value must be an integer, got "600"`},
		{vdCall{method: "POST", path: "/api/definitions", json: true, body: `{"permissions": [{"user": 1}]}`}, "request body field 'permissions[0].user': value must be a string, got 1"},
		{vdCall{method: "POST", path: "/api/users/bulk-delete", json: true}, "the request body is required"},
	} {
		code, body := tc.call.do(t, base)
		var e ErrorBody
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error != "bad_request" || !strings.Contains(e.Reason, tc.want) {
			t.Errorf("%s %s %s: %d %s\nwant 400 bad_request with %q", tc.call.method, tc.call.path, tc.call.body, code, body, tc.want)
		}
	}
}

// TestValidateAuthFirst: without credentials a request that is not valid
// is still 401, on /v1/ and /api/, for parameters and bodies.
func TestValidateAuthFirst(t *testing.T) {
	_, base := vdServer(t)
	for _, c := range []vdCall{
		{method: "POST", path: "/v1/queues/q/get?count=abc", anonymous: true},
		{method: "POST", path: "/v1/publish/amq.default/q", body: "x", headers: []string{"X-Amqp-Priority", "300"}, anonymous: true},
		{method: "POST", path: "/v1/publish", json: true, body: `[{}]`, anonymous: true},
		{method: "PUT", path: "/api/queues/%2F/q", json: true, body: `{"durable": "yes"}`, anonymous: true},
		{method: "GET", path: "/api/queues?page=x", anonymous: true},
		{method: "POST", path: "/v1/tokens", json: true, body: `{"ttl_seconds": "x"}`, anonymous: true},
	} {
		if code, body := c.do(t, base); code != http.StatusUnauthorized || !strings.Contains(body, "not_authorised") {
			t.Errorf("%s %s without credentials: %d %s, want 401", c.method, c.path, code, body)
		}
	}
}

// TestValidatePasses: valid requests reach the handlers unchanged, with
// extra query parameters, raw JSON-looking publish bodies and RabbitMQ's
// string-typed booleans and numbers.
func TestValidatePasses(t *testing.T) {
	_, base := vdServer(t)
	ok := func(c vdCall, want int) string {
		t.Helper()
		code, body := c.do(t, base)
		if code != want {
			t.Fatalf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, want)
		}
		return body
	}
	ok(vdCall{method: "PUT", path: "/api/queues/%2F/vq", json: true, body: `{"durable": "true", "auto_delete": false, "arguments": {"x-max-length": 10}}`}, http.StatusCreated)
	ok(vdCall{method: "PUT", path: "/api/vhosts/empty-body", json: true}, http.StatusCreated)
	ok(vdCall{method: "GET", path: "/api/queues?columns=name&page=1&page_size=5&sort_reverse=true&unknown=1"}, http.StatusOK)

	// The raw publish body is never parsed, whatever its Content-Type.
	raw := `{"not": json` + "\x00\xff"
	ok(vdCall{method: "POST", path: "/v1/publish/amq.default/vq?mandatory=true&vhost=%2F&extra=1", json: true, body: raw,
		headers: []string{"X-Amqp-Priority", "5", "X-Amqp-Delivery-Mode", "non-persistent"}}, http.StatusOK)
	got := ok(vdCall{method: "POST", path: "/v1/queues/vq/get?count=1&ack=auto"}, http.StatusOK)
	var gm struct {
		Messages []struct {
			Payload         string `json:"payload"`
			PayloadEncoding string `json:"payload_encoding"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(got), &gm); err != nil || len(gm.Messages) != 1 {
		t.Fatalf("get: %s", got)
	}

	// A validated JSON body reaches the handler byte for byte.
	payload := "h\u00e9llo \\\"quoted\\\" \\ud83d\\ude00"
	ok(vdCall{method: "POST", path: "/api/exchanges/%2F/amq.default/publish", json: true,
		body: `  {"routing_key": "vq", "payload": "` + payload + `", "payload_encoding": "string", "properties": {"delivery_mode": "2", "priority": 3, "expiration": 60000}}` + "\n"}, http.StatusOK)
	got = ok(vdCall{method: "POST", path: "/api/queues/%2F/vq/get", json: true, body: `{"count": "1", "ackmode": "ack_requeue_false", "encoding": "auto", "truncate": 50000}`}, http.StatusOK)
	var mm []struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal([]byte(got), &mm); err != nil || len(mm) != 1 || mm[0].Payload != "h\u00e9llo \"quoted\" \U0001F600" {
		t.Fatalf("management get: %s", got)
	}

	// A batch of valid items: per-item results come from the handler.
	got = ok(vdCall{method: "POST", path: "/v1/publish", json: true, body: `[{"exchange": "", "routing_key": "vq", "payload": "AAEC", "payload_encoding": "base64", "properties": {"delivery_mode": 1, "headers": {"n": [1, {"x": null}]}}}]`}, http.StatusOK)
	if !strings.Contains(got, `"status":200`) {
		t.Fatalf("batch: %s", got)
	}
}

// TestRoutesCompiled: every served route finds its operation in the
// compiled OpenAPI document, so the validator checks it.
func TestRoutesCompiled(t *testing.T) {
	s := New(Config{}, nil)
	for _, r := range s.echo.Routes() {
		if r.Method == "echo_route_any" || strings.HasPrefix(r.Path, "/ui") || undocumented(r.Path) {
			continue
		}
		if !validate.Documented(r.Method, r.Path) {
			t.Errorf("route %s %s has no compiled operation", r.Method, r.Path)
		}
	}
}

// TestValidateHandoff: a batch publish, a route dry run and a token
// request give the same result whether the handler takes the body the
// validator decoded (application/json) or decodes the bytes itself (no
// JSON Content-Type, so not validated).
func TestValidateHandoff(t *testing.T) {
	_, base := vdServer(t)
	do := func(c vdCall) string {
		t.Helper()
		code, body := c.do(t, base)
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
		return body
	}
	do(vdCall{method: "PUT", path: "/api/queues/%2F/hq", json: true, body: `{"durable": false}`})
	item := `{"exchange": "amq.default", "routing_key": "hq", "payload": "aGk=", "payload_encoding": "base64", "properties": {
		"content_type": "text/plain", "content_encoding": "gzip", "headers": {"n": 1, "f": 1.5, "s": "x", "b": true, "l": [1, "a", {"d": null}], "t": {"u": 2}},
		"delivery_mode": 2, "priority": 7, "correlation_id": "c", "reply_to": "r", "expiration": "60000", "message_id": "m",
		"timestamp": 1700000000, "type": "ty", "user_id": "guest", "app_id": "ap", "cluster_id": "cl"}}`
	var got [2]string
	for i, asJSON := range []bool{true, false} {
		c := vdCall{method: "POST", path: "/v1/publish", json: asJSON, body: "[" + item + "]"}
		if !asJSON {
			c.headers = []string{"Content-Type", "text/plain"}
		}
		if r := do(c); !strings.Contains(r, `"status":200`) {
			t.Fatalf("batch (JSON %v): %s", asJSON, r)
		}
		got[i] = do(vdCall{method: "POST", path: "/v1/queues/hq/get?count=1&ack=auto"})
	}
	if got[0] != got[1] || !strings.Contains(got[0], `"priority":7`) || !strings.Contains(got[0], `"timestamp":1700000000`) || !strings.Contains(got[0], `"expiration":"60000"`) {
		t.Errorf("validated body gave\n%s\nthe handler's own decode gave\n%s", got[0], got[1])
	}

	do(vdCall{method: "PUT", path: "/api/exchanges/%2F/hx", json: true, body: `{"type": "headers"}`})
	do(vdCall{method: "POST", path: "/api/bindings/%2F/e/hx/q/hq", json: true, body: `{"arguments": {"x-match": "all", "k": 5}}`})
	for _, asJSON := range []bool{true, false} {
		c := vdCall{method: "POST", path: "/v1/route/hx/", json: asJSON, body: `{"headers": {"k": 5}}`}
		if r := do(c); !strings.Contains(r, `"queues":["hq"]`) {
			t.Errorf("route (JSON %v): %s", asJSON, r)
		}
	}
	for _, asJSON := range []bool{true, false} {
		c := vdCall{method: "POST", path: "/v1/tokens", json: asJSON, body: `{"ttl_seconds": 120}`}
		var tr TokenResponse
		if err := json.Unmarshal([]byte(do(c)), &tr); err != nil {
			t.Fatal(err)
		}
		// (The expiry is truncated to the second.)
		if tr.ExpiresIn != 120 && tr.ExpiresIn != 119 {
			t.Errorf("token (JSON %v) expires in %d s, want 120", asJSON, tr.ExpiresIn)
		}
	}
}

// TestValidateHandoffManagement: the management API's handlers give the
// same result whether they take the body the validator decoded
// (application/json) or decode the bytes themselves (text/plain, not
// validated), and still refuse a validated body over their own limit.
func TestValidateHandoffManagement(t *testing.T) {
	_, base := vdServer(t)
	do := func(c vdCall, want int) string {
		t.Helper()
		code, body := c.do(t, base)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, code, body, want)
		}
		return body
	}
	fields := func(doc string, keys ...string) string {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%v: %s", err, doc)
		}
		out := map[string]any{}
		for _, k := range keys {
			out[k] = m[k]
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	var got [2][]string
	for i, asJSON := range []bool{true, false} {
		call := func(method, path, body string, want int) string {
			c := vdCall{method: method, path: path, json: asJSON, body: body}
			if !asJSON && body != "" {
				c.headers = []string{"Content-Type", "text/plain"}
			}
			return do(c, want)
		}
		call("PUT", "/api/vhosts/mv", `{"description": "d", "tags": ["a", "b"], "tracing": false}`, http.StatusCreated)
		got[i] = append(got[i], fields(call("GET", "/api/vhosts/mv", "", http.StatusOK), "description", "tags", "tracing"))
		call("PUT", "/api/permissions/mv/guest", `{"configure": ".*", "write": ".*", "read": ".*", "extra": 1}`, http.StatusNoContent)
		got[i] = append(got[i], call("GET", "/api/permissions/mv/guest", "", http.StatusOK))
		call("PUT", "/api/queues/mv/mq", `{"durable": "true", "auto_delete": false, "arguments": {"x-max-length": 10, "x-message-ttl": 60000}}`, http.StatusCreated)
		got[i] = append(got[i], fields(call("GET", "/api/queues/mv/mq", "", http.StatusOK), "durable", "auto_delete", "arguments"))
		call("PUT", "/api/exchanges/mv/mx", `{"type": "headers", "durable": false, "internal": "false", "arguments": {}}`, http.StatusCreated)
		got[i] = append(got[i], fields(call("GET", "/api/exchanges/mv/mx", "", http.StatusOK), "type", "durable", "internal", "arguments"))
		call("POST", "/api/bindings/mv/e/mx/q/mq", `{"routing_key": "", "arguments": {"x-match": "any", "k": 5, "f": 1.5}}`, http.StatusCreated)
		got[i] = append(got[i], call("GET", "/api/bindings/mv/e/mx/q/mq", "", http.StatusOK))
		got[i] = append(got[i], call("POST", "/api/exchanges/mv/mx/publish",
			`{"routing_key": "", "payload": "aGk=", "payload_encoding": "base64", "properties": {"headers": {"k": 5}, "priority": "3", "expiration": 60000, "timestamp": 1700000000}}`, http.StatusOK))
		got[i] = append(got[i], call("POST", "/api/queues/mv/mq/get", `{"count": "1", "ackmode": "ack_requeue_false", "encoding": "auto", "truncate": 50000}`, http.StatusOK))
		call("POST", "/api/definitions/mv", `{"queues": [{"name": "dq", "vhost": "x", "durable": "true", "auto_delete": false, "arguments": {"x-max-priority": 5}}]}`, http.StatusNoContent)
		got[i] = append(got[i], fields(call("GET", "/api/queues/mv/dq", "", http.StatusOK), "durable", "arguments"))
		call("DELETE", "/api/vhosts/mv", "", http.StatusNoContent)
	}
	for j := range got[0] {
		if got[0][j] != got[1][j] {
			t.Errorf("step %d: validated body gave\n%s\nthe handler's own decode gave\n%s", j, got[0][j], got[1][j])
		}
	}
	if !strings.Contains(got[0][1], `"write":".*"`) || !strings.Contains(got[0][2], `"x-max-length":10`) || !strings.Contains(got[0][6], `"priority":3`) {
		t.Errorf("unexpected values: %q", got[0])
	}

	// Valid, under the validator's limit, over the handler's (1 MiB).
	big := `{"arguments": {"x-big": "` + strings.Repeat("a", 3<<19) + `"}}`
	code, body := vdCall{method: "PUT", path: "/api/queues/%2F/bigq", json: true, body: big}.do(t, base)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than 1048576 bytes") {
		t.Errorf("a 1.5 MiB queue body: %d %s", code, body)
	}
}
