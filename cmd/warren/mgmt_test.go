package main

// Management API (/mgmtClient/) tests: real HTTP against an in-process Warren,
// checking RabbitMQ's shapes, status codes and visibility rules, and
// RabbitMQ's own rabbitmqadmin against Warren when it is installed.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// mgmtClient is a small client of one instance's management API.
type mgmtClient struct {
	t    testing.TB
	base string
	user string
	pass string
}

func newMgmtClient(t testing.TB, inst *instance) *mgmtClient {
	return &mgmtClient{t: t, base: "http://" + inst.HTTPAddr(), user: "guest", pass: "guest"}
}

func (a *mgmtClient) as(user, pass string) *mgmtClient {
	b := *a
	b.user, b.pass = user, pass
	return &b
}

// do sends a request; path is used as written (already escaped).
func (a *mgmtClient) do(method, path string, body any, hdr ...string) (int, []byte, http.Header) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

// want does a request and fails unless the status is status; it decodes
// the answer into out when out is not nil.
func (a *mgmtClient) want(status int, method, path string, body, out any) []byte {
	a.t.Helper()
	code, data, _ := a.do(method, path, body)
	if code != status {
		a.t.Fatalf("%s %s as %s: status %d, want %d; body: %s", method, path, a.user, code, status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return data
}

// wantError checks an error status and the {"error","reason"} shape.
func (a *mgmtClient) wantError(status int, errName, method, path string, body any) string {
	a.t.Helper()
	var e map[string]any
	a.want(status, method, path, body, &e)
	if e["error"] != errName || e["reason"] == "" || e["reason"] == nil {
		a.t.Fatalf("%s %s: error body %v, want error %q with a reason", method, path, e, errName)
	}
	return e["reason"].(string)
}

func mgmtHasKeys(t testing.TB, what string, m map[string]any, ctlKeys ...string) {
	t.Helper()
	for _, k := range ctlKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no field %q: %v", what, k, m)
		}
	}
}

