package main

// STOMP over WebSocket (/ws): a raw gorilla client for the frame-level
// cases, and @stomp/stompjs under Node for "works unchanged".
//
// Environment:
//
//	WARREN_REQUIRE_BROWSER=1  fail instead of skip when node, the npm
//	                          packages of clients/js/test or chromium are
//	                          missing (make test sets it).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
)

// needTool skips t, or fails it under WARREN_REQUIRE_BROWSER=1.
func needTool(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("WARREN_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var (
	nodeOnce sync.Once
	nodeErr  error
)

// jsTestDir is clients/js/test; needNode makes sure node and its npm
// packages are there (running `npm ci` once when node_modules is missing).
func jsTestDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "clients", "js", "test"))
	if err != nil {
		t.Fatal(err)
	}
	nodeOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			nodeErr = fmt.Errorf("node not found in PATH")
			return
		}
		_, err1 := os.Stat(filepath.Join(dir, "node_modules", "@stomp", "stompjs"))
		_, err2 := os.Stat(filepath.Join(dir, "node_modules", "@cloudamqp", "amqp-client"))
		if err1 == nil && err2 == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			nodeErr = fmt.Errorf("%s/node_modules missing and npm not found", dir)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			nodeErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if nodeErr != nil {
		needTool(t, "the Node tests need node and the npm packages of clients/js/test  (@stomp/stompjs, ws, @cloudamqp/amqp-client): "+nodeErr.Error()+" (run `npm ci` in clients/js/test, or `make test`)")
	}
	return dir
}

// stompClient is a raw STOMP-over-WebSocket client for frame-level tests.
type stompClient struct {
	t  testing.TB
	ws *websocket.Conn
}

func stompDial(t testing.TB, inst *instance, query string) *stompClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"v12.stomp"}, HandshakeTimeout: wsTimeout}
	ws, resp, err := d.Dial("ws://"+inst.HTTPAddr()+"/ws"+query, nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	if resp.Header.Get("Sec-Websocket-Protocol") != "v12.stomp" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-Websocket-Protocol"))
	}
	t.Cleanup(func() { ws.Close() })
	return &stompClient{t: t, ws: ws}
}

func (c *stompClient) send(cmd string, body string, headers ...string) {
	c.t.Helper()
	var b bytes.Buffer
	b.WriteString(cmd + "\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ":" + headers[i+1] + "\n")
	}
	b.WriteString("\n" + body + "\x00")
	if err := c.ws.WriteMessage(websocket.TextMessage, b.Bytes()); err != nil {
		c.t.Fatalf("send %s: %v", cmd, err)
	}
}

type stompTestFrame struct {
	cmd     string
	headers map[string]string
	body    string
}

// next reads the next frame (skipping heart-beats).
func (c *stompClient) next() (*stompTestFrame, error) {
	for {
		c.ws.SetReadDeadline(time.Now().Add(wsTimeout))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		s := strings.TrimLeft(string(data), "\r\n")
		if s == "" {
			continue
		}
		head, body, _ := strings.Cut(s, "\n\n")
		lines := strings.Split(head, "\n")
		f := &stompTestFrame{cmd: lines[0], headers: map[string]string{}, body: strings.TrimRight(body, "\x00\n")}
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(l, ":")
			if _, dup := f.headers[k]; !dup {
				f.headers[k] = v
			}
		}
		return f, nil
	}
}

func (c *stompClient) expect(cmd string) *stompTestFrame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", cmd, err)
	}
	if f.cmd != cmd {
		c.t.Fatalf("got %s %v %q, want %s", f.cmd, f.headers, f.body, cmd)
	}
	return f
}

func (c *stompClient) connect() *stompTestFrame {
	c.t.Helper()
	c.send("CONNECT", "", "accept-version", "1.0,1.1,1.2", "host", "/", "login", "guest", "passcode", "guest", "heart-beat", "0,0")
	return c.expect("CONNECTED")
}

