package wsconn

// Short-lived tokens for browsers, which cannot set an Authorization
// header on a WebSocket: POST /v1/tokens (HTTP basic auth) returns a
// token that /v1/ws and /ws accept as ?token=, in the first frame, or as
// a STOMP passcode.
//
// A token is "wt1.<payload>.<mac>": payload is base64url JSON
// {u: user, exp: Unix seconds, lo: issued over loopback}, mac is
// base64url HMAC-SHA256 over "wt1.<payload>" with the server's secret.
// It carries no password. A token issued over loopback is only accepted
// from loopback, so loopback-only users (guest) stay loopback-only.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/mapping"
)

const tokenPrefix = "wt1."

type tokenClaims struct {
	User     string `json:"u"`
	Expires  int64  `json:"exp"`
	Loopback bool   `json:"lo,omitempty"`
}

// TokenRequest is the optional body of POST /v1/tokens.
type TokenRequest struct {
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// TokenResponse is the answer of POST /v1/tokens.
type TokenResponse struct {
	Token     string `json:"token"`
	User      string `json:"user"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
}

// CreateToken is POST /v1/tokens.
func (st *State) CreateToken(c echo.Context) error {
	u, err := st.deps.Authenticate(c)
	if err != nil {
		return err
	}
	ttl := st.cfg.TokenTTL
	var req TokenRequest
	if tree, ok := validate.Body(c); ok { // one parse: the validator's
		m, _ := tree.(map[string]any)
		if n, ok := m["ttl_seconds"].(json.Number); ok {
			v, err := n.Int64()
			if err != nil {
				return httpx.APIError(http.StatusBadRequest, "ttl_seconds must be an integer: "+err.Error())
			}
			req.TTLSeconds = v
		}
	} else if c.Request().ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4096))
		if err := dec.Decode(&req); err != nil && err.Error() != "EOF" {
			return httpx.APIError(http.StatusBadRequest, "body must be JSON like {\"ttl_seconds\": 600}: "+err.Error())
		}
	}
	if req.TTLSeconds < 0 {
		return httpx.APIError(http.StatusBadRequest, "ttl_seconds must be positive")
	}
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	if ttl > st.cfg.MaxTokenTTL {
		return httpx.APIError(http.StatusBadRequest, "ttl_seconds is longer than the maximum of "+st.cfg.MaxTokenTTL.String())
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok := st.sign(tokenClaims{User: u.Name, Expires: exp.Unix(), Loopback: isLoopbackAddr(httpx.RemoteAddr(c))})
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, TokenResponse{Token: tok, User: u.Name, ExpiresAt: exp.UTC().Format(time.RFC3339), ExpiresIn: int64(time.Until(exp).Seconds())})
}

func (st *State) sign(cl tokenClaims) string {
	j, _ := json.Marshal(cl)
	head := tokenPrefix + base64.RawURLEncoding.EncodeToString(j)
	mac := hmac.New(sha256.New, st.secret)
	mac.Write([]byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func looksLikeToken(s string) bool { return strings.HasPrefix(s, tokenPrefix) }

// verifyToken checks a token's signature, expiry, origin and user, and
// returns who it authenticates (vhost "/" unless the caller says).
func (st *State) verifyToken(tok string, remote net.Addr) (Auth, error) {
	refused := func(why string) (Auth, error) {
		return Auth{}, wsCoreError(mapping.KindAccessRefused, "token refused: "+why)
	}
	if !looksLikeToken(tok) {
		return refused("not a Warren token (get one with POST /v1/tokens)")
	}
	head, sig, ok := strings.Cut(tok[len(tokenPrefix):], ".")
	if !ok {
		return refused("malformed")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return refused("malformed signature")
	}
	mac := hmac.New(sha256.New, st.secret)
	mac.Write([]byte(tokenPrefix + head))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return refused("bad signature (was it issued by another server?)")
	}
	j, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return refused("malformed payload")
	}
	var cl tokenClaims
	if err := json.Unmarshal(j, &cl); err != nil {
		return refused("malformed payload")
	}
	exp := time.Unix(cl.Expires, 0)
	if !time.Now().Before(exp) {
		return refused("expired at " + exp.UTC().Format(time.RFC3339) + "; get a new one with POST /v1/tokens")
	}
	if cl.Loopback && !isLoopbackAddr(remote) {
		return refused("it was issued to a loopback client and is only valid from loopback")
	}
	if _, err := st.deps.Router.User(cl.User); err != nil {
		return refused("user '" + cl.User + "' no longer exists")
	}
	return Auth{User: cl.User, VHost: "/", Expires: exp}, nil
}

func isLoopbackAddr(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}
