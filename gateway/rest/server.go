package rest

import (
	"context"
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/mapping"
)

// Config is what the REST front needs from the gateway server that owns it.
type Config struct {
	Logger *slog.Logger
	// Authenticate checks a request's HTTP basic credentials and leaves
	// the user in the context under httpx.UserKey.
	Authenticate func(c echo.Context) (*mapping.UserInfo, error)
	// OnShutdown registers f to run when the HTTP server shuts down.
	OnShutdown func(f func())
}

// Server is the REST front of a gateway server: the /v1/ data plane.
type Server struct {
	cfg    Config
	router *mapping.Router
	echo   *echo.Echo
	// onShutdown runs from Shutdown: the front ends its long-lived
	// requests (SSE, long polls) and hidden connections.
	onShutdown []func(ctx context.Context)
}

// New makes the REST front on router, serving on e.
func New(cfg Config, router *mapping.Router, e *echo.Echo) *Server {
	return &Server{cfg: cfg, router: router, echo: e}
}

// Routes registers the /v1/ data plane (rest_routes.go).
func (s *Server) Routes() { s.restRoutes() }

// Shutdown ends SSE streams and long polls and closes the front's hidden
// connections; the owning server calls it before the HTTP server stops.
func (s *Server) Shutdown(ctx context.Context) {
	for _, f := range s.onShutdown {
		f(ctx)
	}
}

func (s *Server) authenticate(c echo.Context) (*mapping.UserInfo, error) {
	return s.cfg.Authenticate(c)
}

// requireUser is middleware that authenticates every request of a group.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.authenticate(c); err != nil {
			return err
		}
		return next(c)
	}
}

// The shared HTTP plumbing (gateway/internal/httpx) under the names this
// front's handlers use.
var (
	apiError       = httpx.APIError
	errorStatus    = httpx.ErrorStatus
	coreError      = httpx.CoreError
	publishAndWait = httpx.PublishAndWait
)