func TestSTOMPFrames(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := stompDial(t, inst, "")
	cf := c.connect()
	if cf.headers["version"] != "1.2" || cf.headers["server"] == "" {
		t.Fatalf("CONNECTED %v", cf.headers)
	}

	// /queue/: declared on SUBSCRIBE, SEND goes through the default exchange.
	c.send("SUBSCRIBE", "", "id", "q", "destination", "/queue/stq", "ack", "client", "receipt", "r1")
	if r := c.expect("RECEIPT"); r.headers["receipt-id"] != "r1" {
		t.Fatalf("receipt %v", r.headers)
	}
	c.send("SEND", "one", "destination", "/queue/stq", "content-type", "text/plain", "persistent", "true", "x-custom", "a:b", "receipt", "s1")
	c.send("SEND", "two", "destination", "/queue/stq")
	// "one" is persistent in a durable queue: its RECEIPT follows the
	// store write, before or after the deliveries.
	var m1, m2 *stompTestFrame
	receipted := false
	for m1 == nil || m2 == nil || !receipted {
		f, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.cmd == "RECEIPT" && f.headers["receipt-id"] == "s1":
			receipted = true
		case f.cmd == "MESSAGE" && m1 == nil:
			m1 = f
		case f.cmd == "MESSAGE":
			m2 = f
		default:
			t.Fatalf("unexpected %s %v", f.cmd, f.headers)
		}
	}
	if m1.body != "one" || m1.headers["destination"] != "/queue/stq" || m1.headers["subscription"] != "q" ||
		m1.headers["content-type"] != "text/plain" || m1.headers["persistent"] != "true" || m1.headers["x-custom"] != `a\cb` || m1.headers["ack"] == "" {
		t.Fatalf("MESSAGE %v %q", m1.headers, m1.body)
	}
	// client mode acks cumulatively: acking the second settles both.
	c.send("ACK", "", "id", m2.headers["ack"], "receipt", "a1")
	c.expect("RECEIPT")
	_, ch := wsAMQP(t, inst)
	if q, err := ch.QueueDeclarePassive("stq", true, false, false, false, nil); err != nil || q.Messages != 0 || q.Consumers != 1 {
		t.Fatalf("stq after ACK: %+v %v", q, err)
	}
	c.send("UNSUBSCRIBE", "", "id", "q", "receipt", "u1")
	c.expect("RECEIPT")

	// /topic/ gets AMQP publishes to amq.topic; reply-to /temp-queue/ RPC
	// reaches an amqp091-go worker and the reply comes back.
	c.send("SUBSCRIBE", "", "id", "t", "destination", "/topic/kern.*", "receipt", "r2")
	c.expect("RECEIPT")
	ch.Publish("amq.topic", "kern.warn", false, false, amqp.Publishing{Body: []byte("from amqp"), CorrelationId: "k"})
	if m := c.expect("MESSAGE"); m.body != "from amqp" || m.headers["destination"] != "/topic/kern.warn" || m.headers["correlation-id"] != "k" {
		t.Fatalf("topic MESSAGE %v %q", m.headers, m.body)
	}
	wsRPCWorker(t, inst, "stomp_rpc")
	c.send("SEND", "ping", "destination", "/amq/queue/stomp_rpc", "reply-to", "/temp-queue/replies", "correlation-id", "c9")
	if m := c.expect("MESSAGE"); m.body != "PING" || m.headers["subscription"] != "/temp-queue/replies" || m.headers["correlation-id"] != "c9" {
		t.Fatalf("RPC reply %v %q", m.headers, m.body)
	}

	// Transactions: nothing is sent before COMMIT.
	c.send("SUBSCRIBE", "", "id", "tx", "destination", "/queue/txq", "receipt", "r3")
	c.expect("RECEIPT")
	c.send("BEGIN", "", "transaction", "t1")
	c.send("SEND", "in tx", "destination", "/queue/txq", "transaction", "t1")
	c.send("SEND", "", "destination", "/queue/none", "receipt", "sync")
	c.expect("RECEIPT")
	c.send("COMMIT", "", "transaction", "t1")
	if m := c.expect("MESSAGE"); m.body != "in tx" {
		t.Fatalf("tx message %q", m.body)
	}

	// An error: ERROR frame, then the server closes.
	c.send("SUBSCRIBE", "", "id", "missing", "destination", "/amq/queue/missing", "receipt", "r4")
	e := c.expect("ERROR")
	if e.headers["message"] != "not_found" || !strings.Contains(e.body, "missing") || e.headers["receipt-id"] != "r4" {
		t.Fatalf("ERROR %v %q", e.headers, e.body)
	}
	if _, err := c.next(); err == nil {
		t.Fatal("connection still open after ERROR")
	}
}

