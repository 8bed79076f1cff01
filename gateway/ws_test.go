package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/warrenmq/warren/mapping"
)

// queued returns the encoded frames waiting in wc.
func queued(wc *wsConn) []string {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	var out []string
	for _, it := range wc.queue {
		out = append(out, string(it.frame))
	}
	return out
}

// TestWSFlowFrames: too many unconfirmed publishes hold the reader and
// say flow false; confirmations down to half say flow true.
func TestWSFlowFrames(t *testing.T) {
	wc := newWSConn(nil, websocket.TextMessage)
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
	wc.kill(closeTooSlow, "test")
	if <-done {
		t.Fatal("waitFlow went on after the session ended")
	}
}

// TestWSSendBacklog: control frames past the hard limit end the session
// (4008) instead of growing without bound; deliveries above the high
// water mark tell the core to pause.
func TestWSSendBacklog(t *testing.T) {
	wc := newWSConn(nil, websocket.TextMessage)
	big := make([]byte, 1<<20)
	for i := 0; i < outHardLimit>>20; i++ {
		if !wc.send(big) {
			t.Fatalf("refused after %d MiB", i)
		}
	}
	if wc.send(big) || !wc.isDead() || wc.closeCode != closeTooSlow {
		t.Fatalf("past the hard limit: dead=%v code=%d", wc.isDead(), wc.closeCode)
	}
}

func TestWSCheckOrigin(t *testing.T) {
	req := func(host, origin string) *http.Request {
		r := httptest.NewRequest("GET", "http://"+host+"/v1/ws", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	same := newWSState(WSConfig{})
	list := newWSState(WSConfig{AllowedOrigins: []string{"https://app.example.com/"}})
	any := newWSState(WSConfig{AllowedOrigins: []string{"*"}})
	for _, tc := range []struct {
		st     *wsState
		host   string
		origin string
		ok     bool
	}{
		{same, "broker:15672", "", true},
		{same, "broker:15672", "http://broker:15672", true},
		{same, "broker:15672", "http://BROKER:15672", true},
		{same, "broker:15672", "http://evil.example", false},
		{same, "broker:15672", "http://broker:15673", false},
		{same, "broker:15672", "null", false},
		{list, "broker:15672", "https://app.example.com", true},
		{list, "broker:15672", "http://app.example.com", false},
		{list, "broker:15672", "http://broker:15672", false},
		{any, "broker:15672", "https://anything.example", true},
	} {
		if got := tc.st.checkOrigin(req(tc.host, tc.origin)); got != tc.ok {
			t.Errorf("host %s origin %q (allowed %v): %v, want %v", tc.host, tc.origin, tc.st.cfg.AllowedOrigins, got, tc.ok)
		}
	}
}

func TestTokens(t *testing.T) {
	s := &Server{}
	st := s.ws()
	tok := st.sign(tokenClaims{User: "alice", Expires: time.Now().Add(time.Minute).Unix()})
	if !looksLikeToken(tok) || strings.Contains(tok, "alice") && !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatalf("token %q", tok)
	}
	// Signature checks come before the user lookup (no router here).
	for _, bad := range []string{
		tok[:len(tok)-3] + "AAA",
		tokenPrefix + "e30." + strings.SplitN(tok, ".", 3)[2],
		"wt1.nodot",
		"other",
	} {
		if _, err := s.verifyToken(bad, nil); err == nil || !strings.Contains(err.Error(), "token refused") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	expired := st.sign(tokenClaims{User: "alice", Expires: time.Now().Add(-time.Second).Unix()})
	if _, err := s.verifyToken(expired, nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	lo := st.sign(tokenClaims{User: "alice", Expires: time.Now().Add(time.Minute).Unix(), Loopback: true})
	if _, err := s.verifyToken(lo, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback token from elsewhere: %v", err)
	}
	other := newWSState(WSConfig{})
	if _, err := s.verifyToken(other.sign(tokenClaims{User: "alice", Expires: time.Now().Add(time.Minute).Unix()}), nil); err == nil {
		t.Error("token of another secret accepted")
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