func TestMgmtAPIShapes(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	a := newMgmtClient(t, inst)

	var ov map[string]any
	a.want(200, "GET", "/api/overview", nil, &ov)
	mgmtHasKeys(t, "overview", ov, "rabbitmq_version", "management_version", "cluster_name", "node", "message_stats", "queue_totals", "object_totals", "exchange_types")

	var who map[string]any
	a.want(200, "GET", "/api/whoami", nil, &who)
	if who["name"] != "guest" || fmt.Sprint(who["tags"]) != "[administrator]" {
		t.Errorf("whoami = %v", who)
	}

	// A vhost with a slash in its name: %2F must stay inside one segment.
	a.want(201, "PUT", "/api/vhosts/a%2Fb", nil, nil)
	a.want(204, "PUT", "/api/vhosts/a%2Fb", nil, nil)
	var vh map[string]any
	a.want(200, "GET", "/api/vhosts/a%2Fb", nil, &vh)
	if vh["name"] != "a/b" {
		t.Fatalf("vhost = %v", vh)
	}
	mgmtHasKeys(t, "vhost", vh, "messages", "messages_ready", "messages_unacknowledged", "tracing", "cluster_state")
	var perms []map[string]any
	a.want(200, "GET", "/api/vhosts/a%2Fb/permissions", nil, &perms)
	if len(perms) != 1 || perms[0]["user"] != "guest" || perms[0]["configure"] != ".*" {
		t.Errorf("creator's permissions on a new vhost = %v", perms)
	}

	// Queues: PUT with rabbitmqadmin's string booleans, a name with a space.
	a.want(201, "PUT", "/api/queues/a%2Fb/q%201", map[string]any{"durable": "true", "auto_delete": "false", "arguments": map[string]any{"x-max-length": 10}}, nil)
	a.want(204, "PUT", "/api/queues/a%2Fb/q%201", map[string]any{"durable": true, "arguments": map[string]any{"x-max-length": 10}}, nil)
	a.wantError(409, "precondition_failed", "PUT", "/api/queues/a%2Fb/q%201", map[string]any{"durable": false})
	var q map[string]any
	a.want(200, "GET", "/api/queues/a%2Fb/q%201", nil, &q)
	mgmtHasKeys(t, "queue", q, "name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "node", "state", "consumers",
		"messages", "messages_ready", "messages_unacknowledged", "messages_details", "message_stats", "consumer_details", "type")
	if q["name"] != "q 1" || q["vhost"] != "a/b" || q["durable"] != true || fmt.Sprint(q["arguments"]) != "map[x-max-length:10]" {
		t.Errorf("queue = %v", q)
	}

	// Publish through the default exchange, then get with each ack mode.
	for i := range 3 {
		var r map[string]bool
		a.want(200, "POST", "/api/exchanges/a%2Fb/amq.default/publish", map[string]any{
			"properties":  map[string]any{"delivery_mode": 2, "headers": map[string]any{"h": "v", "n": 7}, "content_type": "text/plain"},
			"routing_key": "q 1", "payload": fmt.Sprintf("m%d", i), "payload_encoding": "string",
		}, &r)
		if !r["routed"] {
			t.Fatalf("publish %d not routed", i)
		}
	}
	var r map[string]bool
	a.want(200, "POST", "/api/exchanges/a%2Fb/amq.default/publish", map[string]any{"properties": map[string]any{}, "routing_key": "nowhere", "payload": "eA==", "payload_encoding": "base64"}, &r)
	if r["routed"] {
		t.Error("publish to a missing queue reported routed")
	}
	var lst []map[string]any
	a.want(200, "GET", "/api/queues/a%2Fb", nil, &lst)
	if len(lst) != 1 || lst[0]["messages"] != 3.0 {
		t.Fatalf("queues after publish = %v", lst)
	}
	var got []map[string]any
	a.want(200, "POST", "/api/queues/a%2Fb/q%201/get", map[string]any{"count": "2", "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}, &got)
	if len(got) != 2 || got[0]["payload"] != "m0" || got[0]["payload_encoding"] != "string" || got[0]["message_count"] != 2.0 || got[0]["redelivered"] != false {
		t.Fatalf("get = %v", got)
	}
	mgmtHasKeys(t, "got message", got[0], "payload_bytes", "redelivered", "exchange", "routing_key", "message_count", "properties", "payload", "payload_encoding")
	props := got[0]["properties"].(map[string]any)
	if props["delivery_mode"] != 2.0 || props["content_type"] != "text/plain" || fmt.Sprint(props["headers"]) != "map[h:v n:7]" {
		t.Errorf("properties = %v", props)
	}
	a.want(200, "POST", "/api/queues/a%2Fb/q%201/get", map[string]any{"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"}, &got)
	if len(got) != 1 || got[0]["payload"] != "bTA=" || got[0]["payload_encoding"] != "base64" || got[0]["redelivered"] != true {
		t.Fatalf("get after requeue = %v", got)
	}
	a.want(200, "POST", "/api/queues/a%2Fb/q%201/get", map[string]any{"count": 1, "ackmode": "reject_requeue_false", "encoding": "auto"}, &got)
	a.want(200, "GET", "/api/queues/a%2Fb/q%201", nil, &q)
	if q["messages"] != 1.0 {
		t.Errorf("messages after ack and reject = %v, want 1", q["messages"])
	}
	a.wantError(400, "bad_request", "POST", "/api/queues/a%2Fb/q%201/get", map[string]any{"count": 1, "ackmode": "bogus", "encoding": "auto"})
	a.want(204, "DELETE", "/api/queues/a%2Fb/q%201/contents", nil, nil)
	a.want(200, "GET", "/api/queues/a%2Fb/q%201", nil, &q)
	if q["messages"] != 0.0 {
		t.Errorf("messages after purge = %v", q["messages"])
	}

	// Exchanges and bindings.
	a.want(201, "PUT", "/api/exchanges/a%2Fb/ex", map[string]any{"type": "topic", "durable": "true"}, nil)
	var ex map[string]any
	a.want(200, "GET", "/api/exchanges/a%2Fb/ex", nil, &ex)
	mgmtHasKeys(t, "exchange", ex, "name", "vhost", "type", "durable", "auto_delete", "internal", "arguments")
	if ex["type"] != "topic" {
		t.Errorf("exchange = %v", ex)
	}
	a.want(200, "GET", "/api/exchanges/a%2Fb/amq.default", nil, &ex)
	if ex["name"] != "" || ex["type"] != "direct" {
		t.Errorf("default exchange = %v", ex)
	}
	a.wantError(400, "bad_request", "PUT", "/api/exchanges/a%2Fb/ex2", map[string]any{"durable": true})
	code, _, hdr := a.do("POST", "/api/bindings/a%2Fb/e/ex/q/q%201", map[string]any{"routing_key": "a.#"})
	if code != 201 || !strings.HasPrefix(hdr.Get("Location"), "/api/bindings/a%2Fb/e/ex/q/q%201/") {
		t.Fatalf("create binding: %d Location %q", code, hdr.Get("Location"))
	}
	a.want(201, "POST", "/api/bindings/a%2Fb/e/ex/q/q%201", map[string]any{"routing_key": "k", "arguments": map[string]any{"x": 1}}, nil)
	var bs []map[string]any
	a.want(200, "GET", "/api/bindings/a%2Fb/e/ex/q/q%201", nil, &bs)
	if len(bs) != 2 {
		t.Fatalf("bindings = %v", bs)
	}
	mgmtHasKeys(t, "binding", bs[0], "source", "vhost", "destination", "destination_type", "routing_key", "arguments", "properties_key")
	for _, b := range bs {
		key := b["properties_key"].(string)
		var one map[string]any
		a.want(200, "GET", "/api/bindings/a%2Fb/e/ex/q/q%201/"+mgmtEscape(key), nil, &one)
		if one["routing_key"] != b["routing_key"] {
			t.Errorf("binding %s = %v", key, one)
		}
		a.want(204, "DELETE", "/api/bindings/a%2Fb/e/ex/q/q%201/"+mgmtEscape(key), nil, nil)
	}
	a.want(200, "GET", "/api/queues/a%2Fb/q%201/bindings", nil, &bs)
	if len(bs) != 1 || bs[0]["source"] != "" {
		t.Errorf("queue bindings after deletes = %v (want only the default binding)", bs)
	}
	a.want(201, "PUT", "/api/exchanges/a%2Fb/ex-dst", map[string]any{"type": "fanout"}, nil)
	a.want(201, "POST", "/api/bindings/a%2Fb/e/ex/e/ex-dst", map[string]any{"routing_key": "#"}, nil)
	a.want(200, "GET", "/api/exchanges/a%2Fb/ex-dst/bindings/destination", nil, &bs)
	if len(bs) != 1 || bs[0]["destination_type"] != "exchange" {
		t.Errorf("exchange bindings = %v", bs)
	}
	a.want(204, "DELETE", "/api/bindings/a%2Fb/e/ex/e/ex-dst/"+mgmtEscape("%23"), nil, nil)
	a.want(204, "DELETE", "/api/exchanges/a%2Fb/ex-dst", nil, nil)
	a.wantError(404, "not_found", "GET", "/api/exchanges/a%2Fb/ex-dst", nil)
	a.wantError(404, "not_found", "GET", "/api/queues/a%2Fb/nope", nil)
	a.wantError(404, "not_found", "GET", "/api/queues/nope", nil)
	a.wantError(403, "access_refused", "DELETE", "/api/exchanges/a%2Fb/amq.topic", nil)

	// Listing parameters: columns, sort, pagination.
	for _, n := range []string{"b", "a", "c"} {
		a.want(201, "PUT", "/api/queues/%2F/"+n, nil, nil)
	}
	var cols []map[string]any
	a.want(200, "GET", "/api/queues/%2F?columns=name,message_stats.publish&sort=name&sort_reverse=true", nil, &cols)
	if len(cols) != 3 || cols[0]["name"] != "c" || len(cols[0]) != 2 {
		t.Errorf("columns/sort = %v", cols)
	}
	var page map[string]any
	a.want(200, "GET", "/api/queues?page=2&page_size=2&sort=name", nil, &page)
	if page["page_count"] != 2.0 || page["total_count"] != 4.0 || len(page["items"].([]any)) != 2 {
		t.Errorf("page = %v", page)
	}

	// Connections, channels, consumers; DELETE closes the connection.
	conn, err := amqp.Dial(amqpURL(inst))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("a", "ctag-1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var conns, chans, cons []map[string]any
	a.want(200, "GET", "/api/connections", nil, &conns)
	if len(conns) != 1 {
		t.Fatalf("connections = %v", conns)
	}
	mgmtHasKeys(t, "connection", conns[0], "name", "user", "vhost", "protocol", "peer_host", "peer_port", "channels", "connected_at", "client_properties", "state", "node")
	a.want(200, "GET", "/api/channels", nil, &chans)
	if len(chans) != 1 || chans[0]["consumer_count"] != 1.0 {
		t.Errorf("channels = %v", chans)
	}
	a.want(200, "GET", "/api/consumers/%2F", nil, &cons)
	if len(cons) != 1 || cons[0]["consumer_tag"] != "ctag-1" || cons[0]["queue"].(map[string]any)["name"] != "a" {
		t.Errorf("consumers = %v", cons)
	}
	var one map[string]any
	a.want(200, "GET", "/api/channels/"+mgmtEscape(chans[0]["name"].(string)), nil, &one)
	name := conns[0]["name"].(string)
	a.want(200, "GET", "/api/connections/"+mgmtEscape(name), nil, &one)
	code, data, _ := a.do("DELETE", "/api/connections/"+mgmtEscape(name), nil, "X-Reason", "test says bye")
	if code != 204 {
		t.Fatalf("close connection: %d %s", code, data)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "test says bye") {
			t.Errorf("connection closed with %v, want 320 with the X-Reason", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed by DELETE /api/connections/{name}")
	}

	// Definitions round trip.
	var defs map[string]any
	a.want(200, "GET", "/api/definitions", nil, &defs)
	mgmtHasKeys(t, "definitions", defs, "rabbit_version", "users", "vhosts", "permissions", "queues", "exchanges", "bindings", "policies", "parameters")
	a.want(204, "DELETE", "/api/vhosts/a%2Fb", nil, nil)
	a.wantError(404, "not_found", "GET", "/api/vhosts/a%2Fb", nil)
	a.want(204, "POST", "/api/definitions", defs, nil)
	a.want(200, "GET", "/api/queues/a%2Fb/q%201", nil, &q)
	a.want(200, "GET", "/api/exchanges/a%2Fb/ex", nil, &ex)

	// Health.
	var h map[string]any
	a.want(200, "GET", "/api/health/checks/alarms", nil, &h)
	a.want(200, "GET", "/api/aliveness-test/%2F", nil, &h)
	if h["status"] != "ok" {
		t.Errorf("aliveness = %v", h)
	}

	// Errors and authorisation.
	a.as("guest", "wrong").wantError(401, "not_authorised", "GET", "/api/overview", nil)
	a.as("", "").wantError(401, "not_authorised", "GET", "/api/overview", nil)
	a.want(201, "PUT", "/api/users/plain", map[string]any{"password": "pw", "tags": ""}, nil)
	a.as("plain", "pw").wantError(401, "not_authorised", "GET", "/api/overview", nil)
	a.want(201, "PUT", "/api/users/mon", map[string]any{"password": "pw", "tags": "monitoring"}, nil)
	var all []map[string]any
	a.as("mon", "pw").want(200, "GET", "/api/queues", nil, &all)
	if len(all) != 5 { // a, b, c, aliveness-test in /, q 1 in a/b
		t.Errorf("monitoring user sees %d queues, want all 5", len(all))
	}
	a.as("mon", "pw").wantError(401, "not_authorised", "GET", "/api/users", nil)
	a.as("mon", "pw").wantError(401, "not_authorised", "PUT", "/api/vhosts/x", nil)
	a.want(201, "PUT", "/api/users/mgr", map[string]any{"password": "pw", "tags": []string{"management"}}, nil)
	a.want(201, "PUT", "/api/permissions/a%2Fb/mgr", map[string]any{"configure": "", "write": "", "read": ".*"}, nil)
	var vhs []map[string]any
	a.as("mgr", "pw").want(200, "GET", "/api/vhosts", nil, &vhs)
	if len(vhs) != 1 || vhs[0]["name"] != "a/b" {
		t.Errorf("management user sees vhosts %v, want only a/b", vhs)
	}
	a.as("mgr", "pw").wantError(401, "not_authorised", "GET", "/api/queues/%2F", nil)
	a.as("mgr", "pw").wantError(403, "access_refused", "PUT", "/api/queues/a%2Fb/mine", nil)
	a.as("mgr", "pw").want(200, "POST", "/api/queues/a%2Fb/q%201/get", map[string]any{"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}, &got)
	a.wantError(400, "bad_request", "PUT", "/api/permissions/a%2Fb/mgr", map[string]any{"configure": ".*"})
	a.want(204, "DELETE", "/api/permissions/a%2Fb/mgr", nil, nil)
	a.want(204, "DELETE", "/api/users/mgr", nil, nil)
	a.wantError(404, "not_found", "GET", "/api/users/mgr", nil)

	// Metrics, with RabbitMQ's names.
	code, data, _ = a.as("", "").do("GET", "/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{"rabbitmq_connections ", "rabbitmq_queues ", `rabbitmq_queue_messages_ready{queue="q 1",vhost="a/b"}`,
		"rabbitmq_global_messages_received_total ", "rabbitmq_global_messages_delivered_total ", "rabbitmq_global_messages_acknowledged_total ",
		"rabbitmq_global_messages_confirmed_total ", "rabbitmq_process_resident_memory_bytes ", `warren_http_requests_total{code="200",method="GET",route="/api/overview"}`} {
		if !bytes.Contains(data, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// mgmtEscape percent-encodes one path segment as clients do.
func mgmtEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestMgmtRates: a queue's publish rate shows once two samples apart.
func TestMgmtRates(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	a := newMgmtClient(t, inst)
	a.want(201, "PUT", "/api/queues/%2F/r", nil, nil)
	var q map[string]any
	a.want(200, "GET", "/api/queues/%2F/r", nil, &q)
	for range 20 {
		a.want(200, "POST", "/api/exchanges/%2F/amq.default/publish", map[string]any{"routing_key": "r", "payload": "x", "properties": map[string]any{}}, nil)
	}
	time.Sleep(1100 * time.Millisecond)
	a.want(200, "GET", "/api/queues/%2F/r", nil, &q)
	rate := q["message_stats"].(map[string]any)["publish_details"].(map[string]any)["rate"].(float64)
	if rate <= 0 {
		t.Errorf("publish rate = %v after 20 publishes", rate)
	}
}

// TestRabbitmqadmin drives RabbitMQ's own CLI (from the Debian package)
// against Warren.
func TestRabbitmqadmin(t *testing.T) {
	bin, err := exec.LookPath("rabbitmqadmin")
	if err != nil {
		t.Skip("rabbitmqadmin not installed (apt-get install rabbitmq-server ships it)")
	}
	t.Parallel()
	inst := startWarren(t, "")
	_, port, _ := net.SplitHostPort(inst.HTTPAddr())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"-H", "127.0.0.1", "-P", port, "-u", "guest", "-p", "guest"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("declare", "queue", "name=x"); !strings.Contains(out, "queue declared") {
		t.Errorf("declare queue: %s", out)
	}
	if out := run("publish", "routing_key=x", "payload=hi"); !strings.Contains(out, "Message published") || strings.Contains(out, "NOT routed") {
		t.Errorf("publish: %s", out)
	}
	if out := run("list", "queues"); !mgmtMatch(`\|\s*x\s*\|\s*1\s*\|`, out) {
		t.Errorf("list queues:\n%s", out)
	}
	if out := run("get", "queue=x"); !mgmtMatch(`\|\s*x\s*\|\s*\|\s*0\s*\|\s*hi\s*\|\s*2\s*\|\s*string\s*\|\s*False\s*\|`, out) {
		t.Errorf("get:\n%s", out)
	}
	if out := run("get", "queue=x", "ackmode=ack_requeue_false"); !strings.Contains(out, "True") {
		t.Errorf("second get (requeued before) not redelivered:\n%s", out)
	}
	if out := run("-f", "tsv", "-q", "list", "queues", "name", "messages"); strings.TrimSpace(out) != "x\t0" {
		t.Errorf("list queues after ack: %q", out)
	}
	run("declare", "exchange", "name=ex", "type=fanout")
	run("declare", "binding", "source=ex", "destination=x")
	if out := run("-f", "tsv", "-q", "list", "bindings", "source", "destination"); !strings.Contains(out, "ex\tx") {
		t.Errorf("list bindings: %q", out)
	}
	run("delete", "binding", "source=ex", "destination_type=queue", "destination=x", "properties_key=~")
	run("purge", "queue", "name=x")
	run("delete", "queue", "name=x")
	// The remaining listings are independent: run them side by side (each
	// run pays Python's start-up).
	var wg sync.WaitGroup
	outs := make([]string, 9)
	for i, args := range [][]string{{"list", "users"}, {"list", "vhosts"}, {"list", "permissions"}, {"list", "exchanges"},
		{"list", "connections"}, {"list", "channels"}, {"list", "consumers"}, {"list", "nodes"}, {"show", "overview"}} {
		wg.Go(func() {
			out, err := exec.Command(bin, append([]string{"-H", "127.0.0.1", "-P", port, "-u", "guest", "-p", "guest"}, args...)...).CombinedOutput()
			if err != nil {
				t.Errorf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			outs[i] = string(out)
		})
	}
	wg.Wait()
	if !strings.Contains(outs[0], "guest") || !strings.Contains(outs[3], "amq.topic") || !strings.Contains(outs[8], "3.10.8") {
		t.Errorf("list users:\n%s\nlist exchanges:\n%s\nshow overview:\n%s", outs[0], outs[3], outs[8])
	}
}

func mgmtMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestMgmtVHostMetadata: a vhost's description and tags given to PUT are
// stored, listed, exported and survive a restart.
func TestMgmtVHostMetadata(t *testing.T) {
	dir := t.TempDir()
	inst := startWarren(t, dir)
	base := "http://" + inst.HTTPAddr()
	req, _ := http.NewRequest(http.MethodPut, base+"/api/vhosts/shop", strings.NewReader(`{"description":"orders and payments","tags":"prod,eu"}`))
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT vhost: %d", resp.StatusCode)
	}
	check := func(when string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/vhosts/shop", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Description string   `json:"description"`
			Tags        []string `json:"tags"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		if v.Description != "orders and payments" || strings.Join(v.Tags, ",") != "prod,eu" {
			t.Fatalf("%s: vhost description %q tags %v", when, v.Description, v.Tags)
		}
	}
	check("after PUT")
	stopWarren(t, inst)
	inst = startWarren(t, dir)
	base = "http://" + inst.HTTPAddr()
	check("after restart")
}
