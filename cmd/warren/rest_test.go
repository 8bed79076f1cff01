package main

// Tests of the REST data plane (/v1/) over real HTTP against an in-process
// Warren, cross-checked with amqp091-go, pika (the RPC tutorial worker) and
// the curl binary. The curl one-liners in docs/rest.md are the ones run by
// TestRESTCurlOneLiners.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/mapping"
)

// ---------------------------------------------------------------------------
// helpers

type restClient struct {
	t    testing.TB
	base string
	user string
	pass string
	hc   *http.Client
}

func newREST(t testing.TB, inst *instance) *restClient {
	return &restClient{t: t, base: "http://" + inst.HTTPAddr(), user: "guest", pass: "guest", hc: &http.Client{Timeout: 60 * time.Second}}
}

func (c *restClient) as(user, pass string) *restClient {
	cp := *c
	cp.user, cp.pass = user, pass
	return &cp
}

// do sends a request and returns the response with its body read.
func (c *restClient) do(method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// expect sends a request, checks the status and decodes a JSON body into
// out (when not nil).
func (c *restClient) expect(status int, out any, method, path string, body []byte, hdr ...string) *http.Response {
	c.t.Helper()
	resp, b := c.do(method, path, body, hdr...)
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp
}

// expectError checks an error status and that the body is {"error","reason"}.
func (c *restClient) expectError(status int, method, path string, body []byte, hdr ...string) string {
	c.t.Helper()
	var e struct{ Error, Reason string }
	c.expect(status, &e, method, path, body, hdr...)
	if e.Error == "" || e.Reason == "" {
		c.t.Fatalf("%s %s: error body without error/reason: %+v", method, path, e)
	}
	return e.Reason
}

type restMessage struct {
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
	Properties      map[string]any `json:"properties"`
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	Redelivered     bool           `json:"redelivered"`
	MessageCount    *int           `json:"message_count"`
	AckToken        string         `json:"ack_token"`
}

func (c *restClient) get(path string) []restMessage {
	c.t.Helper()
	var out struct{ Messages []restMessage }
	c.expect(http.StatusOK, &out, "POST", path, nil)
	return out.Messages
}

func amqpDial(t testing.TB, inst *instance) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL(inst))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

func declare(t testing.TB, ch *amqp.Channel, name string, durable bool) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, durable, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

// publishAMQP publishes and waits for the publisher confirm, so that the
// message is in its queue when it returns.
func publishAMQP(t testing.TB, ch *amqp.Channel, exchange, key string, p amqp.Publishing) {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, key, false, false, p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
		t.Fatalf("publish to %q %q not confirmed: %v", exchange, key, err)
	}
}

func nextDelivery(t testing.TB, ds <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return amqp.Delivery{}
}

// ---------------------------------------------------------------------------
// publish

func TestRESTPublishToAMQP(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "rest-in", true)
	ds, err := ch.Consume("rest-in", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	body := []byte("binary \x00\xff\xfe body")
	var res struct{ Routed bool }
	rc.expect(http.StatusOK, &res, "POST", "/v1/publish/amq.default/rest-in", body,
		"Content-Type", "application/x-test", "Content-Encoding", "gzip",
		"X-Amqp-Correlation-Id", "corr-1", "X-Amqp-Reply-To", "replies", "X-Amqp-Message-Id", "m-1",
		"X-Amqp-Type", "t", "X-Amqp-App-Id", "app", "X-Amqp-User-Id", "guest", "X-Amqp-Expiration", "60000",
		"X-Amqp-Priority", "3", "X-Amqp-Timestamp", "1700000000", "X-Amqp-Header-Trace-Id", "abc")
	if !res.Routed {
		t.Fatal("routed=false for a bound queue")
	}
	d := nextDelivery(t, ds)
	if !bytes.Equal(d.Body, body) {
		t.Errorf("body %q, want %q", d.Body, body)
	}
	want := []struct{ name, got, want string }{
		{"content_type", d.ContentType, "application/x-test"},
		{"content_encoding", d.ContentEncoding, "gzip"},
		{"correlation_id", d.CorrelationId, "corr-1"},
		{"reply_to", d.ReplyTo, "replies"},
		{"message_id", d.MessageId, "m-1"},
		{"type", d.Type, "t"},
		{"app_id", d.AppId, "app"},
		{"user_id", d.UserId, "guest"},
		{"expiration", d.Expiration, "60000"},
		{"delivery_mode", strconv.Itoa(int(d.DeliveryMode)), "2"},
		{"priority", strconv.Itoa(int(d.Priority)), "3"},
		{"timestamp", strconv.FormatInt(d.Timestamp.Unix(), 10), "1700000000"},
		{"header trace-id", fmt.Sprint(d.Headers["trace-id"]), "abc"},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s = %q, want %q", w.name, w.got, w.want)
		}
	}
	if d.Exchange != "" || d.RoutingKey != "rest-in" {
		t.Errorf("exchange %q key %q", d.Exchange, d.RoutingKey)
	}

	// Transient on request; absent properties stay absent.
	rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/rest-in", []byte("t"), "X-Amqp-Delivery-Mode", "1")
	d = nextDelivery(t, ds)
	if d.DeliveryMode != 1 || d.CorrelationId != "" || d.Headers != nil {
		t.Errorf("transient message: mode %d corr %q headers %v", d.DeliveryMode, d.CorrelationId, d.Headers)
	}

	// Unroutable: routed=false, or 404 with mandatory=true.
	rc.expect(http.StatusOK, &res, "POST", "/v1/publish/amq.default/nowhere", []byte("x"))
	if res.Routed {
		t.Error("routed=true for an unbound key")
	}
	if r := rc.expectError(http.StatusNotFound, "POST", "/v1/publish/amq.default/nowhere?mandatory=true", []byte("x")); !strings.Contains(r, "NO_ROUTE") {
		t.Errorf("mandatory reason %q", r)
	}

	// Idempotency-Key: the retry is answered without publishing again.
	resp := rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/rest-in", []byte("once"), "Idempotency-Key", "k-1")
	if resp.Header.Get("Idempotent-Replayed") != "" {
		t.Error("first attempt marked replayed")
	}
	resp = rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/rest-in", []byte("once"), "Idempotency-Key", "k-1")
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("retry not marked replayed")
	}
	if d := nextDelivery(t, ds); string(d.Body) != "once" {
		t.Fatalf("body %q", d.Body)
	}
	select {
	case d := <-ds:
		t.Fatalf("idempotent retry was published again: %q", d.Body)
	case <-time.After(300 * time.Millisecond):
	}

	// Routing keys with escapes, and a topic exchange.
	if err := ch.QueueBind("rest-in", "a/b.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	rc.expect(http.StatusOK, &res, "POST", "/v1/publish/amq.topic/"+url.PathEscape("a/b.c d"), []byte("esc"))
	if d := nextDelivery(t, ds); d.RoutingKey != "a/b.c d" || !res.Routed {
		t.Errorf("routing key %q routed %v", d.RoutingKey, res.Routed)
	}
}

