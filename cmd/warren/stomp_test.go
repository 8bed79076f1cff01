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
	"encoding/json"
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
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@stomp", "stompjs")); err == nil {
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
		needTool(t, "the Node tests need node and the npm packages of clients/js/test (@stomp/stompjs, ws): "+nodeErr.Error()+" (run `npm ci` in clients/js/test, or `make test`)")
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
	var m1, m2 *stompTestFrame
	for m1 == nil || m2 == nil {
		f, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.cmd == "RECEIPT":
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