func TestSTOMPLogin(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := stompDial(t, inst, "")
	c.send("CONNECT", "", "accept-version", "1.2", "login", "guest", "passcode", "bad")
	if e := c.expect("ERROR"); !strings.Contains(e.body, "refused") {
		t.Fatalf("bad login: %v %q", e.headers, e.body)
	}
	// A token as passcode.
	req, _ := http.NewRequest("POST", "http://"+inst.HTTPAddr()+"/v1/tokens", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	c = stompDial(t, inst, "")
	c.send("STOMP", "", "accept-version", "1.1,1.2", "login", "guest", "passcode", tr.Token)
	if f := c.expect("CONNECTED"); f.headers["user-name"] != "guest" {
		t.Fatalf("token login: %v", f.headers)
	}
	// A token that expires ends the session with an ERROR frame.
	req, _ = http.NewRequest("POST", "http://"+inst.HTTPAddr()+"/v1/tokens", strings.NewReader(`{"ttl_seconds":1}`))
	req.SetBasicAuth("guest", "guest")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	exp := stompDial(t, inst, "?token="+tr.Token)
	exp.send("CONNECT", "", "accept-version", "1.2")
	exp.expect("CONNECTED")
	if e := exp.expect("ERROR"); e.headers["message"] != "token expired" {
		t.Fatalf("expiry: %v %q", e.headers, e.body)
	}
	// Version negotiation: 1.0 only.
	c = stompDial(t, inst, "")
	c.send("CONNECT", "", "login", "guest", "passcode", "guest")
	if f := c.expect("CONNECTED"); f.headers["version"] != "1.0" {
		t.Fatalf("1.0 CONNECTED %v", f.headers)
	}
	// DISCONNECT with receipt: RECEIPT, then a normal close.
	c.send("DISCONNECT", "", "receipt", "bye")
	if f := c.expect("RECEIPT"); f.headers["receipt-id"] != "bye" {
		t.Fatalf("DISCONNECT receipt %v", f.headers)
	}
	_, err = c.next()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after DISCONNECT: %v", err)
	}
}

// TestSTOMPStompJS: @stomp/stompjs under Node, unchanged, subscribes to
// /exchange/amq.topic/kern.*, receives a message published over AMQP and
// acks it.
func TestSTOMPStompJS(t *testing.T) {
	dir := jsTestDir(t)
	t.Parallel()
	inst := startWarren(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "stomp_amqp.mjs", "ws://"+inst.HTTPAddr()+"/ws", "guest", "guest")
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
			t.Logf("stompjs debug output:\n%s", stderr.String())
		}
	}()
	lines := make(chan map[string]any, 16)
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
		select {
		case m, ok := <-lines:
			if ok && want == "bye" && m["step"] == "closed" {
				m, ok = <-lines
			}
			if !ok || m["step"] != want {
				t.Fatalf("stompjs: want step %q, got %v", want, m)
			}
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("stompjs: no %q step", want)
		}
		return nil
	}
	if c := step("connected"); c["version"] != "1.2" {
		t.Fatalf("stompjs connected with %v", c)
	}
	step("subscribed")
	_, ch := wsAMQP(t, inst)
	if err := ch.Publish("amq.topic", "kern.critical", false, false, amqp.Publishing{
		Body: []byte("disk full"), ContentType: "text/plain", Headers: amqp.Table{"severity": "high"},
	}); err != nil {
		t.Fatal(err)
	}
	m := step("message")
	h, _ := m["headers"].(map[string]any)
	if m["body"] != "disk full" || m["destination"] != "/exchange/amq.topic/kern.critical" || h["severity"] != "high" || h["content-type"] != "text/plain" {
		t.Fatalf("stompjs message %v", m)
	}
	step("acked")
	var unacked, consumers int
	for _, cs := range inst.router.Channels() {
		unacked += cs.Unacked
		consumers += cs.Consumers
	}
	if unacked != 0 || consumers != 1 {
		t.Fatalf("after the ACK: %d unacked, %d consumers", unacked, consumers)
	}
	stomp := 0
	for _, cs := range inst.router.Connections() {
		if cs.Protocol == "STOMP 1.2" {
			stomp++
		}
	}
	if stomp != 1 {
		t.Fatalf("want one STOMP 1.2 connection listed, got %+v", inst.router.Connections())
	}
	fmt.Fprintln(stdin, "bye")
	step("bye")
	eventually(t, wsTimeout, "the STOMP session to end", func() bool { return len(inst.router.Consumers()) == 0 })
}

