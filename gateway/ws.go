package gateway

// WebSocket front: the upgrade, origin check, authentication and the set
// of live sessions. Two protocols share the transport in ws_conn.go:
// Warren's JSON protocol at /v1/ws (ws_session.go, ws_protocol.go) and
// STOMP 1.2 at /ws (stomp.go, stomp_frame.go).

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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

	"github.com/warrenmq/warren/mapping"
)

// WebSocket subprotocols.
const (
	wsSubprotocol = "warren.v1"
)

var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// WSConfig configures the WebSocket front and its tokens. The zero value
// works: same-origin browsers only, a random token key per process,
// 15-minute tokens.
type WSConfig struct {
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

// wsState is the WebSocket front's part of a Server: its configuration
// and every live session, so that Shutdown can end them.
type wsState struct {
	cfg    WSConfig
	secret []byte

	mu       sync.Mutex
	sessions map[*wsConn]struct{}
	closing  bool
	wg       sync.WaitGroup
	seq      atomic.Uint64
	hooked   sync.Once
}

// ws returns the server's WebSocket state, made with the default
// configuration on first use.
func (s *Server) ws() *wsState {
	if st := s.wsState.Load(); st != nil {
		return st
	}
	s.wsState.CompareAndSwap(nil, newWSState(WSConfig{}))
	return s.wsState.Load()
}

func newWSState(cfg WSConfig) *wsState {
	st := &wsState{cfg: cfg, sessions: map[*wsConn]struct{}{}}
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

// SetWSConfig replaces the WebSocket configuration. Call it before Serve.
func (s *Server) SetWSConfig(cfg WSConfig) {
	s.wsState.Store(newWSState(cfg))
}

// wsRoutes registers the WebSocket, token and example routes.
func (s *Server) wsRoutes() {
	s.ws()
	s.echo.GET("/v1/ws", s.wsJSON)
	s.echo.GET("/ws", s.wsSTOMP)
	s.echo.GET("/ws/amqp", s.wsAMQP) // amqpws.go
	s.echo.POST("/v1/tokens", s.createToken)
	s.exampleRoutes()
}

// CloseWebSockets ends every WebSocket session with close code 1001 (going
// away) and waits for them to finish, or for ctx. http.Server.Shutdown
// does not track hijacked connections, so Server.Shutdown calls this.
func (s *Server) CloseWebSockets(ctx context.Context) error {
	st := s.ws()
	st.mu.Lock()
	st.closing = true
	for c := range st.sessions {
		c.kill(websocket.CloseGoingAway, "server shutting down")
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

func (st *wsState) add(c *wsConn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing {
		return false
	}
	st.sessions[c] = struct{}{}
	st.wg.Add(1)
	return true
}

func (st *wsState) remove(c *wsConn) {
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
func (st *wsState) checkOrigin(r *http.Request) bool {
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

// upgrader builds the gorilla Upgrader for one protocol. Compression is
// off: permessage-deflate would let a small frame inflate without bound
// before the read limit applies, and costs memory per connection.
func (st *wsState) upgrader(subprotocols []string) *websocket.Upgrader {
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
			name := statusNames[status]
			if name == "" {
				name = "bad_request"
			}
			_ = wsJSONEncode(w, ErrorBody{Error: name, Reason: "WebSocket upgrade failed: " + reason.Error()})
		},
	}
}

// wsWriteBufferPool lends write buffers to connections only while they
// write, so an idle connection holds none.
var wsWriteBufferPool = &sync.Pool{}

// wsAuth is who a session runs as, once known.
type wsAuth struct {
	user    string
	vhost   string
	expires time.Time // zero: no expiry (basic auth)
}

// upgradeAuth authenticates the upgrade request itself: HTTP basic auth
// or ?token=. ok=false with err=nil means the client has not said who it
// is yet and must do it in its first frame.
func (s *Server) upgradeAuth(c echo.Context) (a wsAuth, ok bool, err error) {
	r := c.Request()
	vhost := r.URL.Query().Get("vhost")
	if vhost == "" {
		vhost = "/"
	}
	if _, _, has := r.BasicAuth(); has {
		u, err := s.authenticate(c)
		if err != nil {
			return a, false, err
		}
		return wsAuth{user: u.Name, vhost: vhost}, true, nil
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		a, err := s.verifyToken(tok, remoteAddr(c))
		if err != nil {
			return a, false, apiError(http.StatusUnauthorized, err.Error())
		}
		if r.URL.Query().Get("vhost") != "" {
			a.vhost = vhost
		}
		return a, true, nil
	}
	return a, false, nil
}

// loginPassword authenticates a user name and password or token given in
// a first frame (the JSON auth op, STOMP CONNECT). A password that fails
// and parses as a token is tried as a token, so that STOMP clients can
// pass a token as the passcode.
func (s *Server) loginPassword(p *wsPeer, user, pass, token, vhost string) (wsAuth, error) {
	if token == "" && user != "" {
		u, err := s.router.Authenticate(user, pass, p.addr)
		if err == nil {
			return wsAuth{user: u.Name, vhost: vhost}, nil
		}
		if !looksLikeToken(pass) {
			s.cfg.Logger.Warn("WebSocket login refused", "user", user, "remote", p.remote, "reason", err)
			return wsAuth{}, err
		}
		token = pass
	}
	if token == "" {
		return wsAuth{}, wsCoreError(mapping.KindAccessRefused, "no credentials: give a user name and password, or a token from POST /v1/tokens")
	}
	a, err := s.verifyToken(token, p.addr)
	if err != nil {
		return wsAuth{}, err
	}
	if user != "" && user != a.user {
		return wsAuth{}, wsCoreError(mapping.KindAccessRefused, "the token belongs to user '"+a.user+"', not '"+user+"'")
	}
	if vhost != "" {
		a.vhost = vhost
	}
	return a, nil
}

func wsCoreError(k mapping.Kind, text string) error { return &mapping.Error{Kind: k, Text: text} }

// connect opens the session's core connection after checking vhost
// access (the same check as AMQP connection.open).
func (s *Server) connectCore(p *wsPeer, a wsAuth, protocol string, wc *wsConn) (*mapping.Conn, error) {
	n := s.ws().seq.Add(1)
	name := p.remote + " -> " + p.host + " (" + protocol + " #" + strconv.FormatUint(n, 10) + ")"
	return s.router.Connect(a.user, a.vhost, mapping.ConnInfo{
		Name:     name,
		Protocol: protocol,
		Peer:     p.remote,
		Local:    p.local,
		TLS:      p.tls,
		ClientProperties: mapping.Table{
			"user_agent": p.userAgent,
			"origin":     p.origin,
		},
		Close: func(reason string) { wc.kill(closeForced, "closed by the broker: "+reason) },
	})
}

// wsPeer is what a session keeps of its upgrade request: the session
// outlives the handler, and echo reuses its contexts.
type wsPeer struct {
	addr                                   net.Addr
	remote, host, local, userAgent, origin string
	tls                                    *tls.ConnectionState // nil over plain HTTP
}

func newWSPeer(c echo.Context) *wsPeer {
	r := c.Request()
	return &wsPeer{addr: remoteAddr(c), remote: r.RemoteAddr, host: r.Host, local: wsLocalAddr(r), userAgent: r.UserAgent(), origin: r.Header.Get("Origin"), tls: r.TLS}
}

func wsLocalAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}
