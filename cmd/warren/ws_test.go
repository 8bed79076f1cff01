package main

// WebSocket front, JSON protocol (/v1/ws), driven by a gorilla/websocket
// client against an in-process Warren, with amqp091-go on the other side
// for the cross-front cases.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/gateway"
)

const wsTimeout = 10 * time.Second

// wsTestClient is a gorilla client with a reader goroutine; frames wait in
// a list until a test expects them.
type wsTestClient struct {
	t  testing.TB
	ws *websocket.Conn

	mu     sync.Mutex
	frames []map[string]any
	closed *websocket.CloseError
	done   chan struct{}
	more   chan struct{}
	nextID int
}

func guestHeader() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("guest:guest")))
	return h
}

// wsDial opens /v1/ws (or path) with header and waits for nothing.
func wsDial(t testing.TB, inst *instance, pathQuery string, header http.Header) (*wsTestClient, *http.Response, error) {
	t.Helper()
	return wsDialAddr(t, inst.HTTPAddr(), pathQuery, header)
}

// wsDialAddr is wsDial to the HTTP front at addr (host:port).
func wsDialAddr(t testing.TB, addr, pathQuery string, header http.Header) (*wsTestClient, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"warren.v1"}, HandshakeTimeout: wsTimeout}
	ws, resp, err := d.Dial("ws://"+addr+pathQuery, header)
	if err != nil {
		return nil, resp, err
	}
	c := &wsTestClient{t: t, ws: ws, done: make(chan struct{}), more: make(chan struct{}, 1)}
	go c.readLoop()
	t.Cleanup(func() { ws.Close(); <-c.done })
	return c, resp, nil
}

// wsConnect opens /v1/ws as guest and waits for the welcome.
func wsConnect(t testing.TB, inst *instance) *wsTestClient {
	t.Helper()
	c, _, err := wsDial(t, inst, "/v1/ws", guestHeader())
	if err != nil {
		t.Fatalf("dial /v1/ws: %v", err)
	}
	c.expect("welcome", nil)
	return c
}

func (c *wsTestClient) readLoop() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			if ce, ok := err.(*websocket.CloseError); ok {
				c.closed = ce
			} else {
				c.closed = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: err.Error()}
			}
			c.mu.Unlock()
			c.signal()
			return
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Errorf("server sent non-JSON frame %q", data)
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		c.signal()
	}
}

func (c *wsTestClient) signal() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// send writes a request, giving it an id unless it has one (nil: none).
func (c *wsTestClient) send(f map[string]any) any {
	c.t.Helper()
	id, ok := f["id"]
	if !ok {
		c.mu.Lock()
		c.nextID++
		id = float64(c.nextID)
		c.mu.Unlock()
		f["id"] = id
	} else if id == nil {
		delete(f, "id")
	}
	if err := c.ws.WriteJSON(f); err != nil {
		c.t.Fatalf("send %v: %v", f, err)
	}
	return id
}

// expect waits for the first frame with op (and id, unless nil) and
// removes it from the list.
func (c *wsTestClient) expect(op string, id any) map[string]any {
	c.t.Helper()
	f, err := c.wait(op, id, wsTimeout)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *wsTestClient) wait(op string, id any, timeout time.Duration) (map[string]any, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if f["op"] == op && (id == nil || f["id"] == id) {
				c.frames = append(c.frames[:i], c.frames[i+1:]...)
				c.mu.Unlock()
				return f, nil
			}
		}
		closed := c.closed
		pending := fmt.Sprint(c.frames)
		c.mu.Unlock()
		if closed != nil {
			return nil, fmt.Errorf("waiting for %s (id %v): connection closed: %v; unread frames: %s", op, id, closed, pending)
		}
		select {
		case <-c.more:
		case <-deadline.C:
			return nil, fmt.Errorf("no %s frame (id %v) within %v; unread frames: %s", op, id, timeout, pending)
		}
	}
}

// call sends a request and returns its ok frame, failing on error.
func (c *wsTestClient) call(f map[string]any) map[string]any {
	c.t.Helper()
	id := c.send(f)
	r, err := c.answer(id)
	if err != nil {
		c.t.Fatalf("%v: %v", f, err)
	}
	return r
}

