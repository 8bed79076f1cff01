package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/warrenmq/warren/gateway/amqpws"
	"github.com/warrenmq/warren/gateway/internal/auth"
	"github.com/warrenmq/warren/gateway/internal/docs"
	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/gateway/mgmt"
	"github.com/warrenmq/warren/gateway/rest"
	"github.com/warrenmq/warren/gateway/stomp"
	"github.com/warrenmq/warren/gateway/websocket"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/shovel"
)

// HTTP server timeouts: a slow or idle client cannot hold a connection open
// for ever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	idleTimeout       = 120 * time.Second
)

// Config configures the HTTP front. The zero value works.
type Config struct {
	Logger *slog.Logger
	// CORSOrigins lists the browser origins allowed to call the /v1/ API
	// from other sites ("*" for any); empty sends no CORS headers.
	CORSOrigins []string
	// WS configures the WebSocket front (origins, tokens).
	WS WSConfig
	// Shovels runs the dynamic shovels the management API manages; nil
	// answers those calls with 503.
	Shovels *shovel.Manager
}

// Server is the HTTP front.
type Server struct {
	cfg    Config
	router *mapping.Router
	echo   *echo.Echo
	http   *http.Server
	auth   *auth.Checker // HTTP basic auth of every front (gateway/internal/auth)
	// onShutdown runs before the HTTP server stops: fronts end their
	// long-lived sessions (WebSocket, SSE, long polls) and wait for them.
	onShutdown []func(ctx context.Context)

	// Per-server state of the WebSocket fronts, made on first use
	// (SetWSConfig replaces it before serving).
	wsState atomic.Pointer[wsconn.State]

	wsJSON *websocket.Server // JSON protocol at /v1/ws (gateway/websocket)
	stomp  *stomp.Server     // STOMP at /ws (gateway/stomp)
	amqpWS *amqpws.Server    // AMQP 0-9-1 at /ws/amqp (gateway/amqpws)
	mgmt   *mgmt.Server      // management API, UI, /metrics (gateway/mgmt)
	rest   *rest.Server      // the /v1/ data plane (gateway/rest)
}

// New builds the HTTP front on top of the routing core.
func New(cfg Config, r *mapping.Router) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{cfg: cfg, router: r, echo: e, auth: auth.New(r, cfg.Logger)}
	e.HTTPErrorHandler = httpx.ErrorHandler(cfg.Logger)
	// RabbitMQ's management API answers with or without a trailing slash
	// (clients call /api/connections/).
	e.Pre(trimAPISlash)
	if len(cfg.CORSOrigins) > 0 {
		e.Pre(middleware.CORSWithConfig(middleware.CORSConfig{
			Skipper:       func(c echo.Context) bool { return !strings.HasPrefix(c.Request().URL.Path, "/v1/") },
			AllowOrigins:  cfg.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost},
			AllowHeaders:  []string{"*"},
			ExposeHeaders: []string{"*"},
			MaxAge:        600,
		}))
	}
	s.SetWSConfig(cfg.WS)
	s.wsJSON = websocket.New(r, s.ws)
	s.stomp = stomp.New(r, s.ws)
	s.amqpWS = amqpws.New(cfg.Logger, s.ws)
	s.rest = rest.New(rest.Config{Logger: cfg.Logger, Authenticate: s.authenticate, OnShutdown: s.registerOnShutdown}, r, e)
	s.mgmt = mgmt.New(mgmt.Config{Logger: cfg.Logger, Shovels: cfg.Shovels, Authenticate: s.authenticate}, r, e)
	s.routes()
	e.Use(validate.Middleware(r, s.authenticate)) // requests are validated against the OpenAPI document (gateway/internal/validate)
	s.onShutdown = append(s.onShutdown, func(ctx context.Context) { s.CloseWebSockets(ctx) })
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          httpErrorLog(cfg.Logger),
	}
	return s
}

// routes registers every route. Each area keeps its routes in its own
// file; routes_test.go checks them against the OpenAPI document.
func (s *Server) routes() {
	s.echo.GET("/healthz", s.health)
	s.rest.Routes() // the /v1/ data plane (gateway/rest)
	s.onShutdown = append(s.onShutdown, s.rest.Shutdown)
	docs.Routes(s.echo) // /openapi.json, /asyncapi.json and the API docs page (gateway/internal/docs)
	s.mgmt.Routes()     // management web UI at / and /assets/, API /api/, /metrics and its request metrics (gateway/mgmt)
	s.wsRoutes()        // WebSocket /v1/ws, STOMP /ws, /v1/tokens, /examples/ (websockets.go)
}

// health answers 200 while the core is serving, 503 once it is closing.
func (s *Server) health(c echo.Context) error {
	if err := s.router.Healthy(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// authenticate checks a request's HTTP basic credentials (see
// auth.Checker.Authenticate).
func (s *Server) authenticate(c echo.Context) (*mapping.UserInfo, error) {
	return s.auth.Authenticate(c)
}

// registerOnShutdown runs f when the HTTP server shuts down (fronts hook
// their clean-up in on first use, when s.http exists).
func (s *Server) registerOnShutdown(f func()) {
	if s.http != nil {
		s.http.RegisterOnShutdown(f)
	}
}

// Serve accepts HTTP connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown ends long-lived sessions (WebSocket, SSE, long polls), then
// stops accepting and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, f := range s.onShutdown {
		f(ctx)
	}
	return s.http.Shutdown(ctx)
}

// trimAPISlash drops one trailing slash from /api/ paths, in both the
// decoded and the raw path (echo routes on the raw one when it has
// escapes such as %2F).
func trimAPISlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		if strings.HasPrefix(u.Path, "/api/") && len(u.Path) > len("/api/") && strings.HasSuffix(u.Path, "/") {
			u.Path = strings.TrimSuffix(u.Path, "/")
			u.RawPath = strings.TrimSuffix(u.RawPath, "/")
		}
		return next(c)
	}
}