// stompDurableName is the queue of a durable subscription without
// x-queue-name: "stomp-subscription-" and the URL-safe base64 MD5 of the
// destination and id (RabbitMQ's scheme, stable across sessions).
func stompDurableName(dest, id string) string {
	sum := md5.Sum([]byte(dest + "\x00" + id))
	return "stomp-subscription-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// collect reads frames until the RECEIPT receipt and n MESSAGE frames
// have arrived (in whatever order: deliveries of a SUBSCRIBE may precede
// its receipt), and returns the messages in order.
func (c *stompClient) collect(receipt string, n int) []*stompTestFrame {
	c.t.Helper()
	var ms []*stompTestFrame
	got := receipt == ""
	for !got || len(ms) < n {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for receipt %q and %d messages (have %d): %v", receipt, n, len(ms), err)
		}
		switch {
		case f.cmd == "RECEIPT" && f.headers["receipt-id"] == receipt:
			got = true
		case f.cmd == "MESSAGE":
			ms = append(ms, f)
		default:
			c.t.Fatalf("unexpected %s %v %q", f.cmd, f.headers, f.body)
		}
	}
	return ms
}

// queueState is a queue's message and consumer counts (passive declare on
// a fresh channel), or the error.
func queueState(t testing.TB, conn *amqp.Connection, name string) (amqp.Queue, error) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	return ch.QueueDeclarePassive(name, true, false, false, false, nil)
}

