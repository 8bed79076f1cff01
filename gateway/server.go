package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/openapi"
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
}

// Server is the HTTP front.
type Server struct {
	cfg    Config
	router *mapping.Router
	echo   *echo.Echo
	http   *http.Server
}

// New builds the HTTP front on top of the routing core.
func New(cfg Config, r *mapping.Router) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{cfg: cfg, router: r, echo: e}
	e.HTTPErrorHandler = s.errorHandler
	s.routes()
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
	}
	return s
}

// routes registers every route. Each area keeps its routes in its own
// file; routes_test.go checks them against the OpenAPI document.
func (s *Server) routes() {
	s.echo.GET("/healthz", s.health)
	s.echo.GET("/openapi.json", s.openapiDoc)
}

func (s *Server) openapiDoc(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, openapi.JSON())
}

// health answers 200 while the core is serving, 503 once it is closing.
func (s *Server) health(c echo.Context) error {
	if err := s.router.Healthy(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Serve accepts HTTP connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops accepting and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
