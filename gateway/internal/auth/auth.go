package auth

import (
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/mapping"
)

// userKey is where Authenticate leaves the user in the echo context.
const userKey = httpx.UserKey

// Checker checks the HTTP basic credentials of requests against Warren's
// users, for every HTTP front of a gateway server (one per server: its
// cache is the server's).
type Checker struct {
	router *mapping.Router
	logger *slog.Logger
	auth   authCache // verified basic credentials
}

// New makes the checker of a server on router.
func New(router *mapping.Router, logger *slog.Logger) *Checker {
	return &Checker{router: router, logger: logger}
}

// CachedCount is the number of credentials remembered (for tests).
func (s *Checker) CachedCount() int { return s.auth.len() }

// failedLoginDelay is how long a refused login waits before its answer.
const failedLoginDelay = 500 * time.Millisecond

// Authenticate checks HTTP basic credentials against Warren's users.
// Other fronts' helpers (tokens for WebSocket) can call checkCredentials.
//
// Credentials that were verified before are answered from s.auth without
// hashing the password again (see authCache). The returned user is shared:
// callers must not modify it.
func (s *Checker) Authenticate(c echo.Context) (*mapping.UserInfo, error) {
	if u, ok := c.Get(userKey).(*mapping.UserInfo); ok {
		return u, nil
	}
	req := c.Request()
	hdr := req.Header.Get("Authorization")
	if hdr == "" {
		return nil, httpx.APIError(http.StatusUnauthorized, "this endpoint needs HTTP basic authentication with a Warren user")
	}
	key := authCacheKey(hdr, req.RemoteAddr)
	gen := s.router.IdentityGeneration() // read before verifying: see authCache
	if u := s.auth.get(key, gen); u != nil {
		c.Set(userKey, u)
		return u, nil
	}
	user, pass, ok := req.BasicAuth()
	if !ok {
		return nil, httpx.APIError(http.StatusUnauthorized, "this endpoint needs HTTP basic authentication with a Warren user")
	}
	u, err := s.checkCredentials(c, user, pass)
	if err != nil {
		return nil, err
	}
	s.auth.put(key, gen, u)
	c.Set(userKey, u)
	return u, nil
}

func (s *Checker) checkCredentials(c echo.Context, user, pass string) (*mapping.UserInfo, error) {
	u, err := s.router.Authenticate(user, pass, httpx.RemoteAddr(c))
	if err != nil {
		s.logger.Warn("HTTP login refused", "user", user, "remote", c.Request().RemoteAddr, "reason", err)
		// Slow down password guessing, as the AMQP front does.
		select {
		case <-time.After(failedLoginDelay):
		case <-c.Request().Context().Done():
		}
		return nil, httpx.APIError(http.StatusUnauthorized, "login refused: "+err.Error())
	}
	return u, nil
}

// authCacheMax bounds the number of remembered credentials.
const authCacheMax = 4096

// authCache remembers HTTP credentials that passed Authenticate, so that a
// client sending the same Authorization header with every request pays
// for the password hash (PBKDF2) once, not per request.
//
//   - The key is a SHA-256 digest of the header and the client's host: the
//     cache holds no password, and an answer given to one client address
//     (loopback-only users) is never reused for another.
//   - An entry holds only while the core's identity generation equals the
//     one read before the credentials were verified: any change of users,
//     passwords, tags or permissions makes every entry stale at once.
//   - Failures are never remembered.
//   - Vhost access is not part of the answer; handlers check it per request.
type authCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	user *mapping.UserInfo
	gen  uint64
}

// authCacheKey digests the Authorization header with the client's host
// (RemoteAddr without its port).
func authCacheKey(hdr, remote string) [sha256.Size]byte {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	var buf [256]byte
	b := append(buf[:0], hdr...)
	b = append(b, 0)
	b = append(b, remote...)
	return sha256.Sum256(b)
}

// get returns the remembered user, or nil when there is none for the
// current generation.
func (ac *authCache) get(key [sha256.Size]byte, gen uint64) *mapping.UserInfo {
	ac.mu.RLock()
	e, ok := ac.m[key]
	ac.mu.RUnlock()
	if !ok || e.gen != gen {
		return nil
	}
	return e.user
}

// put remembers a verified user, making room when the cache is full: stale
// entries go first, then arbitrary ones.
func (ac *authCache) put(key [sha256.Size]byte, gen uint64, u *mapping.UserInfo) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if ac.m == nil {
		ac.m = make(map[[sha256.Size]byte]authEntry)
	}
	if _, ok := ac.m[key]; !ok && len(ac.m) >= authCacheMax {
		for k, e := range ac.m {
			if e.gen != gen {
				delete(ac.m, k)
			}
		}
		for k := range ac.m {
			if len(ac.m) < authCacheMax*7/8 {
				break
			}
			delete(ac.m, k)
		}
	}
	ac.m[key] = authEntry{user: u, gen: gen}
}

// len is the number of entries, for tests.
func (ac *authCache) len() int {
	ac.mu.RLock()
	defer ac.mu.RUnlock()
	return len(ac.m)
}