func TestRESTPublishBatch(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "batch", false)
	batch := `[
	  {"exchange": "amq.default", "routing_key": "batch", "payload": "one", "properties": {"content_type": "text/plain", "headers": {"n": 1, "f": 1.5, "s": "x", "b": true}}},
	  {"exchange": "", "routing_key": "batch", "payload": "AAEC", "payload_encoding": "base64", "properties": {"delivery_mode": 1, "priority": 5}},
	  {"exchange": "no-such-exchange", "routing_key": "batch", "payload": "x"},
	  {"exchange": "", "routing_key": "unbound", "payload": "x"},
	  {"exchange": "", "routing_key": "batch", "payload": "!!", "payload_encoding": "base64"}
	]`
	var out struct {
		Results []struct {
			Routed bool
			Status int
			Error  string
			Reason string
		}
	}
	rc.expect(http.StatusOK, &out, "POST", "/v1/publish", []byte(batch), "Content-Type", "application/json")
	got := []int{}
	for _, r := range out.Results {
		got = append(got, r.Status)
	}
	if !slices.Equal(got, []int{200, 200, 404, 200, 400}) || !out.Results[0].Routed || out.Results[3].Routed {
		t.Fatalf("results %+v", out.Results)
	}
	ds, err := ch.Consume("batch", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := nextDelivery(t, ds)
	if string(d.Body) != "one" || d.ContentType != "text/plain" || d.DeliveryMode != 2 {
		t.Errorf("first: %q %q mode %d", d.Body, d.ContentType, d.DeliveryMode)
	}
	if d.Headers["n"] != int64(1) || d.Headers["f"] != 1.5 || d.Headers["s"] != "x" || d.Headers["b"] != true {
		t.Errorf("headers %#v", d.Headers)
	}
	d = nextDelivery(t, ds)
	if !bytes.Equal(d.Body, []byte{0, 1, 2}) || d.DeliveryMode != 1 || d.Priority != 5 {
		t.Errorf("second: %v mode %d prio %d", d.Body, d.DeliveryMode, d.Priority)
	}
	rc.expectError(http.StatusBadRequest, "POST", "/v1/publish", []byte(`{"not": "an array"}`))
}

// ---------------------------------------------------------------------------
// get, leases, long-poll

func TestRESTGetLeases(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "work", true)
	pub := func(body string) {
		publishAMQP(t, ch, "", "work", amqp.Publishing{Body: []byte(body), ContentType: "text/plain", CorrelationId: "c-" + body,
			DeliveryMode: 2, Headers: amqp.Table{"k": "v", "n": int32(7)}, Timestamp: time.Unix(1700000000, 0)})
	}

	// Manual ack: properties cross over, the message is leased, ack settles it.
	pub("a")
	ms := rc.get("/v1/queues/work/get")
	if len(ms) != 1 {
		t.Fatalf("got %d messages", len(ms))
	}
	m := ms[0]
	if m.Payload != "a" || m.PayloadEncoding != "string" || m.Redelivered || m.RoutingKey != "work" || m.AckToken == "" {
		t.Fatalf("message %+v", m)
	}
	p := m.Properties
	if p["content_type"] != "text/plain" || p["correlation_id"] != "c-a" || p["delivery_mode"] != 2.0 || p["timestamp"] != 1700000000.0 {
		t.Errorf("properties %v", p)
	}
	if h, _ := p["headers"].(map[string]any); h["k"] != "v" || h["n"] != 7.0 {
		t.Errorf("headers %v", p["headers"])
	}
	if m.MessageCount == nil || *m.MessageCount != 0 {
		t.Errorf("message_count %v", m.MessageCount)
	}
	if got := rc.get("/v1/queues/work/get"); len(got) != 0 {
		t.Fatalf("leased message delivered again: %+v", got)
	}
	var st struct{ Status string }
	rc.expect(http.StatusOK, &st, "POST", "/v1/ack/"+m.AckToken, nil)
	if st.Status != "acked" {
		t.Errorf("ack status %q", st.Status)
	}
	rc.expectError(http.StatusConflict, "POST", "/v1/ack/"+m.AckToken, nil)

	// Nack with requeue: back with redelivered=true.
	pub("b")
	m = rc.get("/v1/queues/work/get")[0]
	rc.expect(http.StatusOK, &st, "POST", "/v1/nack/"+m.AckToken+"?requeue=true", nil)
	m = rc.get("/v1/queues/work/get")[0]
	if m.Payload != "b" || !m.Redelivered {
		t.Fatalf("after nack: %+v", m)
	}
	// Nack without requeue: gone.
	rc.expect(http.StatusOK, &st, "POST", "/v1/nack/"+m.AckToken+"?requeue=false", nil)
	if st.Status != "rejected" {
		t.Errorf("nack status %q", st.Status)
	}
	if got := rc.get("/v1/queues/work/get?ack=auto"); len(got) != 0 {
		t.Fatalf("rejected message came back: %+v", got)
	}

	// Lease expiry requeues with redelivered=true; the old token is dead.
	pub("c")
	m = rc.get("/v1/queues/work/get?lease=1s")[0]
	time.Sleep(1500 * time.Millisecond)
	m2 := rc.get("/v1/queues/work/get")[0]
	if m2.Payload != "c" || !m2.Redelivered {
		t.Fatalf("after expiry: %+v", m2)
	}
	rc.expectError(http.StatusConflict, "POST", "/v1/ack/"+m.AckToken, nil)
	rc.expect(http.StatusOK, nil, "POST", "/v1/ack/"+m2.AckToken, nil)

	// Extend keeps the lease past its first expiry.
	pub("d")
	m = rc.get("/v1/queues/work/get?lease=1s")[0]
	var ext struct {
		AckToken       string `json:"ack_token"`
		LeaseExpiresAt string `json:"lease_expires_at"`
	}
	rc.expect(http.StatusOK, &ext, "POST", "/v1/extend/"+m.AckToken+"?lease=30s", nil)
	if ext.AckToken != m.AckToken || ext.LeaseExpiresAt == "" {
		t.Errorf("extend answer %+v", ext)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := rc.get("/v1/queues/work/get"); len(got) != 0 {
		t.Fatalf("extended lease expired: %+v", got)
	}
	rc.expect(http.StatusOK, nil, "POST", "/v1/ack/"+m.AckToken, nil)

	// Tokens are tamper-proof and bound to the user.
	pub("e")
	m = rc.get("/v1/queues/work/get")[0]
	bad := []byte(m.AckToken)
	bad[len(bad)/2] ^= 1
	rc.expectError(http.StatusBadRequest, "POST", "/v1/ack/"+string(bad), nil)
	if err := inst.router.PutUser("bob", "secret", "", nil); err != nil {
		t.Fatal(err)
	}
	rc.as("bob", "secret").expectError(http.StatusBadRequest, "POST", "/v1/ack/"+m.AckToken, nil)
	rc.expect(http.StatusOK, nil, "POST", "/v1/ack/"+m.AckToken, nil)

	// count=N, auto ack.
	for i := range 5 {
		pub(strconv.Itoa(i))
	}
	ms = rc.get("/v1/queues/work/get?count=3&ack=auto")
	if len(ms) != 3 || ms[0].Payload != "0" || ms[2].Payload != "2" || ms[0].AckToken != "" {
		t.Fatalf("count=3: %+v", ms)
	}
	if *ms[2].MessageCount != 2 {
		t.Errorf("message_count %d, want 2", *ms[2].MessageCount)
	}
	ms = rc.get("/v1/queues/work/get?count=10&ack=auto")
	if len(ms) != 2 {
		t.Fatalf("rest: %+v", ms)
	}

	// Raw body with Accept: application/octet-stream.
	publishAMQP(t, ch, "", "work", amqp.Publishing{Body: []byte{0, 1, 2, 0xff}, ContentType: "application/x-bin", MessageId: "raw-1"})
	resp, body := rc.do("POST", "/v1/queues/work/get", nil, "Accept", "application/octet-stream")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte{0, 1, 2, 0xff}) {
		t.Fatalf("raw get: %d %v", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/x-bin" || resp.Header.Get("X-Amqp-Message-Id") != "raw-1" || resp.Header.Get("X-Amqp-Ack-Token") == "" {
		t.Errorf("raw headers %v", resp.Header)
	}
	rc.expect(http.StatusOK, nil, "POST", "/v1/ack/"+resp.Header.Get("X-Amqp-Ack-Token"), nil)
	resp, _ = rc.do("POST", "/v1/queues/work/get", nil, "Accept", "application/octet-stream")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("raw get of an empty queue: %d", resp.StatusCode)
	}
}