// answer waits for the ok or error frame of id.
func (c *wsTestClient) answer(id any) (map[string]any, error) {
	deadline := time.Now().Add(wsTimeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for i, f := range c.frames {
			if f["id"] == id && (f["op"] == "ok" || f["op"] == "error" || f["op"] == "reply") {
				c.frames = append(c.frames[:i], c.frames[i+1:]...)
				c.mu.Unlock()
				if f["op"] == "error" {
					return f, fmt.Errorf("error frame: %v", f)
				}
				return f, nil
			}
		}
		closed := c.closed
		c.mu.Unlock()
		if closed != nil {
			return nil, fmt.Errorf("connection closed: %v", closed)
		}
		select {
		case <-c.more:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no answer to request %v", id)
}

// callErr sends a request that must fail and returns the error frame.
func (c *wsTestClient) callErr(f map[string]any) map[string]any {
	c.t.Helper()
	id := c.send(f)
	r, err := c.answer(id)
	if err == nil {
		c.t.Fatalf("%v: want an error frame, got %v", f, r)
	}
	if r == nil {
		c.t.Fatal(err)
	}
	return r
}

// closeCode waits until the server closed the connection and returns the
// close code.
func (c *wsTestClient) closeCode(timeout time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.t.Fatalf("connection still open after %v", timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed.Code
}

func wsAMQP(t testing.TB, inst *instance) (*amqp.Connection, *amqp.Channel) {
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
	return conn, ch
}

func num(v any) int { f, _ := v.(float64); return int(f) }

func TestWSQueueSubscribeAckNack(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := wsConnect(t, inst)

	ok := c.call(map[string]any{"op": "declare_queue", "queue": "wsq"})
	if ok["queue"] != "wsq" {
		t.Fatalf("declare_queue: %v", ok)
	}
	for i := range 3 {
		ok := c.call(map[string]any{"op": "publish", "exchange": "", "routing_key": "wsq", "payload": "m" + strconv.Itoa(i)})
		if ok["routed"] != true {
			t.Fatalf("publish: %v", ok)
		}
	}
	ok = c.call(map[string]any{"op": "subscribe", "queue": "wsq", "ack": "client", "prefetch": 2, "subscription": "s"})
	if ok["subscription"] != "s" || ok["queue"] != "wsq" {
		t.Fatalf("subscribe: %v", ok)
	}
	m0 := c.expect("message", nil)
	m1 := c.expect("message", nil)
	if m0["payload"] != "m0" || m1["payload"] != "m1" || m0["subscription"] != "s" || m0["payload_encoding"] != "string" {
		t.Fatalf("messages: %v %v", m0, m1)
	}
	// prefetch 2: the third waits for an ack.
	if f, err := c.wait("message", nil, 300*time.Millisecond); err == nil {
		t.Fatalf("got a third message past prefetch 2: %v", f)
	}
	c.call(map[string]any{"op": "ack", "subscription": "s", "delivery_tag": m0["delivery_tag"]})
	m2 := c.expect("message", nil)
	if m2["payload"] != "m2" {
		t.Fatalf("third message: %v", m2)
	}
	// nack with requeue: m1 comes back redelivered.
	c.call(map[string]any{"op": "nack", "subscription": "s", "delivery_tag": m1["delivery_tag"], "requeue": true})
	again := c.expect("message", nil)
	if again["payload"] != "m1" || again["redelivered"] != true {
		t.Fatalf("redelivery: %v", again)
	}
	// reject drops; an unknown tag is a 409 (AMQP 406 PRECONDITION_FAILED).
	c.call(map[string]any{"op": "reject", "subscription": "s", "delivery_tag": again["delivery_tag"]})
	c.call(map[string]any{"op": "ack", "subscription": "s", "delivery_tag": m2["delivery_tag"]})
	e := c.callErr(map[string]any{"op": "ack", "subscription": "s", "delivery_tag": 999})
	if num(e["code"]) != 409 || e["error"] != "precondition_failed" {
		t.Fatalf("unknown tag: %v", e)
	}
	c.call(map[string]any{"op": "unsubscribe", "subscription": "s"})
	ok = c.call(map[string]any{"op": "declare_queue", "queue": "wsq", "passive": true})
	if num(ok["messages"]) != 0 || num(ok["consumers"]) != 0 {
		t.Fatalf("queue after acks: %v", ok)
	}
}

func TestWSErrorsAndTopology(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := wsConnect(t, inst)

	cases := []struct {
		req  map[string]any
		code int
	}{
		{map[string]any{"op": "subscribe", "queue": "missing"}, 404},
		{map[string]any{"op": "publish", "exchange": "nope", "routing_key": "k", "payload": "x"}, 404},
		{map[string]any{"op": "declare_queue", "queue": "amq.mine"}, 403},
		{map[string]any{"op": "frobnicate"}, 400},
		{map[string]any{"op": "publish", "routing_key": "k", "payload": "!!", "payload_encoding": "base64"}, 400},
		{map[string]any{"op": "ack", "subscription": "none", "delivery_tag": 1}, 404},
		{map[string]any{"op": "declare_exchange", "exchange": "x1", "type": "nonsense"}, 400},
	}
	for _, tc := range cases {
		e := c.callErr(tc.req)
		if num(e["code"]) != tc.code || e["message"] == "" {
			t.Errorf("%v: want code %d, got %v", tc.req, tc.code, e)
		}
	}
	// Not JSON: an error frame without id; the session goes on.
	c.ws.WriteMessage(websocket.TextMessage, []byte("{nope"))
	if e := c.expect("error", nil); num(e["code"]) != 400 {
		t.Fatalf("bad JSON: %v", e)
	}
	c.call(map[string]any{"op": "ping"})

	// declare_exchange, bind, unbind, exchange subscription with a binding key.
	c.call(map[string]any{"op": "declare_exchange", "exchange": "logs", "type": "topic"})
	c.call(map[string]any{"op": "declare_queue", "queue": "all-logs"})
	c.call(map[string]any{"op": "bind", "queue": "all-logs", "exchange": "logs", "routing_key": "#"})
	ok := c.call(map[string]any{"op": "subscribe", "exchange": "logs", "binding_key": "*.error", "subscription": "errs"})
	temp, _ := ok["queue"].(string)
	if !strings.HasPrefix(temp, "amq.gen-") {
		t.Fatalf("exchange subscription queue: %v", ok)
	}
	if r := c.call(map[string]any{"op": "publish", "exchange": "logs", "routing_key": "db.info", "payload": "i"}); r["routed"] != true {
		t.Fatalf("db.info not routed to all-logs: %v", r)
	}
	c.call(map[string]any{"op": "publish", "exchange": "logs", "routing_key": "db.error", "payload": "e"})
	m := c.expect("message", nil)
	if m["routing_key"] != "db.error" || m["exchange"] != "logs" || m["subscription"] != "errs" {
		t.Fatalf("topic message: %v", m)
	}
	c.call(map[string]any{"op": "unbind", "queue": "all-logs", "exchange": "logs", "routing_key": "#"})
	ok = c.call(map[string]any{"op": "declare_queue", "queue": "all-logs", "passive": true})
	if num(ok["messages"]) != 2 {
		t.Fatalf("all-logs: %v", ok)
	}
	// Unsubscribing deletes the server-named queue.
	c.call(map[string]any{"op": "unsubscribe", "subscription": "errs"})
	if e := c.callErr(map[string]any{"op": "declare_queue", "queue": temp, "passive": true}); num(e["code"]) != 404 {
		t.Fatalf("temp queue after unsubscribe: %v", e)
	}
	c.call(map[string]any{"op": "delete_queue", "queue": "all-logs"})
	c.call(map[string]any{"op": "delete_exchange", "exchange": "logs"})

	// Sessions are listed as connections, then go away with the socket.
	var found bool
	for _, cs := range inst.router.Connections() {
		found = found || (cs.Protocol == "WebSocket" && cs.User == "guest")
	}
	if !found {
		t.Fatalf("WebSocket session not in the connection list: %+v", inst.router.Connections())
	}
	c.ws.Close()
	eventually(t, wsTimeout, "session to leave the connection list", func() bool { return len(inst.router.Connections()) == 0 })
}

// TestWSFromAMQP: a message published by amqp091-go arrives over the
// WebSocket with the same properties.
func TestWSFromAMQP(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := wsConnect(t, inst)
	c.call(map[string]any{"op": "subscribe", "exchange": "amq.topic", "binding_key": "kern.*"})
	_, ch := wsAMQP(t, inst)
	ts := time.Unix(1700000000, 0)
	pub := amqp.Publishing{
		ContentType: "application/json", ContentEncoding: "identity", DeliveryMode: 2, Priority: 3,
		CorrelationId: "c-1", ReplyTo: "replies", Expiration: "60000", MessageId: "m-1", Timestamp: ts,
		Type: "greeting", AppId: "test", UserId: "guest",
		Headers: amqp.Table{"s": "v", "n": int32(42), "f": 1.5, "b": true, "nested": amqp.Table{"k": "v"}, "arr": []any{"a", int64(2)}},
		Body:    []byte(`{"hello":"world"}`),
	}
	if err := ch.Publish("amq.topic", "kern.critical", false, false, pub); err != nil {
		t.Fatal(err)
	}
	m := c.expect("message", nil)
	p, _ := m["properties"].(map[string]any)
	want := map[string]any{
		"content_type": "application/json", "content_encoding": "identity", "delivery_mode": 2.0, "priority": 3.0,
		"correlation_id": "c-1", "reply_to": "replies", "expiration": "60000", "message_id": "m-1",
		"timestamp": float64(ts.Unix()), "type": "greeting", "app_id": "test", "user_id": "guest",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("property %s = %v, want %v", k, p[k], v)
		}
	}
	h, _ := p["headers"].(map[string]any)
	hj, _ := json.Marshal(h)
	if string(hj) != `{"arr":["a",2],"b":true,"f":1.5,"n":42,"nested":{"k":"v"},"s":"v"}` {
		t.Errorf("headers = %s", hj)
	}
	if m["payload"] != `{"hello":"world"}` || m["routing_key"] != "kern.critical" || m["exchange"] != "amq.topic" {
		t.Errorf("message = %v", m)
	}
	// A binary body arrives as base64.
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	ch.Publish("amq.topic", "kern.bin", false, false, amqp.Publishing{Body: bin})
	m = c.expect("message", nil)
	if m["payload_encoding"] != "base64" || m["payload"] != base64.StdEncoding.EncodeToString(bin) {
		t.Errorf("binary message = %v", m)
	}
}

// TestWSToAMQP: a WebSocket publish reaches an amqp091-go consumer with
// its properties.
func TestWSToAMQP(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	_, ch := wsAMQP(t, inst)
	q, err := ch.QueueDeclare("to-amqp", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := wsConnect(t, inst)
	body := []byte{0xde, 0xad, 0xbe, 0xef}
	c.call(map[string]any{
		"op": "publish", "exchange": "", "routing_key": "to-amqp",
		"payload": base64.StdEncoding.EncodeToString(body), "payload_encoding": "base64",
		"properties": map[string]any{
			"content_type": "application/octet-stream", "delivery_mode": 2, "correlation_id": "abc",
			"message_id": "id-7", "timestamp": 1700000000, "headers": map[string]any{"n": 7, "x": 0.5, "s": "str", "t": map[string]any{"a": []any{1, "b"}}},
		},
	})
	select {
	case d := <-ds:
		if string(d.Body) != string(body) || d.ContentType != "application/octet-stream" || d.DeliveryMode != 2 ||
			d.CorrelationId != "abc" || d.MessageId != "id-7" || d.Timestamp.Unix() != 1700000000 {
			t.Fatalf("delivery: %+v", d)
		}
		if d.Headers["n"] != int64(7) || d.Headers["x"] != 0.5 || d.Headers["s"] != "str" {
			t.Fatalf("headers: %#v", d.Headers)
		}
		inner, _ := d.Headers["t"].(amqp.Table)
		if a, _ := inner["a"].([]any); len(a) != 2 || a[0] != int64(1) || a[1] != "b" {
			t.Fatalf("nested header: %#v", d.Headers["t"])
		}
	case <-time.After(wsTimeout):
		t.Fatal("no AMQP delivery")
	}
}

// wsRPCWorker runs an amqp091-go RPC server on queue that upper-cases.
func wsRPCWorker(t testing.TB, inst *instance, queue string) {
	t.Helper()
	_, ch := wsAMQP(t, inst)
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range ds {
			ch.Publish("", d.ReplyTo, false, false, amqp.Publishing{
				CorrelationId: d.CorrelationId, ContentType: "text/plain", Body: []byte(strings.ToUpper(string(d.Body))),
			})
			d.Ack(false)
		}
	}()
}

func TestWSRPC(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	wsRPCWorker(t, inst, "rpc_queue")
	c := wsConnect(t, inst)
	ids := []any{}
	for i := range 5 {
		ids = append(ids, c.send(map[string]any{"op": "rpc", "routing_key": "rpc_queue", "payload": "hello " + strconv.Itoa(i), "timeout_ms": 5000}))
	}
	for i, id := range ids {
		r := c.expect("reply", id)
		if r["payload"] != "HELLO "+strconv.Itoa(i) {
			t.Fatalf("reply %d: %v", i, r)
		}
		if p, _ := r["properties"].(map[string]any); p["content_type"] != "text/plain" {
			t.Fatalf("reply properties: %v", r)
		}
	}
	// No worker: 404 at once; a worker that never answers: 504.
	if e := c.callErr(map[string]any{"op": "rpc", "routing_key": "nobody", "payload": "x"}); num(e["code"]) != 404 {
		t.Fatalf("unrouted rpc: %v", e)
	}
	c.call(map[string]any{"op": "declare_queue", "queue": "silent"})
	start := time.Now()
	if e := c.callErr(map[string]any{"op": "rpc", "routing_key": "silent", "payload": "x", "timeout_ms": 200}); num(e["code"]) != 504 {
		t.Fatalf("rpc timeout: %v", e)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout took %v", time.Since(start))
	}
}

func TestWSAuthentication(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()

	// No credentials on the upgrade: the first frame must authenticate.
	c, _, err := wsDial(t, inst, "/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"op": "auth", "username": "guest", "password": "guest", "id": "a"})
	if w := c.expect("welcome", "a"); w["user"] != "guest" || w["vhost"] != "/" {
		t.Fatalf("welcome: %v", w)
	}
	// Wrong password: error 401 and close 4001.
	c, _, _ = wsDial(t, inst, "/v1/ws", nil)
	c.send(map[string]any{"op": "auth", "username": "guest", "password": "nope", "id": 1.0})
	if e := c.expect("error", 1.0); num(e["code"]) != 401 {
		t.Fatalf("bad password: %v", e)
	}
	if code := c.closeCode(wsTimeout); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	// Anything else first: 4001.
	c, _, _ = wsDial(t, inst, "/v1/ws", nil)
	c.send(map[string]any{"op": "publish", "routing_key": "x"})
	if code := c.closeCode(wsTimeout); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	// Wrong basic credentials: HTTP 401 before the upgrade.
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("guest:wrong")))
	if _, resp, err := wsDial(t, inst, "/v1/ws", h); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("bad basic auth: err=%v resp=%v", err, resp)
	}

	// Tokens: POST /v1/tokens needs basic auth.
	token := func(ttl int) string {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/tokens", strings.NewReader(`{"ttl_seconds":`+strconv.Itoa(ttl)+`}`))
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr gateway.TokenResponse
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(b, &tr) != nil || tr.User != "guest" || tr.Token == "" {
			t.Fatalf("POST /v1/tokens: %d %s", resp.StatusCode, b)
		}
		return tr.Token
	}
	resp, err := http.Post(base+"/v1/tokens", "application/json", nil)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("POST /v1/tokens without auth: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	tok := token(60)
	c, _, err = wsDial(t, inst, "/v1/ws?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.expect("welcome", nil); w["user"] != "guest" || w["expires_at"] == nil {
		t.Fatalf("token welcome: %v", w)
	}
	// The token in the first frame.
	c, _, _ = wsDial(t, inst, "/v1/ws", nil)
	c.send(map[string]any{"op": "auth", "token": tok, "id": "t"})
	c.expect("welcome", "t")
	// A forged token: HTTP 401.
	if _, resp, err := wsDial(t, inst, "/v1/ws?token="+tok[:len(tok)-2]+"xx", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("forged token accepted: %v", err)
	}
	// An expiring token closes the session (4001) when it expires.
	c, _, err = wsDial(t, inst, "/v1/ws?token="+token(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.expect("welcome", nil)
	if code := c.closeCode(5 * time.Second); code != 4001 {
		t.Fatalf("expired session closed with %d, want 4001", code)
	}

	// Origin: same-origin and no Origin pass, another site is refused.
	h = guestHeader()
	h.Set("Origin", "http://"+inst.HTTPAddr())
	if _, _, err := wsDial(t, inst, "/v1/ws", h); err != nil {
		t.Fatalf("same origin refused: %v", err)
	}
	h.Set("Origin", "https://evil.example")
	if _, resp, err := wsDial(t, inst, "/v1/ws", h); err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site origin accepted: %v", err)
	}
	// A vhost the user may not use: close 4003.
	c, _, _ = wsDial(t, inst, "/v1/ws?vhost=nope", guestHeader())
	if e := c.expect("error", nil); num(e["code"]) != 404 && num(e["code"]) != 403 {
		t.Fatalf("unknown vhost: %v", e)
	}
	if code := c.closeCode(wsTimeout); code != 4003 {
		t.Fatalf("unknown vhost: close %d", code)
	}
}

// TestWSAllowedOrigins: a configured allow-list admits exactly its
// origins.
func TestWSAllowedOrigins(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	inst.http.SetWSConfig(gateway.WSConfig{AllowedOrigins: []string{"https://app.example.com"}})
	h := guestHeader()
	h.Set("Origin", "https://app.example.com")
	if _, _, err := wsDial(t, inst, "/v1/ws", h); err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
	h.Set("Origin", "http://"+inst.HTTPAddr())
	if _, resp, err := wsDial(t, inst, "/v1/ws", h); err == nil || resp.StatusCode != 403 {
		t.Fatalf("origin outside the list accepted: %v", err)
	}
}

// TestWSSlowClient: a client that does not read holds at most a bounded
// number of messages; the rest stay in the queue, and the client is
// disconnected (4008) after the write timeout, its messages requeued.
func TestWSSlowClient(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	const n, size = 400, 64 << 10
	_, ch := wsAMQP(t, inst)
	if _, err := ch.QueueDeclare("flood", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("x", size))
	for range n {
		if err := ch.Publish("", "flood", false, false, amqp.Publishing{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	// A raw client that subscribes and then never reads.
	d := websocket.Dialer{Subprotocols: []string{"warren.v1"}, ReadBufferSize: 1024}
	ws, _, err := d.Dial("ws://"+inst.HTTPAddr()+"/v1/ws", guestHeader())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if tc, ok := ws.UnderlyingConn().(interface{ SetReadBuffer(int) error }); ok {
		tc.SetReadBuffer(16 << 10)
	}
	ws.WriteJSON(map[string]any{"op": "subscribe", "queue": "flood", "ack": "client", "prefetch": 0, "id": 1})
	ready := func() int {
		q, err := ch.QueueDeclarePassive("flood", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}
	time.Sleep(2 * time.Second)
	taken := n - ready()
	t.Logf("a client that does not read took %d of %d messages of %d KiB (%.1f MiB) before the server stopped", taken, n, size>>10, float64(taken*size)/(1<<20))
	if taken*size > 16<<20 {
		t.Fatalf("server handed %d messages (%d MiB) to a client that does not read", taken, taken*size>>20)
	}
	// The write timeout ends the session; unacked messages go back.
	eventually(t, 30*time.Second, "the slow client to be disconnected", func() bool { return len(inst.router.Connections()) == 1 })
	eventually(t, wsTimeout, "messages to be requeued", func() bool { return ready() == n })
}

// TestWSPublishBurst: a client that publishes faster than the store confirms gets
// flow frames (and never an unbounded backlog).
func TestWSPublishBurst(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := wsConnect(t, inst)
	c.call(map[string]any{"op": "declare_queue", "queue": "burst", "durable": true})
	const n = 3000
	for i := range n {
		c.send(map[string]any{"op": "publish", "routing_key": "burst", "payload": strconv.Itoa(i), "properties": map[string]any{"delivery_mode": 2}, "id": float64(100000 + i)})
	}
	for i := range n {
		if r, err := c.answer(float64(100000 + i)); err != nil || r["routed"] != true {
			t.Fatalf("publish %d: %v %v", i, r, err)
		}
	}
	ok := c.call(map[string]any{"op": "declare_queue", "queue": "burst", "durable": true, "passive": true})
	if num(ok["messages"]) != n {
		t.Fatalf("queue has %v messages, want %d", ok["messages"], n)
	}
	c.mu.Lock()
	flows := 0
	for _, f := range c.frames {
		if f["op"] == "flow" {
			flows++
		}
	}
	c.mu.Unlock()
	t.Logf("%d flow frames during a burst of %d publishes", flows, n)
}

// TestWSShutdown: server shutdown closes sessions with 1001.
func TestWSShutdown(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := wsConnect(t, inst)
	c.call(map[string]any{"op": "subscribe", "exchange": "amq.fanout"})
	stopWarren(t, inst)
	if code := c.closeCode(wsTimeout); code != websocket.CloseGoingAway {
		t.Fatalf("close code on shutdown %d, want 1001", code)
	}
}

// TestWarrenJSNode: clients/js/warren.js under Node: subscribe, receive an
// AMQP message, RPC to an amqp091-go worker, publish, then reconnect and
// resubscribe after the server closed the connection (as an operator
// would, close code 4320).
func TestWarrenJSNode(t *testing.T) {
	dir := jsTestDir(t)
	t.Parallel()
	inst := startWarren(t, "")
	wsRPCWorker(t, inst, "rpc_queue")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "warren_node.mjs", "ws://"+inst.HTTPAddr()+"/v1/ws")
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan map[string]any, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	step := func(want string) map[string]any {
		t.Helper()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("node exited before %q", want)
				}
				if m["step"] == want {
					return m
				}
				if m["step"] == "failed" || m["step"] == "timeout" {
					t.Fatalf("node: %v", m)
				}
				t.Logf("node: %v", m)
			case <-time.After(20 * time.Second):
				t.Fatalf("node: no %q", want)
			}
		}
	}
	step("open")
	step("subscribed")
	_, ch := wsAMQP(t, inst)
	ch.Publish("amq.topic", "node.a", false, false, amqp.Publishing{Body: []byte("first"), ContentType: "text/plain"})
	if m := step("message"); m["body"] != "first" || m["routingKey"] != "node.a" {
		t.Fatalf("message %v", m)
	}
	fmt.Fprintln(stdin, "rpc")
	if m := step("reply"); m["body"] != "FROM NODE" {
		t.Fatalf("reply %v", m)
	}
	fmt.Fprintln(stdin, "publish")
	// The ok of the publish and the message itself may come in either order.
	for seen := map[string]bool{}; !seen["published"] || !seen["message"]; {
		select {
		case m := <-lines:
			switch m["step"] {
			case "published":
				if m["routed"] != true {
					t.Fatalf("publish %v", m)
				}
			case "message":
				if m["routingKey"] != "node.self" || m["body"] != `{"n":1}` {
					t.Fatalf("own message %v", m)
				}
			default:
				t.Fatalf("node: %v", m)
			}
			seen[m["step"].(string)] = true
		case <-time.After(20 * time.Second):
			t.Fatal("node: no publish result")
		}
	}
	// The server closes the session; the client reconnects and subscribes again.
	var name string
	for _, cs := range inst.router.Connections() {
		if cs.Protocol == "WebSocket" {
			name = cs.Name
		}
	}
	if err := inst.router.CloseConnection(name, "test"); err != nil {
		t.Fatal(err)
	}
	if m := step("close"); num(m["code"]) != 4320 {
		t.Fatalf("close %v", m)
	}
	step("open")
	eventually(t, wsTimeout, "the resubscription", func() bool { return len(inst.router.Consumers()) == 2 }) // + the RPC worker
	ch.Publish("amq.topic", "node.b", false, false, amqp.Publishing{Body: []byte("after reconnect")})
	if m := step("message"); m["body"] != "after reconnect" {
		t.Fatalf("message after reconnect %v", m)
	}
	fmt.Fprintln(stdin, "bye")
	step("bye")
}