// TestSTOMPDurableSubscription: a durable topic subscription (RabbitMQ
// Web-STOMP's durable:true + auto-delete:false + id) keeps its queue and
// the persistent messages published while the client is away, across a
// disconnect and a restart of Warren; UNSUBSCRIBE with durable:true
// deletes it, a plain UNSUBSCRIBE keeps it; queue-argument headers reach
// the queue; a bad one is an ERROR.
func TestSTOMPDurableSubscription(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inst := startWarren(t, dir)
	const dest, id = "/topic/news.#", "d1"
	qname := stompDurableName(dest, id)
	subHeaders := []string{"id", id, "destination", dest, "durable", "true", "auto-delete", "false",
		"ack", "client-individual", "x-max-length", "100", "x-message-ttl", "3600000"}
	subscribe := func(c *stompClient, receipt string) {
		c.send("SUBSCRIBE", "", append(subHeaders, "receipt", receipt)...)
	}
	persistent := func(body string) amqp.Publishing {
		return amqp.Publishing{Body: []byte(body), DeliveryMode: amqp.Persistent, ContentType: "text/plain"}
	}
	checkMessages := func(ms []*stompTestFrame, bodies ...string) {
		t.Helper()
		for i, m := range ms {
			if m.body != bodies[i] || m.headers["subscription"] != id || m.headers["destination"] != "/topic/news.x" ||
				m.headers["persistent"] != "true" || m.headers["content-type"] != "text/plain" || m.headers["ack"] == "" {
				t.Fatalf("message %d: %v %q, want body %q", i, m.headers, m.body, bodies[i])
			}
		}
	}

	// Subscribe: a durable, shared, non-auto-delete queue with the
	// derived name and the argument headers, bound to amq.topic.
	c := stompDial(t, inst, "")
	c.connect()
	subscribe(c, "s1")
	c.collect("s1", 0)
	var qv map[string]any
	newMgmtClient(t, inst).want(200, "GET", "/api/queues/%2F/"+qname, nil, &qv)
	args, _ := qv["arguments"].(map[string]any)
	if qv["durable"] != true || qv["auto_delete"] != false || qv["exclusive"] != false ||
		args["x-max-length"] != float64(100) || args["x-message-ttl"] != float64(3600000) {
		t.Fatalf("durable subscription queue %s: %v", qname, qv)
	}
	conn, ch := amqpDial(t, inst)
	publishAMQP(t, ch, "amq.topic", "news.x", persistent("live"))
	m := c.collect("", 1)[0]
	checkMessages([]*stompTestFrame{m}, "live")
	c.send("ACK", "", "id", m.headers["ack"], "receipt", "a1")
	c.collect("a1", 0)

	// Disconnect: the queue stays, without consumers, and collects what is
	// published meanwhile.
	c.send("DISCONNECT", "", "receipt", "bye")
	c.collect("bye", 0)
	eventually(t, wsTimeout, "the durable subscription's consumer to go", func() bool {
		q, err := queueState(t, conn, qname)
		return err == nil && q.Consumers == 0
	})
	for _, b := range []string{"m1", "m2", "m3"} {
		publishAMQP(t, ch, "amq.topic", "news.x", persistent(b))
	}
	if q, err := queueState(t, conn, qname); err != nil || q.Messages != 3 || q.Consumers != 0 {
		t.Fatalf("while away: %+v %v, want 3 messages and no consumer", q, err)
	}

	// Resubscribe with the same id: the three arrive, in order.
	c = stompDial(t, inst, "")
	c.connect()
	subscribe(c, "s2")
	ms := c.collect("s2", 3)
	checkMessages(ms, "m1", "m2", "m3")
	for _, m := range ms {
		c.send("ACK", "", "id", m.headers["ack"])
	}
	c.send("DISCONNECT", "", "receipt", "bye2")
	c.collect("bye2", 0)
	eventually(t, wsTimeout, "the acks to settle and the consumer to go", func() bool {
		q, err := queueState(t, conn, qname)
		return err == nil && q.Consumers == 0 && q.Messages == 0
	})

	// Two more while away, then a restart on the same data directory.
	publishAMQP(t, ch, "amq.topic", "news.x", persistent("m4"))
	publishAMQP(t, ch, "amq.topic", "news.x", persistent("m5"))
	conn.Close()
	stopWarren(t, inst)
	inst = startWarren(t, dir)
	conn, ch = amqpDial(t, inst)
	if q, err := queueState(t, conn, qname); err != nil || q.Messages != 2 {
		t.Fatalf("after the restart: %+v %v, want the queue with 2 messages", q, err)
	}
	// The binding survived too: a publish now is routed to the queue
	// before anyone subscribes again.
	publishAMQP(t, ch, "amq.topic", "news.x", persistent("m6"))
	if q, err := queueState(t, conn, qname); err != nil || q.Messages != 3 {
		t.Fatalf("publish after the restart: %+v %v, want 3 messages", q, err)
	}
	newMgmtClient(t, inst).want(200, "GET", "/api/queues/%2F/"+qname, nil, &qv)
	if args, _ := qv["arguments"].(map[string]any); qv["durable"] != true || qv["auto_delete"] != false || args["x-max-length"] != float64(100) {
		t.Fatalf("queue after the restart: %v", qv)
	}
	c = stompDial(t, inst, "")
	c.connect()
	subscribe(c, "s3") // identical redeclaration, arguments included, is accepted
	ms = c.collect("s3", 3)
	checkMessages(ms, "m4", "m5", "m6")
	// Recovered messages come back flagged redelivered (docs/safety.md).
	if ms[0].headers["redelivered"] != "true" {
		t.Fatalf("m4 after the restart: %v", ms[0].headers)
	}
	for _, m := range ms {
		c.send("ACK", "", "id", m.headers["ack"])
	}

	// UNSUBSCRIBE with durable:true deletes the queue.
	c.send("UNSUBSCRIBE", "", "id", id, "durable", "true", "receipt", "u1")
	c.collect("u1", 0)
	var ae *amqp.Error
	if _, err := queueState(t, conn, qname); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("after UNSUBSCRIBE durable:true: %v, want 404", err)
	}

	// A plain UNSUBSCRIBE keeps it (here named by x-queue-name, with the
	// old persistent header); UNSUBSCRIBE durable:true from a later
	// session, naming destination and x-queue-name, deletes it.
	c.send("SUBSCRIBE", "", "id", "d2", "destination", "/exchange/amq.topic/alerts.*", "persistent", "true", "auto-delete", "false",
		"x-queue-name", "my-alerts", "receipt", "s4")
	c.collect("s4", 0)
	publishAMQP(t, ch, "amq.topic", "alerts.disk", persistent("full"))
	if m := c.collect("", 1)[0]; m.body != "full" || m.headers["destination"] != "/exchange/amq.topic/alerts.disk" {
		t.Fatalf("x-queue-name subscription: %v %q", m.headers, m.body)
	}
	c.send("UNSUBSCRIBE", "", "id", "d2", "receipt", "u2")
	c.collect("u2", 0)
	publishAMQP(t, ch, "amq.topic", "alerts.cpu", persistent("hot"))
	if q, err := queueState(t, conn, "my-alerts"); err != nil || q.Messages != 1 || q.Consumers != 0 {
		t.Fatalf("after a plain UNSUBSCRIBE: %+v %v, want the queue with 1 message", q, err)
	}
	c.send("DISCONNECT", "", "receipt", "bye3")
	c.collect("bye3", 0)
	c = stompDial(t, inst, "")
	c.connect()
	c.send("UNSUBSCRIBE", "", "id", "d2", "destination", "/exchange/amq.topic/alerts.*", "x-queue-name", "my-alerts", "durable", "true", "receipt", "u3")
	c.collect("u3", 0)
	if _, err := queueState(t, conn, "my-alerts"); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("after UNSUBSCRIBE durable:true from a new session: %v, want 404", err)
	}

	// x-queue-name on a non-durable subscription names its exclusive queue.
	c.send("SUBSCRIBE", "", "id", "t1", "destination", "/topic/temp.*", "x-queue-name", "stomp-named-temp", "x-max-priority", "5", "receipt", "s5")
	c.collect("s5", 0)
	newMgmtClient(t, inst).want(200, "GET", "/api/queues/%2F/stomp-named-temp", nil, &qv)
	if args, _ := qv["arguments"].(map[string]any); qv["durable"] != false || qv["exclusive"] != true || args["x-max-priority"] != float64(5) {
		t.Fatalf("non-durable x-queue-name queue: %v", qv)
	}

	// A bad argument header: ERROR naming it, then the server closes.
	c.send("SUBSCRIBE", "", "id", "bad", "destination", "/topic/x", "x-max-length", "ten", "receipt", "s6")
	e := c.expect("ERROR")
	if e.headers["message"] != "bad_request" || e.headers["receipt-id"] != "s6" || !strings.Contains(e.body, "x-max-length") || !strings.Contains(e.body, "'ten'") {
		t.Fatalf("bad x-max-length: %v %q", e.headers, e.body)
	}
	if _, err := c.next(); err == nil {
		t.Fatal("connection still open after ERROR")
	}
	// The session's exclusive queue went with it.
	eventually(t, wsTimeout, "the exclusive queue to go with its session", func() bool {
		_, err := queueState(t, conn, "stomp-named-temp")
		return errors.As(err, &ae) && ae.Code == amqp.NotFound
	})
}

