package wsconn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWSSendBacklog: control frames past the hard limit end the session
// (4008) instead of growing without bound; deliveries above the high
// water mark tell the core to pause.
func TestWSSendBacklog(t *testing.T) {
	wc := New(nil, websocket.TextMessage)
	big := make([]byte, 1<<20)
	for i := 0; i < outHardLimit>>20; i++ {
		if !wc.Send(big) {
			t.Fatalf("refused after %d MiB", i)
		}
	}
	if wc.Send(big) || !wc.IsDead() || wc.closeCode != CloseTooSlow {
		t.Fatalf("past the hard limit: dead=%v code=%d", wc.IsDead(), wc.closeCode)
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
	same := NewState(Config{}, Deps{})
	list := NewState(Config{AllowedOrigins: []string{"https://app.example.com/"}}, Deps{})
	any := NewState(Config{AllowedOrigins: []string{"*"}}, Deps{})
	for _, tc := range []struct {
		st     *State
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
	st := NewState(Config{}, Deps{})
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
		if _, err := st.verifyToken(bad, nil); err == nil || !strings.Contains(err.Error(), "token refused") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	expired := st.sign(tokenClaims{User: "alice", Expires: time.Now().Add(-time.Second).Unix()})
	if _, err := st.verifyToken(expired, nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	lo := st.sign(tokenClaims{User: "alice", Expires: time.Now().Add(time.Minute).Unix(), Loopback: true})
	if _, err := st.verifyToken(lo, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback token from elsewhere: %v", err)
	}
	other := NewState(Config{}, Deps{})
	if _, err := st.verifyToken(other.sign(tokenClaims{User: "alice", Expires: time.Now().Add(time.Minute).Unix()}), nil); err == nil {
		t.Error("token of another secret accepted")
	}
}
