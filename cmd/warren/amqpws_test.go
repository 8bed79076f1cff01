package main

// AMQP 0-9-1 over WebSocket (/ws/amqp): amqp091-go over a WebSocket whose
// every write is cut into small messages, the origin rule, the
// management API's listing, and @cloudamqp/amqp-client under Node.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/gateway"
)

// splitConn cuts every write into messages of 1 to 100 bytes, so that
// AMQP frames, and their 7-byte headers, arrive split across messages.
type splitConn struct {
	net.Conn
	rng *rand.Rand
}

func (c *splitConn) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(1+c.rng.IntN(100), len(rest))
		if _, err := c.Conn.Write(rest[:n]); err != nil {
			return len(p) - len(rest), err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

// dialAMQPWS opens an amqp091-go connection over ws://.../ws/amqp.
func dialAMQPWS(t testing.TB, inst *instance, split bool) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(amqpURL(inst), amqp.Config{
		Dial: func(_, _ string) (net.Conn, error) {
			ws, _, err := (&websocket.Dialer{HandshakeTimeout: wsTimeout}).Dial("ws://"+inst.HTTPAddr()+"/ws/amqp", nil)
			if err != nil {
				return nil, err
			}
			nc := gateway.NewWebSocketConn(ws)
			if split {
				return &splitConn{Conn: nc, rng: rand.New(rand.NewPCG(1, 2))}, nil
			}
			return nc, nil
		},
	})
	if err != nil {
		t.Fatalf("AMQP over WebSocket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wsAMQPProtocols returns the protocol of each connection the management
// API lists.
func wsAMQPProtocols(t testing.TB, inst *instance) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+inst.HTTPAddr()+"/api/connections", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var conns []struct {
		Protocol string `json:"protocol"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
		t.Fatalf("GET /api/connections: %d %v", resp.StatusCode, err)
	}
	var out []string
	for _, c := range conns {
		out = append(out, c.Protocol)
	}
	return out
}

// ints converts a JSON array of numbers.
func ints(v any) []int {
	var out []int
	for _, x := range asSlice(v) {
		out = append(out, num(x))
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestAMQPOverWebSocket(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	conn := dialAMQPWS(t, inst, true)
	if got := wsAMQPProtocols(t, inst); countOf(got, "AMQP 0-9-1/WebSocket") != 1 {
		t.Errorf("management API protocols %q, want one AMQP 0-9-1/WebSocket", got)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "ws.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	bodies := [][]byte{[]byte("one"), []byte("two"), big, []byte("four")}
	var confirms []*amqp.DeferredConfirmation
	for i, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirm("amq.topic", fmt.Sprintf("ws.%d", i), false, false, amqp.Publishing{Body: b})
		if err != nil {
			t.Fatal(err)
		}
		confirms = append(confirms, dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("confirm of publish %d: %v %v", i, ok, err)
		}
	}
	deliveries, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range bodies {
		select {
		case d := <-deliveries:
			if !bytes.Equal(d.Body, want) || d.RoutingKey != fmt.Sprintf("ws.%d", i) {
				t.Fatalf("delivery %d: %s, %d bytes, want %d bytes", i, d.RoutingKey, len(d.Body), len(want))
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("delivery %d never came", i)
		}
	}
	notify := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-notify; err != nil {
		t.Errorf("NotifyClose after a clean close: %v", err)
	}
	eventually(t, 5*time.Second, "the WebSocket connection leaves the management API", func() bool {
		return countOf(wsAMQPProtocols(t, inst), "AMQP 0-9-1/WebSocket") == 0
	})
}

// The origin rule of the other WebSocket endpoints: a page of another
// site is refused, the broker's own pages and non-browser clients are not.
func TestAMQPOverWebSocketOrigin(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	url := "ws://" + inst.HTTPAddr() + "/ws/amqp"
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + inst.HTTPAddr(), true},
		{"http://evil.example", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		ws, resp, err := (&websocket.Dialer{HandshakeTimeout: wsTimeout}).Dial(url, h)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			// The stream answers the AMQP protocol header with connection.start.
			ws.WriteMessage(websocket.BinaryMessage, []byte("AMQP\x00\x00\x09\x01"))
			ws.SetReadDeadline(time.Now().Add(wsTimeout))
			_, m, err := ws.ReadMessage()
			if err != nil || len(m) < 11 || m[0] != 1 || m[8] != 10 || m[10] != 10 {
				t.Errorf("origin %q: no connection.start: %v %x", tc.origin, err, m)
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Errorf("origin %q accepted", tc.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, want 403", tc.origin, err)
		}
	}
}

// @cloudamqp/amqp-client under Node: amqp_ws.mjs connects, declares,
// binds, consumes with manual acks, publishes with confirms (one message
// of 1 MiB) and closes; it prints one JSON line per step.
func TestAMQPOverWebSocketNode(t *testing.T) {
	dir := jsTestDir(t)
	t.Parallel()
	inst := startWarren(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "amqp_ws.mjs", "ws://"+inst.HTTPAddr()+"/ws/amqp")
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node amqp_ws.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		steps[fmt.Sprint(m["step"])] = m
	}
	want := map[string]func(m map[string]any) bool{
		"connected": func(m map[string]any) bool { return num(m["channelMax"]) > 0 && num(m["frameMax"]) >= 4096 },
		"confirmed": func(m map[string]any) bool { return num(m["count"]) == 3 },
		"received": func(m map[string]any) bool {
			return fmt.Sprint(m["keys"]) == "[node.a node.big node.b]" && fmt.Sprint(ints(m["sizes"])) == "[5 1048576 5]" && m["bigOK"] == true
		},
		"acked":  func(m map[string]any) bool { return num(m["remaining"]) == 0 },
		"closed": func(m map[string]any) bool { return m["error"] == nil },
	}
	for step, ok := range want {
		m, found := steps[step]
		if !found || !ok(m) {
			t.Errorf("step %s: %v", step, m)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// Closing the connection from the management API reaches the client as
// connection.close 320, as over TCP.
func TestAMQPOverWebSocketClosedByOperator(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	conn := dialAMQPWS(t, inst, false)
	notify := conn.NotifyClose(make(chan *amqp.Error, 1))
	req, _ := http.NewRequest("GET", "http://"+inst.HTTPAddr()+"/api/connections", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var conns []struct{ Name, Protocol string }
	json.NewDecoder(resp.Body).Decode(&conns)
	resp.Body.Close()
	if len(conns) != 1 || conns[0].Protocol != "AMQP 0-9-1/WebSocket" {
		t.Fatalf("connections %+v, want the one over WebSocket", conns)
	}
	req, _ = http.NewRequest("DELETE", "http://"+inst.HTTPAddr()+"/api/connections/"+url.PathEscape(conns[0].Name), nil)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("X-Reason", "maintenance")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE connection: %s", resp.Status)
	}
	select {
	case err := <-notify:
		if err == nil || err.Code != amqp.ConnectionForced || !strings.Contains(err.Reason, "maintenance") {
			t.Errorf("NotifyClose: %v, want 320 with the reason", err)
		}
	case <-time.After(wsTimeout):
		t.Fatal("the client was not told")
	}
}
