package gateway

// The server's side of the WebSocket fronts: it owns their shared state
// (gateway/internal/wsconn) and registers the routes of the fronts that
// run on it: /v1/ws (gateway/websocket), /ws (gateway/stomp), /ws/amqp
// (gateway/amqpws) and /v1/tokens.

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/docs"
	"github.com/warrenmq/warren/gateway/internal/wsconn"
)

// WSConfig configures the WebSocket fronts and their tokens (see
// wsconn.Config). The zero value works.
type WSConfig = wsconn.Config

// TokenRequest and TokenResponse are the body and answer of POST /v1/tokens.
type (
	TokenRequest  = wsconn.TokenRequest
	TokenResponse = wsconn.TokenResponse
)

// ws returns the server's WebSocket state, made with the default
// configuration on first use.
func (s *Server) ws() *wsconn.State {
	if st := s.wsState.Load(); st != nil {
		return st
	}
	s.wsState.CompareAndSwap(nil, s.newWSState(WSConfig{}))
	return s.wsState.Load()
}

// newWSState makes the WebSocket state for cfg, wired to this server.
func (s *Server) newWSState(cfg WSConfig) *wsconn.State {
	return wsconn.NewState(cfg, wsconn.Deps{
		Router:       s.router,
		Logger:       s.cfg.Logger,
		Authenticate: s.authenticate,
		OnShutdown:   s.registerOnShutdown,
	})
}

// SetWSConfig replaces the WebSocket configuration. Call it before Serve.
func (s *Server) SetWSConfig(cfg WSConfig) {
	s.wsState.Store(s.newWSState(cfg))
}

// wsRoutes registers the WebSocket, token and example routes.
func (s *Server) wsRoutes() {
	s.ws()
	s.wsJSON.Routes(s.echo) // GET /v1/ws
	s.stomp.Routes(s.echo)  // GET /ws
	s.amqpWS.Routes(s.echo) // GET /ws/amqp
	s.echo.POST("/v1/tokens", s.createToken)
	docs.ExampleRoutes(s.echo) // /examples/ (gateway/internal/docs)
}

// createToken is POST /v1/tokens.
func (s *Server) createToken(c echo.Context) error { return s.ws().CreateToken(c) }

// CloseWebSockets ends every WebSocket session with close code 1001 (going
// away) and waits for them to finish, or for ctx. http.Server.Shutdown
// does not track hijacked connections, so Server.Shutdown calls this.
func (s *Server) CloseWebSockets(ctx context.Context) error {
	return s.ws().CloseAll(ctx)
}
