package mgmt

import (
	"log/slog"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/shovel"
)

// Config is what the management front needs from the gateway's
// configuration.
type Config struct {
	Logger *slog.Logger
	// Shovels runs the dynamic shovels; nil answers those calls with 503.
	Shovels *shovel.Manager
	// Authenticate checks a request's HTTP basic credentials and leaves
	// the user in the context under httpx.UserKey.
	Authenticate func(c echo.Context) (*mapping.UserInfo, error)
}

// Server is the management front of a gateway server: the RabbitMQ-style
// management API at /api/, the web UI at / and /assets/, and /metrics with
// the request metrics of every route of the echo server it is given.
type Server struct {
	cfg    Config
	router *mapping.Router
	echo   *echo.Echo

	// Made on first use (mgmtRoutes, metrics).
	mgmtState atomic.Pointer[mgmt]
	metricsSt atomic.Pointer[Metrics]
}

// New makes the management front on router, serving on e.
func New(cfg Config, router *mapping.Router, e *echo.Echo) *Server {
	return &Server{cfg: cfg, router: router, echo: e}
}

// Routes registers the web UI (ui.go), the management API and /metrics
// (mgmt_routes.go, metrics.go).
func (s *Server) Routes() {
	s.uiRoutes()
	s.mgmtRoutes()
}

func (s *Server) authenticate(c echo.Context) (*mapping.UserInfo, error) {
	return s.cfg.Authenticate(c)
}

// The shared HTTP plumbing (gateway/internal/httpx) under the names this
// front's handlers use.
var (
	apiError       = httpx.APIError
	coreError      = httpx.CoreError
	publishAndWait = httpx.PublishAndWait
)

const userKey = httpx.UserKey
