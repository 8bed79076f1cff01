package websocket

import (
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
)

// Server is the WebSocket JSON front of a gateway server: it serves
// GET /v1/ws on the server's WebSocket state.
type Server struct {
	router *mapping.Router
	ws     func() *wsconn.State // the owning server's current state
}

// New makes the JSON front on router; ws returns the owning server's
// WebSocket state (it may be replaced before serving).
func New(router *mapping.Router, ws func() *wsconn.State) *Server {
	return &Server{router: router, ws: ws}
}

// Routes registers GET /v1/ws.
func (s *Server) Routes(e *echo.Echo) {
	e.GET("/v1/ws", s.wsJSON)
}

// WebSocket subprotocols.
const (
	wsSubprotocol = "warren.v1"
)