func TestRESTLongPoll(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "poll", false)

	// Nothing arrives: the poll answers empty after wait.
	start := time.Now()
	if ms := rc.get("/v1/queues/poll/get?wait=300ms"); len(ms) != 0 {
		t.Fatalf("got %+v", ms)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("empty poll took %v", el)
	}

	// A message published while waiting ends the poll at once.
	type result struct {
		ms []restMessage
		at time.Time
	}
	done := make(chan result, 1)
	go func() {
		var out struct{ Messages []restMessage }
		resp, b := rc.do("POST", "/v1/queues/poll/get?wait=20s&count=5", nil)
		if resp.StatusCode == http.StatusOK {
			json.Unmarshal(b, &out)
		}
		done <- result{out.Messages, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	publishAMQP(t, ch, "", "poll", amqp.Publishing{Body: []byte("late")})
	r := <-done
	if len(r.ms) != 1 || r.ms[0].Payload != "late" || r.ms[0].AckToken == "" {
		t.Fatalf("poll got %+v", r.ms)
	}
	if lat := r.at.Sub(sent); lat > 2*time.Second {
		t.Errorf("poll answered %v after the publish", lat)
	}
	rc.expect(http.StatusOK, nil, "POST", "/v1/ack/"+r.ms[0].AckToken, nil)

	// A queue deleted while a poll waits on it: the poll answers at once
	// what a get would now, 404 with the reason.
	declare(t, ch, "poll-del", false)
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := ch.QueueDelete("poll-del", false, false, false); err != nil {
			t.Errorf("delete: %v", err)
		}
	}()
	start = time.Now()
	if r := rc.expectError(http.StatusNotFound, "POST", "/v1/queues/poll-del/get?wait=20s", nil); !strings.Contains(r, "queue 'poll-del' in vhost '/' was deleted") {
		t.Errorf("poll of a queue deleted meanwhile: %s", r)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("poll of a deleted queue answered after %v, not when it was deleted", el)
	}

	// Polling an auto-delete queue does not delete it (as basic.get).
	if _, err := ch.QueueDeclare("ad", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		publishAMQP(t, ch, "", "ad", amqp.Publishing{Body: []byte("ad")})
	}()
	if ms := rc.get("/v1/queues/ad/get?wait=5s&ack=auto"); len(ms) != 1 || ms[0].Payload != "ad" {
		t.Fatalf("auto-delete poll: %+v", ms)
	}
	rc.get("/v1/queues/ad/get?wait=100ms")
	if _, err := ch.QueueDeclarePassive("ad", false, true, false, false, nil); err != nil {
		t.Fatalf("polling deleted the auto-delete queue: %v", err)
	}

	// Concurrent pollers each get distinct messages; none is lost.
	const pollers, msgs = 8, 40
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(10 * time.Second)
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				mu.Lock()
				n := len(seen)
				mu.Unlock()
				if n >= msgs {
					return
				}
				var out struct{ Messages []restMessage }
				resp, b := rc.do("POST", "/v1/queues/poll/get?wait=1s&count=3", nil)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("poll: %d %s", resp.StatusCode, b)
					return
				}
				json.Unmarshal(b, &out)
				for _, m := range out.Messages {
					rc.do("POST", "/v1/ack/"+m.AckToken, nil)
					mu.Lock()
					seen[m.Payload]++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range msgs {
		publishAMQP(t, ch, "", "poll", amqp.Publishing{Body: []byte(strconv.Itoa(i))})
		if i%10 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	wg.Wait()
	if len(seen) != msgs {
		t.Fatalf("pollers saw %d distinct messages, want %d", len(seen), msgs)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s seen %d times", k, n)
		}
	}
}

