package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// authServe runs one request as user from remote. fail says the request
// is expected to be refused: it then carries a cancelled context, so the
// refused-login delay does not slow the test down.
func authServe(s *Server, method, target, remote, user, pass string, fail bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	req.SetBasicAuth(user, pass)
	if fail {
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		req = req.WithContext(ctx)
	}
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, req)
	return rec
}

const authPublish = "/v1/publish/amq.default/nowhere"

func authTestUser(t *testing.T, s *Server, name, pass string, tags ...string) {
	t.Helper()
	if err := s.router.PutUser(name, pass, "", tags); err != nil {
		t.Fatal(err)
	}
	if err := s.router.SetPermissions(mapping.Permission{User: name, VHost: "/", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, rec *httptest.ResponseRecorder, code int, what string) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("%s: status %d, want %d: %s", what, rec.Code, code, rec.Body)
	}
}

// TestAuthCacheInvalidation: verified credentials are remembered, and any
// change of the user (password, deletion, tags) or of permissions takes
// effect on the very next request.
func TestAuthCacheInvalidation(t *testing.T) {
	s := mgTestServer(t)
	const remote = "127.0.0.1:40000"
	authTestUser(t, s, "alice", "pw1", "administrator")

	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw1", false), http.StatusOK, "first publish")
	if n := s.auth.CachedCount(); n != 1 {
		t.Fatalf("%d cached credentials after one login, want 1", n)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw1", false), http.StatusOK, "cached publish")

	// A changed password: the old one is refused at once, the new one works.
	if err := s.router.ChangePassword("alice", "pw2"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw1", true), http.StatusUnauthorized, "old password")
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw2", false), http.StatusOK, "new password")

	// Tags: the management API follows a tag change at once.
	wantCode(t, authServe(s, "GET", "/api/whoami", remote, "alice", "pw2", false), http.StatusOK, "whoami as administrator")
	if err := s.router.SetUserTags("alice", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "GET", "/api/whoami", remote, "alice", "pw2", false), http.StatusUnauthorized, "whoami without tags")

	// A deleted user is refused at once.
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw2", false), http.StatusOK, "publish before delete")
	if err := s.router.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw2", true), http.StatusUnauthorized, "deleted user")

	// Created again with the same password: accepted again.
	authTestUser(t, s, "alice", "pw2")
	wantCode(t, authServe(s, "POST", authPublish, remote, "alice", "pw2", false), http.StatusOK, "re-created user")
}

// TestAuthCacheChecksVHostAccess: a remembered login still goes through the
// vhost and permission checks of every request.
func TestAuthCacheChecksVHostAccess(t *testing.T) {
	s := mgTestServer(t)
	const remote = "127.0.0.1:40000"
	authTestUser(t, s, "bob", "pw")
	if err := s.router.AddVHost("other"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "bob", "pw", false), http.StatusOK, "publish on /")
	// No permission on vhost "other": refused although the login is cached.
	wantCode(t, authServe(s, "POST", authPublish+"?vhost=other", remote, "bob", "pw", false), http.StatusForbidden, "publish on other")
	// Write access narrowed: the cached login does not keep the old grant.
	if err := s.router.SetPermissions(mapping.Permission{User: "bob", VHost: "/", Configure: ".*", Write: "^nothing$", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "bob", "pw", false), http.StatusForbidden, "publish without write access")
	if err := s.router.ClearPermissions("bob", "/"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, authServe(s, "POST", authPublish, remote, "bob", "pw", false), http.StatusForbidden, "publish without permissions")
}

// TestAuthCacheFailuresAndClients: refused logins are never remembered, and
// a login remembered for one client address is not reused for another
// (guest is allowed from loopback only).
func TestAuthCacheFailuresAndClients(t *testing.T) {
	s := mgTestServer(t)
	wantCode(t, authServe(s, "POST", authPublish, "127.0.0.1:40000", "guest", "wrong", true), http.StatusUnauthorized, "wrong password")
	if n := s.auth.CachedCount(); n != 0 {
		t.Fatalf("%d cached credentials after a refused login, want 0", n)
	}
	wantCode(t, authServe(s, "POST", authPublish, "127.0.0.1:40000", "guest", "guest", false), http.StatusOK, "guest from loopback")
	wantCode(t, authServe(s, "POST", authPublish, "127.0.0.1:40001", "guest", "guest", false), http.StatusOK, "guest from loopback, other port")
	wantCode(t, authServe(s, "POST", authPublish, "192.0.2.7:40000", "guest", "guest", true), http.StatusUnauthorized, "guest from elsewhere")
	if n := s.auth.CachedCount(); n != 1 {
		t.Fatalf("%d cached credentials, want 1 (guest from 127.0.0.1)", n)
	}
}

// BenchmarkAuthenticateCached is the per-request cost of basic auth for a
// client whose credentials were verified before.
func BenchmarkAuthenticateCached(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: b.TempDir(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	s := New(Config{Logger: log}, r)
	req := httptest.NewRequest("POST", authPublish, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.SetBasicAuth("guest", "guest")
	rec := httptest.NewRecorder()
	c := s.echo.NewContext(req, rec)
	if _, err := s.authenticate(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Reset(req, rec)
		if _, err := s.authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}
