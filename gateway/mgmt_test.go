package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

func mgTestServer(t *testing.T) *Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return New(Config{Logger: log}, r)
}

// mgServe runs one request through the echo router with the given client
// address.
func mgServe(s *Server, method, target, remote, user, pass string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, req)
	return rec
}

// TestMgmtGuestLoopbackOnly: guest is refused from a non-loopback client
// address, with RabbitMQ's error shape.
func TestMgmtGuestLoopbackOnly(t *testing.T) {
	s := mgTestServer(t)
	if rec := mgServe(s, "GET", "/api/whoami", "127.0.0.1:40000", "guest", "guest"); rec.Code != http.StatusOK {
		t.Fatalf("guest from loopback: %d %s", rec.Code, rec.Body)
	}
	rec := mgServe(s, "GET", "/api/whoami", "192.0.2.7:40000", "guest", "guest")
	var e ErrorBody
	if rec.Code != http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error != "not_authorised" {
		t.Fatalf("guest from 192.0.2.7: %d %s, want 401 not_authorised", rec.Code, rec.Body)
	}
	if rec := mgServe(s, "GET", "/api/whoami", "[::1]:40000", "guest", "guest"); rec.Code != http.StatusOK {
		t.Fatalf("guest from ::1: %d %s", rec.Code, rec.Body)
	}
}

// TestMgmtEncodedSlash: "%2F" stays one path segment (the default vhost).
func TestMgmtEncodedSlash(t *testing.T) {
	s := mgTestServer(t)
	for target, want := range map[string]int{
		"/api/vhosts/%2F":                http.StatusOK,
		"/api/queues/%2F":                http.StatusOK,
		"/api/exchanges/%2F/amq.direct":  http.StatusOK,
		"/api/exchanges/%2f/amq.default": http.StatusOK,
		"/api/vhosts/%2Fx":               http.StatusNotFound,
	} {
		if rec := mgServe(s, "GET", target, "127.0.0.1:1", "guest", "guest"); rec.Code != want {
			t.Errorf("GET %s: %d %s, want %d", target, rec.Code, rec.Body, want)
		}
	}
}
