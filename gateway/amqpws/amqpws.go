package amqpws

// AMQP 0-9-1 over WebSocket at /ws/amqp: the upgrade (with the origin
// rules of the other WebSocket endpoints) and a net.Conn over the
// WebSocket that carries the AMQP byte stream in binary messages. The
// AMQP server itself is not imported (a front does not import another
// front): cmd/warren hands its ServeConn to SetAMQPWebSocket. The handler
// depends only on the request, so it works on any HTTP server the
// gateway is mounted on, TLS or not. The connections belong to the AMQP
// server: its Shutdown closes them (with 320), not CloseWebSockets.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/gateway/internal/wsconn"
)

// AMQPConnServer serves one AMQP 0-9-1 connection over nc until it ends
// and closes nc (amqpserver.Server.ServeConn with its WebSocket label).
type AMQPConnServer func(nc net.Conn) error

// Server is the AMQP-over-WebSocket front of a gateway server.
type Server struct {
	logger *slog.Logger
	ws     func() *wsconn.State // the owning server's current state
	serve  atomic.Pointer[AMQPConnServer]
}

// New makes the front; ws returns the owning server's WebSocket state.
func New(logger *slog.Logger, ws func() *wsconn.State) *Server {
	return &Server{logger: logger, ws: ws}
}

// Routes registers GET /ws/amqp.
func (s *Server) Routes(e *echo.Echo) {
	e.GET("/ws/amqp", s.wsAMQP)
}

// SetAMQPWebSocket enables /ws/amqp: each WebSocket accepted there is
// served as one AMQP connection by serve. Call it before Serve.
func (s *Server) SetAMQPWebSocket(serve AMQPConnServer) {
	s.serve.Store(&serve)
}

// amqpWSSubprotocols are accepted when a client offers them; clients that
// offer none (@cloudamqp/amqp-client) are served too.
var amqpWSSubprotocols = []string{"amqp"}

// amqpWSBufferSize is the WebSocket read buffer of a connection and the
// pooled write buffer: one default AMQP frame (frame_max 131072) is 8 of
// them.
const amqpWSBufferSize = 16 << 10

var amqpWSWriteBufferPool = &sync.Pool{}

// wsAMQP upgrades /ws/amqp and serves the AMQP connection in the
// handler's goroutine. Authentication is AMQP's own (connection.start-ok).
func (s *Server) wsAMQP(c echo.Context) error {
	v := s.serve.Load()
	if v == nil {
		return httpx.APIError(http.StatusNotFound, "AMQP over WebSocket is not enabled on this server")
	}
	serve := *v
	up := s.ws().Upgrader(amqpWSSubprotocols)
	// AMQP moves bodies of any size: larger buffers than the JSON and
	// STOMP fronts' mean fewer system calls and WebSocket fragments.
	up.ReadBufferSize, up.WriteBufferSize = amqpWSBufferSize, amqpWSBufferSize
	up.WriteBufferPool = amqpWSWriteBufferPool // gorilla: one pool per buffer size
	ws, err := up.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	if err := serve(NewWebSocketConn(ws)); err != nil {
		s.logger.Debug("AMQP over WebSocket refused", "remote", c.Request().RemoteAddr, "err", err)
	}
	return nil
}

// wsStream is a net.Conn over a WebSocket: Read returns the payloads of
// the binary messages received, in order and without boundaries (an AMQP
// frame may be split over several messages, or one message may hold many
// frames); each Write sends one binary message. A close frame from the
// peer reads as io.EOF; Close sends a normal close frame (1000) first.
// One goroutine may read while another writes, as net.Conn allows.
type wsStream struct {
	ws *websocket.Conn

	r io.Reader // the message being read; reader goroutine only

	wmu       sync.Mutex
	closeOnce sync.Once
}

// NewWebSocketConn returns a net.Conn over ws as /ws/amqp uses it (a Go
// client can use it too, as the tests do).
func NewWebSocketConn(ws *websocket.Conn) net.Conn {
	return &wsStream{ws: ws}
}

// errWSText is the read error for a text message: the AMQP stream is
// binary, and the peer is told so with close code 1003.
var errWSText = errors.New("AMQP over WebSocket takes binary messages only, got a text message")

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			typ, r, err := s.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				s.closeWith(websocket.CloseUnsupportedData, "binary messages only")
				return 0, errWSText
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r = nil
			if n == 0 {
				continue // an empty message, or the end of one: take the next
			}
			err = nil
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a close frame (best effort, bounded) and closes the socket.
func (s *wsStream) Close() error {
	s.closeWith(websocket.CloseNormalClosure, "")
	return s.ws.Close()
}

func (s *wsStream) closeWith(code int, text string) {
	s.closeOnce.Do(func() {
		_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	})
}

func (s *wsStream) LocalAddr() net.Addr  { return s.ws.LocalAddr() }
func (s *wsStream) RemoteAddr() net.Addr { return s.ws.RemoteAddr() }

func (s *wsStream) SetDeadline(t time.Time) error {
	return errors.Join(s.ws.SetReadDeadline(t), s.ws.SetWriteDeadline(t))
}
func (s *wsStream) SetReadDeadline(t time.Time) error  { return s.ws.SetReadDeadline(t) }
func (s *wsStream) SetWriteDeadline(t time.Time) error { return s.ws.SetWriteDeadline(t) }
