package wsconn

// The WebSocket fronts' shared part: the upgrade, origin check,
// authentication and the set of live sessions. Two protocols share the
// transport in ws_conn.go: Warren's JSON protocol at /v1/ws
// (gateway/websocket) and STOMP 1.2 at /ws (gateway/stomp).

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/mapping"
)

// Config configures the WebSocket front and its tokens. The zero value
// works: same-origin browsers only, a random token key per process,
// 15-minute tokens.
type Config struct {
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed to open a WebSocket. Empty allows only pages served by
	// Warren itself (the Origin's host equals the request's Host). "*"
	// allows every origin (cross-site WebSocket hijacking is then possible:
	// use it only behind another check). Requests without an Origin
	// header (non-browser clients) are always allowed.
	AllowedOrigins []string
	// TokenSecret signs the tokens of POST /v1/tokens. Nodes that share
	// a NATS cluster need the same secret to accept each other's tokens.
	// nil means 32 random bytes chosen at start.
	TokenSecret []byte
	// TokenTTL is the default token lifetime (15 minutes when 0);
	// MaxTokenTTL caps what a client may ask for (1 hour when 0).
	TokenTTL    time.Duration
	MaxTokenTTL time.Duration
}

// Defaults of the WebSocket front.
const (
	defaultTokenTTL    = 15 * time.Minute
	defaultMaxTokenTTL = time.Hour
)

// State is the WebSocket front's part of a Server: its configuration
// and every live session, so that Shutdown can end them.
type State struct {
	cfg    Config
	deps   Deps
	secret []byte

	mu       sync.Mutex
	sessions map[*Conn]struct{}
	closing  bool
	wg       sync.WaitGroup
	Seq      atomic.Uint64
	hooked   sync.Once
}

// Deps is what the sessions need from the server that owns the State.
type Deps struct {
	Router *mapping.Router
	Logger *slog.Logger
	// Authenticate checks the HTTP basic credentials of a request.
	Authenticate func(c echo.Context) (*mapping.UserInfo, error)
	// OnShutdown registers f to run when the HTTP server shuts down.
	OnShutdown func(f func())
}

// NewState makes the WebSocket state of a server with cfg (defaults
// filled in) and a fresh token key unless cfg names one.
func NewState(cfg Config, deps Deps) *State {
	st := &State{cfg: cfg, deps: deps, sessions: map[*Conn]struct{}{}}
	st.secret = cfg.TokenSecret
	if len(st.secret) == 0 {
		st.secret = make([]byte, 32)
		rand.Read(st.secret)
	}
	if st.cfg.TokenTTL <= 0 {
		st.cfg.TokenTTL = defaultTokenTTL
	}
	if st.cfg.MaxTokenTTL <= 0 {
		st.cfg.MaxTokenTTL = defaultMaxTokenTTL
	}
	return st
}

// CloseAll ends every WebSocket session with close code 1001 (going
// away) and waits for them to finish, or for ctx. http.Server.Shutdown
// does not track hijacked connections, so Server.Shutdown calls this.
func (st *State) CloseAll(ctx context.Context) error {
	st.mu.Lock()
	st.closing = true
	for c := range st.sessions {
		c.Kill(websocket.CloseGoingAway, "server shutting down")
	}
	st.mu.Unlock()
	done := make(chan struct{})
	go func() {
		st.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (st *State) add(c *Conn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing {
		return false
	}
	st.sessions[c] = struct{}{}
	st.wg.Add(1)
	return true
}

func (st *State) remove(c *Conn) {
	st.mu.Lock()
	_, ok := st.sessions[c]
	delete(st.sessions, c)
	st.mu.Unlock()
	if ok {
		st.wg.Done()
	}
}

// checkOrigin refuses cross-site WebSocket hijacking: a browser page from
// another site must be in AllowedOrigins.
func (st *State) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(st.cfg.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range st.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	return false
}

// Upgrader builds the gorilla Upgrader for one protocol. Compression is
// off: permessage-deflate would let a small frame inflate without bound
// before the read limit applies, and costs memory per connection.
func (st *State) Upgrader(subprotocols []string) *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout:  10 * time.Second,
		ReadBufferSize:    1024,
		WriteBufferSize:   4096,
		WriteBufferPool:   wsWriteBufferPool,
		Subprotocols:      subprotocols,
		CheckOrigin:       st.checkOrigin,
		EnableCompression: false,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Sec-Websocket-Version", "13")
			w.WriteHeader(status)
			name := httpx.StatusNames[status]
			if name == "" {
				name = "bad_request"
			}
			_ = wsJSONEncode(w, httpx.ErrorBody{Error: name, Reason: "WebSocket upgrade failed: " + reason.Error()})
		},
	}
}