// ---------------------------------------------------------------------------
// SSE

type sseEvent struct{ id, event, data string }

// sseStream is an open event stream; events arrive on ch until it ends.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	ch     chan sseEvent
}

func openSSE(t testing.TB, rc *restClient, path, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", rc.base+path, nil)
	req.SetBasicAuth(rc.user, rc.pass)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	s := &sseStream{resp: resp, cancel: cancel, ch: make(chan sseEvent, 1000)}
	go func() {
		defer close(s.ch)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					s.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(s.close)
	if ev := s.next(t); ev.event != "ready" {
		t.Fatalf("first event %+v, want ready", ev)
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

func (s *sseStream) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func (s *sseStream) message(t testing.TB) (string, restMessage) {
	t.Helper()
	for {
		ev := s.next(t)
		if ev.event != "message" {
			continue
		}
		var m restMessage
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatal(err)
		}
		return ev.id, m
	}
}

func TestRESTEventsResumeWithoutLoss(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "feed", true)
	for i := range 5 {
		publishAMQP(t, ch, "", "feed", amqp.Publishing{Body: []byte(strconv.Itoa(i)), DeliveryMode: 2})
	}
	got := map[string]int{}
	s := openSSE(t, rc, "/v1/events?queue=feed&resume=20s", "")
	var lastID string
	for range 3 {
		id, m := s.message(t)
		got[m.Payload]++
		lastID = id
	}
	// The connection drops with messages 3 and 4 sent but not read.
	s.close()
	publishAMQP(t, ch, "", "feed", amqp.Publishing{Body: []byte("5"), DeliveryMode: 2})

	// Reconnect with Last-Event-ID: 0..2 are confirmed (acked), 3..5 come.
	s = openSSE(t, rc, "/v1/events?queue=feed&resume=20s", lastID)
	for range 3 {
		_, m := s.message(t)
		got[m.Payload]++
	}
	publishAMQP(t, ch, "", "feed", amqp.Publishing{Body: []byte("6"), DeliveryMode: 2})
	id6, m := s.message(t)
	got[m.Payload]++
	for i := range 7 {
		if got[strconv.Itoa(i)] != 1 {
			t.Errorf("message %d seen %d times (all: %v)", i, got[strconv.Itoa(i)], got)
		}
	}
	// Confirm everything, then end without resume: nothing comes back.
	s.close()
	s = openSSE(t, rc, "/v1/events?queue=feed&resume=0", id6)
	s.close()
	eventually(t, 5*time.Second, "the SSE session to close", func() bool {
		q, err := ch.QueueDeclarePassive("feed", true, false, false, false, nil)
		return err == nil && q.Consumers == 0
	})
	if q, _ := ch.QueueDeclarePassive("feed", true, false, false, false, nil); q.Messages != 0 {
		t.Errorf("%d messages left after confirming all", q.Messages)
	}

	// Unconfirmed messages of a dropped stream go back to the queue.
	publishAMQP(t, ch, "", "feed", amqp.Publishing{Body: []byte("7"), DeliveryMode: 2})
	s = openSSE(t, rc, "/v1/events?queue=feed&resume=0", "")
	if _, m := s.message(t); m.Payload != "7" {
		t.Fatalf("payload %q", m.Payload)
	}
	s.close()
	ds, err := ch.Consume("feed", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := nextDelivery(t, ds); string(d.Body) != "7" || !d.Redelivered {
		t.Fatalf("requeued %q redelivered=%v", d.Body, d.Redelivered)
	}
}

// A client that reconnects while the server still holds its old
// connection takes the session over; the old response ends.
func TestRESTEventsTakeover(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "tk", false)
	for i := range 3 {
		publishAMQP(t, ch, "", "tk", amqp.Publishing{Body: []byte(strconv.Itoa(i))})
	}
	old := openSSE(t, rc, "/v1/events?queue=tk", "")
	id0, m := old.message(t)
	if m.Payload != "0" {
		t.Fatalf("first %q", m.Payload)
	}
	s := openSSE(t, rc, "/v1/events?queue=tk", id0)
	for _, want := range []string{"1", "2"} {
		if _, m := s.message(t); m.Payload != want {
			t.Fatalf("after takeover got %q, want %q", m.Payload, want)
		}
	}
	for range old.ch { // the old response ends
	}
}

func TestRESTEventsCheckpointAndExchange(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	declare(t, ch, "cp", false)
	for i := range 5 {
		publishAMQP(t, ch, "", "cp", amqp.Publishing{Body: []byte(strconv.Itoa(i))})
	}
	// prefetch=2: two messages, then a checkpoint and the end of the response.
	var got []string
	lastID := ""
	for len(got) < 5 {
		s := openSSE(t, rc, "/v1/events?queue=cp&prefetch=2", lastID)
		for len(got) < 5 {
			ev, ok := <-s.ch
			if !ok {
				break
			}
			if ev.event == "message" {
				var m restMessage
				json.Unmarshal([]byte(ev.data), &m)
				got = append(got, m.Payload)
				lastID = ev.id
			}
		}
		s.close()
	}
	if strings.Join(got, ",") != "0,1,2,3,4" {
		t.Fatalf("got %v", got)
	}

	// Exchange stream: a server-named queue bound with binding_key.
	s := openSSE(t, rc, "/v1/events?exchange=amq.topic&binding_key=logs.*", "")
	publishAMQP(t, ch, "amq.topic", "logs.error", amqp.Publishing{Body: []byte("boom"), ContentType: "text/plain"})
	publishAMQP(t, ch, "amq.topic", "other.error", amqp.Publishing{Body: []byte("no")})
	_, m := s.message(t)
	if m.Payload != "boom" || m.RoutingKey != "logs.error" || m.Exchange != "amq.topic" || m.Properties["content_type"] != "text/plain" {
		t.Fatalf("exchange event %+v", m)
	}
	var route struct{ Queues []string }
	rc.expect(http.StatusOK, &route, "POST", "/v1/route/amq.topic/logs.x", nil)
	if len(route.Queues) != 1 || !strings.HasPrefix(route.Queues[0], "amq.gen-") {
		t.Fatalf("stream queue %v", route.Queues)
	}
	s.close()
	// With the default resume window the queue stays 30s; with resume=0 it goes now.
	s = openSSE(t, rc, "/v1/events?exchange=amq.topic&binding_key=x.*&resume=0", "")
	s.close()
	eventually(t, 5*time.Second, "the stream's queue to be deleted", func() bool {
		var r struct{ Queues []string }
		rc.expect(http.StatusOK, &r, "POST", "/v1/route/amq.topic/x.y", nil)
		return len(r.Queues) == 0
	})
}

// ---------------------------------------------------------------------------
// RPC

// goWorker answers requests on queue: the reply is "echo:" + body with the
// request's correlation id; a request "slow" is answered after 2s.
func goWorker(t testing.TB, inst *instance, queue string) {
	t.Helper()
	_, ch := amqpDial(t, inst)
	declare(t, ch, queue, false)
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range ds {
			if string(d.Body) == "slow" {
				time.Sleep(2 * time.Second)
			}
			ch.PublishWithContext(context.Background(), "", d.ReplyTo, false, false, amqp.Publishing{
				CorrelationId: d.CorrelationId, ContentType: "text/plain", MessageId: "reply-" + string(d.Body),
				Headers: amqp.Table{"worker": "go"}, Body: append([]byte("echo:"), d.Body...),
			})
			d.Ack(false)
		}
	}()
}