// TestSTOMPDurablePermissions: a durable subscription is declared, bound
// and consumed with the user's own permissions.
func TestSTOMPDurablePermissions(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	a := newMgmtClient(t, inst)
	a.want(201, "PUT", "/api/users/sp", map[string]any{"password": "pw", "tags": ""}, nil)
	a.want(201, "PUT", "/api/permissions/%2F/sp", map[string]any{"configure": "^stomp-subscription-", "write": "^stomp-subscription-", "read": ".*"}, nil)
	login := func() *stompClient {
		c := stompDial(t, inst, "")
		c.send("CONNECT", "", "accept-version", "1.2", "login", "sp", "passcode", "pw", "heart-beat", "0,0")
		c.expect("CONNECTED")
		return c
	}
	c := login()
	c.send("SUBSCRIBE", "", "id", "ok", "destination", "/topic/p.*", "durable", "true", "auto-delete", "false", "receipt", "r1")
	c.collect("r1", 0)
	conn, _ := amqpDial(t, inst)
	if q, err := queueState(t, conn, stompDurableName("/topic/p.*", "ok")); err != nil || q.Consumers != 1 {
		t.Fatalf("allowed durable subscription: %+v %v", q, err)
	}
	// A queue name outside the configure pattern is refused.
	c.send("SUBSCRIBE", "", "id", "no", "destination", "/topic/p.*", "durable", "true", "auto-delete", "false", "x-queue-name", "elsewhere", "receipt", "r2")
	e := c.expect("ERROR")
	if e.headers["message"] != "access_refused" || !strings.Contains(e.body, "configure access to queue 'elsewhere'") {
		t.Fatalf("refused durable subscription: %v %q", e.headers, e.body)
	}
	// Deleting needs configure too.
	c = login()
	c.send("UNSUBSCRIBE", "", "id", "x", "destination", "/topic/p.*", "durable", "true", "x-queue-name", "guests-queue", "receipt", "r3")
	if e := c.expect("ERROR"); e.headers["message"] != "not_found" {
		t.Fatalf("UNSUBSCRIBE of a missing durable queue: %v %q", e.headers, e.body)
	}
}

