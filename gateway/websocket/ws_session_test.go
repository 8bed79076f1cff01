package websocket

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
)

// queued returns the encoded frames waiting in wc.
func queued(wc *wsconn.Conn) []string { return wc.Queued() }

// TestWSFlowFrames: too many unconfirmed publishes hold the reader and
// say flow false; confirmations down to half say flow true.
func TestWSFlowFrames(t *testing.T) {
	wc := wsconn.New(nil, websocket.TextMessage)
	sess := &jsonSession{wc: wc, flowWake: make(chan struct{}, 1)}
	sess.inflight = wsMaxInflight - 1
	if !sess.waitFlow() || len(queued(wc)) != 0 {
		t.Fatalf("below the limit: %v", queued(wc))
	}
	sess.inflight = wsMaxInflight
	done := make(chan bool)
	go func() { done <- sess.waitFlow() }()
	deadline := time.Now().Add(5 * time.Second)
	for len(queued(wc)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if q := queued(wc); len(q) != 1 || q[0] != `{"op":"flow","active":false}` {
		t.Fatalf("at the limit: %v", q)
	}
	// Confirmations arrive: still above half, then at half.
	for _, n := range []int{wsMaxInflight/2 + 1, wsMaxInflight / 2} {
		sess.mu.Lock()
		sess.inflight = n
		sess.mu.Unlock()
		sess.flowWake <- struct{}{}
		if n > wsMaxInflight/2 {
			select {
			case <-done:
				t.Fatalf("reader released with %d publishes in flight", n)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if !<-done {
		t.Fatal("waitFlow reported the session ended")
	}
	if q := queued(wc); len(q) != 2 || q[1] != `{"op":"flow","active":true}` {
		t.Fatalf("after catching up: %v", q)
	}
	// A session that ends while held releases the reader.
	sess.inflight = wsMaxInflight
	go func() { done <- sess.waitFlow() }()
	time.Sleep(10 * time.Millisecond)
	wc.Kill(wsconn.CloseTooSlow, "test")
	if <-done {
		t.Fatal("waitFlow went on after the session ended")
	}
}

// The fan-out cache must give each message its own encoding: the same
// message twice, then another one, then the first again.
func TestWSAppendMessageShared(t *testing.T) {
	a := &mapping.Message{Exchange: "amq.topic", RoutingKey: "a.b", Body: []byte("one"),
		Properties: mapping.Properties{ContentType: "text/plain"}}
	b := &mapping.Message{Exchange: "x", RoutingKey: "k", Body: []byte{0xff, 0x00}}
	for i, m := range []*mapping.Message{a, a, b, a, b} {
		got := string(wsAppendMessageShared([]byte("{"), m))
		want := string(wsAppendMessage([]byte("{"), m))
		if got != want {
			t.Fatalf("step %d: got %s, want %s", i, got, want)
		}
	}
	if got := string(wsAppendMessageShared(nil, a)); !strings.Contains(got, `"routing_key":"a.b"`) || !strings.Contains(got, `"content_type":"text/plain"`) {
		t.Fatalf("encoding of a: %s", got)
	}
}