func TestRESTRPCGoWorker(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	goWorker(t, inst, "rpc_go")

	resp, body := rc.do("POST", "/v1/rpc/amq.default/rpc_go", []byte("hello"), "Content-Type", "text/plain")
	if resp.StatusCode != http.StatusOK || string(body) != "echo:hello" {
		t.Fatalf("rpc: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Amqp-Message-Id") != "reply-hello" ||
		resp.Header.Get("X-Amqp-Header-Worker") != "go" || resp.Header.Get("X-Amqp-Correlation-Id") == "" {
		t.Errorf("reply headers %v", resp.Header)
	}

	// 50 concurrent calls each get their own reply.
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fmt.Sprintf("call-%d", i)
			resp, body := rc.do("POST", "/v1/rpc/amq.default/rpc_go?timeout=10s", []byte(b))
			if resp.StatusCode != http.StatusOK || string(body) != "echo:"+b {
				errs <- fmt.Sprintf("%s: %d %q", b, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// No reply in time: 504 saying after how long.
	if r := rc.expectError(http.StatusGatewayTimeout, "POST", "/v1/rpc/amq.default/rpc_go?timeout=300ms", []byte("slow")); !strings.Contains(r, "300ms") {
		t.Errorf("timeout reason %q", r)
	}
	// No route: 404 saying so.
	if r := rc.expectError(http.StatusNotFound, "POST", "/v1/rpc/amq.default/no_worker_queue", []byte("x")); !strings.Contains(r, "no route") {
		t.Errorf("no-route reason %q", r)
	}
	rc.expectError(http.StatusNotFound, "POST", "/v1/rpc/no-such-exchange/x", []byte("x"))

	// Prefer: respond-async: 202 + Location, then poll it.
	var acc struct{ ID, Location string }
	resp = rc.expect(http.StatusAccepted, &acc, "POST", "/v1/rpc/amq.default/rpc_go", []byte("later"), "Prefer", "respond-async")
	if resp.Header.Get("Location") != acc.Location || !strings.HasPrefix(acc.Location, "/v1/replies/") {
		t.Fatalf("async: Location %q body %+v", resp.Header.Get("Location"), acc)
	}
	resp, body = rc.do("GET", acc.Location, nil, "Prefer", "wait=5")
	if resp.StatusCode != http.StatusOK || string(body) != "echo:later" {
		t.Fatalf("async reply: %d %q", resp.StatusCode, body)
	}
	rc.expectError(http.StatusNotFound, "GET", acc.Location, nil) // fetched once
	// Pending, then timed out.
	rc.expect(http.StatusAccepted, &acc, "POST", "/v1/rpc/amq.default/rpc_go?timeout=1s", []byte("slow"), "Prefer", "respond-async")
	rc.expect(http.StatusAccepted, nil, "GET", acc.Location, nil)
	time.Sleep(1300 * time.Millisecond)
	rc.expectError(http.StatusGatewayTimeout, "GET", acc.Location, nil)
}

func TestRESTRPCPythonWorker(t *testing.T) {
	needPika(t)
	t.Parallel()
	inst := startWarren(t, "")
	worker := startScript(t, "rpc_server.py", "--url", amqpURL(inst))
	waitLine(t, worker, "Awaiting RPC requests", lineTimeout)
	rc := newREST(t, inst)
	for n, want := range map[string]string{"10": "55", "30": "832040", "1": "1"} {
		resp, body := rc.do("POST", "/v1/rpc/amq.default/rpc_queue?timeout=10s", []byte(n))
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("fib(%s): %d %q, want %q", n, resp.StatusCode, body, want)
		}
	}
	// With the curl binary, as docs/rest.md shows.
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sS", "-u", "guest:guest", "-X", "POST", "--data-binary", "20",
			"http://"+inst.HTTPAddr()+"/v1/rpc/amq.default/rpc_queue?timeout=10s").CombinedOutput()
		if err != nil || string(out) != "6765" {
			t.Errorf("curl rpc: %v %q", err, out)
		}
	}
	// The worker printed every request.
	if n := worker.count("fib("); n < 3 {
		t.Errorf("worker saw %d requests", n)
	}
}

// ---------------------------------------------------------------------------
// routing dry run