// wsWriteBufferPool lends write buffers to connections only while they
// write, so an idle connection holds none.
var wsWriteBufferPool = &sync.Pool{}

// Auth is who a session runs as, once known.
type Auth struct {
	User    string
	VHost   string
	Expires time.Time // zero: no expiry (basic auth)
}

// UpgradeAuth authenticates the upgrade request itself: HTTP basic auth
// or ?token=. ok=false with err=nil means the client has not said who it
// is yet and must do it in its first frame.
func (st *State) UpgradeAuth(c echo.Context) (a Auth, ok bool, err error) {
	r := c.Request()
	vhost := r.URL.Query().Get("vhost")
	if vhost == "" {
		vhost = "/"
	}
	if _, _, has := r.BasicAuth(); has {
		u, err := st.deps.Authenticate(c)
		if err != nil {
			return a, false, err
		}
		return Auth{User: u.Name, VHost: vhost}, true, nil
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		a, err := st.verifyToken(tok, httpx.RemoteAddr(c))
		if err != nil {
			return a, false, httpx.APIError(http.StatusUnauthorized, err.Error())
		}
		if r.URL.Query().Get("vhost") != "" {
			a.VHost = vhost
		}
		return a, true, nil
	}
	return a, false, nil
}

// LoginPassword authenticates a user name and password or token given in
// a first frame (the JSON auth op, STOMP CONNECT). A password that fails
// and parses as a token is tried as a token, so that STOMP clients can
// pass a token as the passcode.
func (st *State) LoginPassword(p *Peer, user, pass, token, vhost string) (Auth, error) {
	if token == "" && user != "" {
		u, err := st.deps.Router.Authenticate(user, pass, p.addr)
		if err == nil {
			return Auth{User: u.Name, VHost: vhost}, nil
		}
		if !looksLikeToken(pass) {
			st.deps.Logger.Warn("WebSocket login refused", "user", user, "remote", p.remote, "reason", err)
			return Auth{}, err
		}
		token = pass
	}
	if token == "" {
		return Auth{}, wsCoreError(mapping.KindAccessRefused, "no credentials: give a user name and password, or a token from POST /v1/tokens")
	}
	a, err := st.verifyToken(token, p.addr)
	if err != nil {
		return Auth{}, err
	}
	if user != "" && user != a.User {
		return Auth{}, wsCoreError(mapping.KindAccessRefused, "the token belongs to user '"+a.User+"', not '"+user+"'")
	}
	if vhost != "" {
		a.VHost = vhost
	}
	return a, nil
}

func wsCoreError(k mapping.Kind, text string) error { return &mapping.Error{Kind: k, Text: text} }

// ConnectCore opens the session's core connection after checking vhost
// access (the same check as AMQP connection.open).
func (st *State) ConnectCore(p *Peer, a Auth, protocol string, wc *Conn) (*mapping.Conn, error) {
	n := st.Seq.Add(1)
	name := p.remote + " -> " + p.host + " (" + protocol + " #" + strconv.FormatUint(n, 10) + ")"
	return st.deps.Router.Connect(a.User, a.VHost, mapping.ConnInfo{
		Name:     name,
		Protocol: protocol,
		Peer:     p.remote,
		Local:    p.local,
		TLS:      p.tls,
		ClientProperties: mapping.Table{
			"user_agent": p.userAgent,
			"origin":     p.origin,
		},
		Close: func(reason string) { wc.Kill(CloseForced, "closed by the broker: "+reason) },
	})
}

// Peer is what a session keeps of its upgrade request: the session
// outlives the handler, and echo reuses its contexts.
type Peer struct {
	addr                                   net.Addr
	remote, host, local, userAgent, origin string
	tls                                    *tls.ConnectionState // nil over plain HTTP
}

func NewPeer(c echo.Context) *Peer {
	r := c.Request()
	return &Peer{addr: httpx.RemoteAddr(c), remote: r.RemoteAddr, host: r.Host, local: wsLocalAddr(r), userAgent: r.UserAgent(), origin: r.Header.Get("Origin"), tls: r.TLS}
}

func wsLocalAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}