// stompjsDurable is run by TestSTOMPStompJSDurable with node (from
// clients/js/test, where @stomp/stompjs and ws are installed):
//
//	subscribe URL: subscribe durably, wait for the receipt, disconnect
//	receive URL N: subscribe again with the same id, print N messages
//	               (acking each), UNSUBSCRIBE with durable:true, disconnect
//
// Each step is a JSON line on stdout.
const stompjsDurable = `
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";
const [mode, url, n] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const client = new Client({
  webSocketFactory: () => new WebSocket(url, ["v12.stomp"]),
  connectHeaders: { login: "guest", passcode: "guest" },
  reconnectDelay: 0,
});
const headers = { id: "js-durable", durable: "true", "auto-delete": "false", ack: "client-individual", receipt: "sub" };
const finish = async (step) => { await client.deactivate(); say({ step }); process.exit(0); };
client.onConnect = () => {
  let got = 0;
  client.watchForReceipt("sub", () => { say({ step: "subscribed" }); if (mode === "subscribe") finish("bye"); });
  client.subscribe("/topic/js.*", (m) => {
    say({ step: "message", body: m.body, destination: m.headers.destination, persistent: m.headers.persistent });
    m.ack();
    if (++got === Number(n)) {
      client.watchForReceipt("unsub", () => finish("unsubscribed"));
      client.unsubscribe("js-durable", { durable: "true", receipt: "unsub" });
    }
  }, headers);
};
client.onStompError = (f) => { say({ step: "error", message: f.headers.message, body: f.body }); process.exit(2); };
client.activate();
setTimeout(() => { say({ step: "timeout" }); process.exit(3); }, 20000).unref();
`

// TestSTOMPStompJSDurable: @stomp/stompjs, unchanged, makes a durable
// subscription, goes away, and on its return receives the persistent
// messages published over AMQP meanwhile; its UNSUBSCRIBE with
// durable:true removes the queue.
func TestSTOMPStompJSDurable(t *testing.T) {
	dir := jsTestDir(t)
	t.Parallel()
	inst := startWarren(t, "")
	url := "ws://" + inst.HTTPAddr() + "/ws"
	run := func(args ...string) []map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", append([]string{"--input-type=module", "-e", stompjsDurable}, args...)...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var steps []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				steps = append(steps, m)
			}
		}
		if err != nil {
			t.Fatalf("node %v: %v\nstdout: %s\nstderr: %s", args, err, out, stderr.String())
		}
		return steps
	}
	if steps := run("subscribe", url); len(steps) != 2 || steps[0]["step"] != "subscribed" || steps[1]["step"] != "bye" {
		t.Fatalf("stompjs subscribe: %v", steps)
	}
	qname := stompDurableName("/topic/js.*", "js-durable")
	conn, ch := amqpDial(t, inst)
	eventually(t, wsTimeout, "stompjs to disconnect", func() bool {
		q, err := queueState(t, conn, qname)
		return err == nil && q.Consumers == 0
	})
	for _, b := range []string{"one", "two"} {
		publishAMQP(t, ch, "amq.topic", "js.news", amqp.Publishing{Body: []byte(b), DeliveryMode: amqp.Persistent})
	}
	steps := run("receive", url, "2")
	var bodies []string
	for _, s := range steps {
		if s["step"] == "message" {
			if s["destination"] != "/topic/js.news" || s["persistent"] != "true" {
				t.Fatalf("stompjs message %v", s)
			}
			bodies = append(bodies, s["body"].(string))
		}
	}
	if strings.Join(bodies, ",") != "one,two" || steps[len(steps)-1]["step"] != "unsubscribed" {
		t.Fatalf("stompjs receive: %v", steps)
	}
	var ae *amqp.Error
	if _, err := queueState(t, conn, qname); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("after stompjs's UNSUBSCRIBE durable:true: %v, want 404", err)
	}
}