func TestRESTRouteDryRun(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	_, ch := amqpDial(t, inst)
	for _, q := range []string{"qa", "qb", "qc", "qh"} {
		declare(t, ch, q, false)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("t1", "topic", false, false, false, false, nil))
	must(ch.ExchangeDeclare("f1", "fanout", false, false, false, false, nil))
	must(ch.ExchangeDeclare("ae", "fanout", false, false, false, false, nil))
	must(ch.ExchangeDeclare("dx", "direct", false, false, false, false, amqp.Table{"alternate-exchange": "ae"}))
	must(ch.ExchangeDeclare("hx", "headers", false, false, false, false, nil))
	must(ch.QueueBind("qa", "a.*", "t1", false, nil))
	must(ch.ExchangeBind("f1", "a.#", "t1", false, nil))
	must(ch.QueueBind("qb", "", "f1", false, nil))
	must(ch.QueueBind("qc", "", "ae", false, nil))
	must(ch.QueueBind("qh", "", "hx", false, amqp.Table{"x-match": "all", "format": "pdf", "size": int32(3)}))

	var out struct {
		Routed             bool
		Queues             []string
		AlternateExchanges []string `json:"alternate_exchanges"`
		Hops               []struct {
			Exchange        string
			Destination     string
			DestinationType string `json:"destination_type"`
			BindingKey      string `json:"binding_key"`
			Via             string
		}
	}
	rc.expect(http.StatusOK, &out, "POST", "/v1/route/t1/a.b", nil)
	sort.Strings(out.Queues)
	if !out.Routed || strings.Join(out.Queues, ",") != "qa,qb" {
		t.Fatalf("t1 a.b: %+v", out)
	}
	var hops []string
	for _, h := range out.Hops {
		hops = append(hops, h.Exchange+">"+h.Destination+"("+h.DestinationType+","+h.BindingKey+","+h.Via+")")
	}
	sort.Strings(hops)
	if strings.Join(hops, " ") != "f1>qb(queue,,binding) t1>f1(exchange,a.#,binding) t1>qa(queue,a.*,binding)" {
		t.Errorf("hops %v", hops)
	}

	out.Queues, out.Hops = nil, nil
	rc.expect(http.StatusOK, &out, "POST", "/v1/route/dx/unbound", nil)
	if strings.Join(out.Queues, ",") != "qc" || strings.Join(out.AlternateExchanges, ",") != "ae" {
		t.Fatalf("alternate exchange: %+v", out)
	}

	out.Queues = nil
	rc.expect(http.StatusOK, &out, "POST", "/v1/route/amq.default/qa", nil)
	if strings.Join(out.Queues, ",") != "qa" || out.Hops[0].Via != "default" {
		t.Fatalf("default exchange: %+v", out)
	}

	// Headers exchange: headers from the JSON body (typed) and X-Amqp-Header-*.
	out.Queues = nil
	rc.expect(http.StatusOK, &out, "POST", "/v1/route/hx/", []byte(`{"headers": {"size": 3}}`), "Content-Type", "application/json", "X-Amqp-Header-Format", "pdf")
	if strings.Join(out.Queues, ",") != "qh" {
		t.Fatalf("headers exchange: %+v", out)
	}
	out.Queues = nil
	rc.expect(http.StatusOK, &out, "POST", "/v1/route/hx/", []byte(`{"headers": {"size": 4, "format": "pdf"}}`), "Content-Type", "application/json")
	if out.Routed || len(out.Queues) != 0 {
		t.Fatalf("headers exchange, no match: %+v", out)
	}
	rc.expectError(http.StatusNotFound, "POST", "/v1/route/nope/x", nil)

	// A dry run publishes nothing.
	if q, _ := ch.QueueDeclarePassive("qa", false, false, false, false, nil); q.Messages != 0 {
		t.Errorf("dry run left %d messages in qa", q.Messages)
	}
}

// ---------------------------------------------------------------------------
// errors

