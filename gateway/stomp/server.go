package stomp

import (
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
)

// Server is the STOMP front of a gateway server: it serves GET /ws on the
// server's WebSocket state.
type Server struct {
	router *mapping.Router
	ws     func() *wsconn.State // the owning server's current state
}

// New makes the STOMP front on router; ws returns the owning server's
// WebSocket state (it may be replaced before serving).
func New(router *mapping.Router, ws func() *wsconn.State) *Server {
	return &Server{router: router, ws: ws}
}

// Routes registers GET /ws.
func (s *Server) Routes(e *echo.Echo) {
	e.GET("/ws", s.wsSTOMP)
}

var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}