// TestSTOMPExclusiveConsumer: exclusive:true on SUBSCRIBE makes an
// exclusive consumer, as on RabbitMQ: another subscription to the queue is
// refused while it lasts and accepted once it is gone; an exclusive
// subscription to a queue that already has a consumer is refused; a value
// other than true or false is bad input.
func TestSTOMPExclusiveConsumer(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	login := func() *stompClient {
		c := stompDial(t, inst, "")
		c.connect()
		return c
	}
	a := login()
	a.send("SUBSCRIBE", "", "id", "a", "destination", "/queue/only-one", "exclusive", "true", "receipt", "ra")
	a.collect("ra", 0)

	b := login()
	b.send("SUBSCRIBE", "", "id", "b", "destination", "/queue/only-one", "receipt", "rb")
	if e := b.expect("ERROR"); e.headers["message"] != "access_refused" || !strings.Contains(e.body, "in exclusive use") {
		t.Fatalf("second consumer of an exclusively consumed queue: %v %q", e.headers, e.body)
	}

	// The exclusive consumer gets the messages.
	_, ch := wsAMQP(t, inst)
	if err := ch.Publish("", "only-one", false, false, amqp.Publishing{Body: []byte("for a")}); err != nil {
		t.Fatal(err)
	}
	if ms := a.collect("", 1); ms[0].body != "for a" {
		t.Fatalf("exclusive consumer got %q", ms[0].body)
	}

	// Once a is gone, b may consume, and then an exclusive request fails.
	a.send("DISCONNECT", "", "receipt", "bye")
	a.collect("bye", 0)
	b = login()
	b.send("SUBSCRIBE", "", "id", "b", "destination", "/queue/only-one", "receipt", "rb2")
	b.collect("rb2", 0)
	c := login()
	c.send("SUBSCRIBE", "", "id", "c", "destination", "/queue/only-one", "exclusive", "true", "receipt", "rc")
	if e := c.expect("ERROR"); e.headers["message"] != "access_refused" {
		t.Fatalf("exclusive subscription to a consumed queue: %v %q", e.headers, e.body)
	}

	d := login()
	d.send("SUBSCRIBE", "", "id", "d", "destination", "/queue/only-one", "exclusive", "yes")
	if e := d.expect("ERROR"); e.headers["message"] != "bad_request" || !strings.Contains(e.body, "exclusive must be true or false, got 'yes'") {
		t.Fatalf("bad exclusive header: %v %q", e.headers, e.body)
	}
}

// TestSTOMPSendQueueArguments: a SEND to /queue/ declares the queue with
// the frame's queue-argument headers, as RabbitMQ does: x-max-length:2
// keeps the last two of three messages; a different value for the
// existing queue is refused as inequivalent; a bad value is bad input.
func TestSTOMPSendQueueArguments(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := stompDial(t, inst, "")
	c.connect()
	for i, body := range []string{"one", "two", "three"} {
		r := fmt.Sprintf("r%d", i)
		c.send("SEND", body, "destination", "/queue/capped", "x-max-length", "2", "receipt", r)
		c.collect(r, 0)
	}
	var qv map[string]any
	newMgmtClient(t, inst).want(200, "GET", "/api/queues/%2F/capped", nil, &qv)
	if args, _ := qv["arguments"].(map[string]any); args["x-max-length"] != float64(2) || qv["durable"] != true {
		t.Fatalf("queue declared by SEND: %v", qv)
	}
	conn, _ := amqpDial(t, inst)
	if q, err := queueState(t, conn, "capped"); err != nil || q.Messages != 2 {
		t.Fatalf("capped queue after three SENDs: %+v %v", q, err)
	}
	c.send("SUBSCRIBE", "", "id", "s", "destination", "/queue/capped", "receipt", "s")
	if ms := c.collect("s", 2); ms[0].body != "two" || ms[1].body != "three" {
		t.Fatalf("capped queue kept %q and %q, want two and three", ms[0].body, ms[1].body)
	}

	c.send("SEND", "x", "destination", "/queue/capped", "x-max-length", "5", "receipt", "r5")
	if e := c.expect("ERROR"); e.headers["message"] != "precondition_failed" || !strings.Contains(e.body, "x-max-length") {
		t.Fatalf("inequivalent x-max-length on SEND: %v %q", e.headers, e.body)
	}
	c = stompDial(t, inst, "")
	c.connect()
	c.send("SEND", "x", "destination", "/queue/other", "x-max-length", "ten")
	if e := c.expect("ERROR"); e.headers["message"] != "bad_request" || !strings.Contains(e.body, "'ten'") {
		t.Fatalf("bad x-max-length on SEND: %v %q", e.headers, e.body)
	}
}