func TestRESTErrors(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	conn, ch := amqpDial(t, inst)
	declare(t, ch, "eq", false)

	// 401
	rc.as("", "").expectError(http.StatusUnauthorized, "POST", "/v1/publish/amq.default/eq", []byte("x"))
	rc.as("guest", "wrong").expectError(http.StatusUnauthorized, "POST", "/v1/queues/eq/get", nil)
	// 400: parameters and headers validated
	for _, p := range []string{"?count=0", "?count=1001", "?count=x", "?ack=sometimes", "?wait=forever", "?wait=10m", "?lease=100ms"} {
		rc.expectError(http.StatusBadRequest, "POST", "/v1/queues/eq/get"+p, nil)
	}
	rc.expectError(http.StatusBadRequest, "POST", "/v1/publish/amq.default/eq", []byte("x"), "X-Amqp-Priority", "300")
	rc.expectError(http.StatusBadRequest, "POST", "/v1/publish/amq.default/eq", []byte("x"), "X-Amqp-Delivery-Mode", "3")
	rc.expectError(http.StatusBadRequest, "POST", "/v1/publish/amq.default/eq?mandatory=maybe", []byte("x"))
	rc.expectError(http.StatusBadRequest, "POST", "/v1/ack/not-a-token", nil)
	rc.expectError(http.StatusBadRequest, "GET", "/v1/events", nil)
	rc.expectError(http.StatusBadRequest, "GET", "/v1/events?queue=eq&exchange=amq.topic", nil)
	rc.expectError(http.StatusBadRequest, "POST", "/v1/queues/eq/get?count=2", nil, "Accept", "application/octet-stream")
	// 404
	rc.expectError(http.StatusNotFound, "POST", "/v1/publish/no-such-exchange/k", []byte("x"))
	rc.expectError(http.StatusNotFound, "POST", "/v1/queues/no-such-queue/get", nil)
	rc.expectError(http.StatusNotFound, "GET", "/v1/events?queue=no-such-queue", nil)
	rc.expectError(http.StatusNotFound, "POST", "/v1/publish/amq.default/eq?vhost=nope", []byte("x"))
	rc.expectError(http.StatusNotFound, "GET", "/v1/replies/unknown", nil)
	// 403: a user without write permission, and one without the vhost
	if err := inst.router.PutUser("reader", "pw", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := inst.router.SetPermissions(mapping.Permission{User: "reader", VHost: "/", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	reader := rc.as("reader", "pw")
	if r := reader.expectError(http.StatusForbidden, "POST", "/v1/publish/amq.default/eq", []byte("x")); !strings.Contains(r, "write access") {
		t.Errorf("403 reason %q", r)
	}
	reader.expectError(http.StatusForbidden, "POST", "/v1/rpc/amq.default/eq", []byte("x"))
	reader.expectError(http.StatusForbidden, "POST", "/v1/route/amq.default/eq", nil)
	reader.expect(http.StatusOK, nil, "POST", "/v1/queues/eq/get", nil) // read is allowed
	if err := inst.router.PutUser("nobody", "pw", "", nil); err != nil {
		t.Fatal(err)
	}
	rc.as("nobody", "pw").expectError(http.StatusForbidden, "POST", "/v1/queues/eq/get", nil)
	// 409: user_id that is not the caller
	rc.expectError(http.StatusConflict, "POST", "/v1/publish/amq.default/eq", []byte("x"), "X-Amqp-User-Id", "someone-else")
	// 423: an exclusive queue of another connection
	if _, err := ch.QueueDeclare("excl", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	rc.expectError(http.StatusLocked, "POST", "/v1/queues/excl/get", nil)
	// 429: back-pressure while a resource alarm is on
	inst.router.SetAlarmsForTest(true, false)
	resp, _ := rc.do("POST", "/v1/publish/amq.default/eq", []byte("x"))
	inst.router.SetAlarmsForTest(false, false)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("under an alarm: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_ = conn

	// 413: refused from Content-Length, before the body is read.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(make([]byte, 1024)) // a little, then nothing: the server must not wait
	req, _ := http.NewRequest("POST", rc.base+"/v1/publish/amq.default/eq", pr)
	req.ContentLength = (16 << 20) + 1
	req.SetBasicAuth("guest", "guest")
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || time.Since(start) > 5*time.Second {
		t.Errorf("oversized body: %d after %v", resp.StatusCode, time.Since(start))
	}
	// ... and a chunked body that turns out too large.
	big := bytes.Repeat([]byte("x"), (16<<20)+1)
	req, _ = http.NewRequest("POST", rc.base+"/v1/rpc/amq.default/eq", io.MultiReader(bytes.NewReader(big)))
	req.SetBasicAuth("guest", "guest")
	resp, err = (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized chunked body: %d", resp.StatusCode)
		}
	}
}

// ---------------------------------------------------------------------------
// docs

func TestRESTDocs(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	rc := newREST(t, inst)
	rc.user = ""
	resp, body := rc.do("GET", "/docs", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("/openapi.json")) {
		t.Fatalf("/docs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if bytes.Contains(body, []byte("https://")) {
		t.Error("/docs loads something from the network")
	}
	var doc struct {
		Paths map[string]map[string]any
	}
	rc.expect(http.StatusOK, &doc, "GET", "/openapi.json", nil)
	for _, p := range []string{"/v1/publish/{exchange}/{routing_key}", "/v1/queues/{queue}/get", "/v1/events", "/v1/rpc/{exchange}/{routing_key}", "/v1/route/{exchange}/{routing_key}"} {
		if doc.Paths[p] == nil {
			t.Errorf("/openapi.json lacks %s", p)
		}
	}
}

// ---------------------------------------------------------------------------
// curl one-liners of docs/rest.md

func TestRESTCurlOneLiners(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	t.Parallel()
	inst := startWarren(t, "")
	_, ch := amqpDial(t, inst)
	declare(t, ch, "orders", true)
	goWorker(t, inst, "rpc_queue")
	h := "http://" + inst.HTTPAddr()
	// curl runs a line of docs/rest.md through sh with $TOKEN and
	// $LOCATION set, against this instance instead of localhost:15672.
	var token, location string
	curl := func(line string) string {
		t.Helper()
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, "http://localhost:15672", h))
		cmd.Env = append(cmd.Environ(), "TOKEN="+token, "LOCATION="+location)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	tokenOf := func(out string) string {
		t.Helper()
		var got struct{ Messages []restMessage }
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Messages) != 1 {
			t.Fatalf("get: %s", out)
		}
		return got.Messages[0].AckToken
	}
	// Every line below is copied into docs/rest.md.
	if out := curl(`curl -s -u guest:guest -X POST -H 'Content-Type: text/plain' -H 'X-Amqp-Header-Source: shell' --data-binary 'hello' 'http://localhost:15672/v1/publish/amq.default/orders'`); out != `{"routed":true}` {
		t.Errorf("publish: %s", out)
	}
	token = tokenOf(curl(`curl -s -u guest:guest -X POST 'http://localhost:15672/v1/queues/orders/get?count=10&wait=5s&lease=60s'`))
	if out := curl(`curl -s -u guest:guest -X POST "http://localhost:15672/v1/extend/$TOKEN?lease=5m"`); !strings.Contains(out, "lease_expires_at") {
		t.Errorf("extend: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST "http://localhost:15672/v1/nack/$TOKEN?requeue=true"`); out != `{"status":"requeued"}` {
		t.Errorf("nack: %s", out)
	}
	out := curl(`curl -s -u guest:guest -X POST -H 'Accept: application/octet-stream' -D - 'http://localhost:15672/v1/queues/orders/get'`)
	if !strings.Contains(out, "X-Amqp-Redelivered: true") || !strings.HasSuffix(out, "hello") {
		t.Errorf("raw get: %s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "X-Amqp-Ack-Token: "); ok {
			token = v
		}
	}
	if out := curl(`curl -s -u guest:guest -X POST "http://localhost:15672/v1/ack/$TOKEN"`); out != `{"status":"acked"}` {
		t.Errorf("ack: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST -H 'Content-Type: application/json' -d '[{"exchange":"amq.default","routing_key":"orders","payload":"a"},{"exchange":"amq.default","routing_key":"orders","payload":"Yg==","payload_encoding":"base64"}]' 'http://localhost:15672/v1/publish'`); !strings.Contains(out, `"status":200`) {
		t.Errorf("batch: %s", out)
	}
	if out := curl(`curl -s -N -m 2 -u guest:guest 'http://localhost:15672/v1/events?queue=orders&resume=0' || true`); !strings.Contains(out, "event: message") {
		t.Errorf("events: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST --data-binary 'ping' 'http://localhost:15672/v1/rpc/amq.default/rpc_queue?timeout=5s'`); out != "echo:ping" {
		t.Errorf("rpc: %s", out)
	}
	out = curl(`curl -s -i -u guest:guest -X POST -H 'Prefer: respond-async' --data-binary 'ping' 'http://localhost:15672/v1/rpc/amq.default/rpc_queue'`)
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Location: "); ok {
			location = v
		}
	}
	if !strings.HasPrefix(out, "HTTP/1.1 202") || location == "" {
		t.Fatalf("async rpc: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -H 'Prefer: wait=10' "http://localhost:15672$LOCATION"`); out != "echo:ping" {
		t.Errorf("async reply: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST 'http://localhost:15672/v1/route/amq.default/orders'`); !strings.Contains(out, `"queues":["orders"]`) {
		t.Errorf("route: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST 'http://localhost:15672/v1/rpc/amq.default/nobody_listens'`); !strings.Contains(out, `"error":"not_found"`) {
		t.Errorf("rpc without route: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST 'http://localhost:15672/v1/queues/orders/get?count=abc'`); !strings.Contains(out, `"reason":"query parameter count must be an integer between 1 and 1000, got 'abc'"`) {
		t.Errorf("bad count: %s", out)
	}
	if out := curl(`curl -s -u guest:guest -X POST --data-binary 'hello' 'http://localhost:15672/v1/publish/amq.default/orders'`); out != `{"routed":true}` {
		t.Errorf("README publish: %s", out)
	}
}

// TestRESTDocsCurlLinesAreTested: every curl line of README.md and
// docs/rest.md that calls /v1/ is one that TestRESTCurlOneLiners runs
// (it appears verbatim in this file), so the documents cannot drift from
// what was tested.
func TestRESTDocsCurlLinesAreTested(t *testing.T) {
	src, err := os.ReadFile("rest_test.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, doc := range []string{"../../README.md", "../../docs/rest.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "curl ") || !strings.Contains(line, "/v1/") {
				continue
			}
			n++
			if !bytes.Contains(src, []byte("`"+line+"`")) {
				t.Errorf("%s: this line is not run by TestRESTCurlOneLiners:\n%s", doc, line)
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d curl lines calling /v1/ in README.md and docs/rest.md", n)
	}
}

// ---------------------------------------------------------------------------
// benchmarks (not timed tests): go test ./cmd/warren -run '^$' -bench REST

// BenchmarkRESTPublish1KB publishes 1 KB bodies over HTTP from parallel
// keep-alive clients, each answered after the store (confirm semantics);
// an AMQP consumer drains the queue.
func BenchmarkRESTPublish1KB(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "transient-queue"
		if durable {
			name = "durable-queue-persistent"
		}
		b.Run(name, func(b *testing.B) {
			inst := startWarren(b, "")
			_, ch := amqpDial(b, inst)
			declare(b, ch, "bench", durable)
			ds, err := ch.Consume("bench", "", true, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for range ds {
				}
			}()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			url := "http://" + inst.HTTPAddr() + "/v1/publish/amq.default/bench"
			body := bytes.Repeat([]byte("x"), 1024)
			b.SetBytes(1024)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.SetBasicAuth("guest", "guest")
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkRESTRPC measures curl-style RPC round trips (HTTP -> AMQP Go
// worker -> HTTP), one at a time, and reports the median and p99.
func BenchmarkRESTRPC(b *testing.B) {
	inst := startWarren(b, "")
	goWorker(b, inst, "rpc_bench")
	hc := &http.Client{}
	url := "http://" + inst.HTTPAddr() + "/v1/rpc/amq.default/rpc_bench"
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("POST", url, strings.NewReader("ping"))
		req.SetBasicAuth("guest", "guest")
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestRESTIdempotencyAcrossRestart: an Idempotency-Key whose first attempt
// stored a persistent message in a durable queue is still known after a
// restart (the key travels in the message's store record), so the retry
// publishes nothing; a key whose attempt stored nothing (transient, so
// gone with the restart) publishes again; another user's same key is
// another key.
func TestRESTIdempotencyAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	inst := startWarren(t, dir)
	_, ch := amqpDial(t, inst)
	if _, err := ch.QueueDeclare("idem", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	rc := newREST(t, inst)
	rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/idem", []byte("stored"), "Idempotency-Key", "order-17")
	rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/idem", []byte("fleeting"), "Idempotency-Key", "order-18", "X-Amqp-Delivery-Mode", "1")
	stopWarren(t, inst)

	inst = startWarren(t, dir)
	rc = newREST(t, inst)
	var res struct{ Routed bool }
	resp := rc.expect(http.StatusOK, &res, "POST", "/v1/publish/amq.default/idem", []byte("stored"), "Idempotency-Key", "order-17")
	if resp.Header.Get("Idempotent-Replayed") != "true" || !res.Routed {
		t.Fatalf("retry after restart: replayed=%q routed=%v", resp.Header.Get("Idempotent-Replayed"), res.Routed)
	}
	resp = rc.expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/idem", []byte("fleeting"), "Idempotency-Key", "order-18", "X-Amqp-Delivery-Mode", "1")
	if resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a key whose message was not stored was replayed after a restart")
	}
	a := newMgmtClient(t, inst)
	a.want(201, "PUT", "/api/users/other", map[string]any{"password": "pw", "tags": ""}, nil)
	a.want(201, "PUT", "/api/permissions/%2F/other", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	resp = rc.as("other", "pw").expect(http.StatusOK, nil, "POST", "/v1/publish/amq.default/idem", []byte("theirs"), "Idempotency-Key", "order-17")
	if resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("another user's key was taken for guest's")
	}

	conn, _ := amqpDial(t, inst)
	if q, err := queueState(t, conn, "idem"); err != nil || q.Messages != 3 {
		t.Fatalf("queue after the retries: %+v %v (want the stored message, the re-sent transient one and the other user's)", q, err)
	}
	_, ch = amqpDial(t, inst)
	var bodies []string
	for range 3 {
		d, ok, err := ch.Get("idem", true)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		bodies = append(bodies, string(d.Body))
		if len(d.Headers) != 0 {
			t.Errorf("consumer sees headers %v", d.Headers)
		}
	}
	if bodies[0] != "stored" || bodies[1] != "fleeting" || bodies[2] != "theirs" {
		t.Fatalf("messages %q", bodies)
	}
}
