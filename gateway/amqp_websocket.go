package gateway

import (
	"net"

	"github.com/gorilla/websocket"

	"github.com/warrenmq/warren/gateway/amqpws"
)

// AMQPConnServer serves one AMQP 0-9-1 connection over nc until it ends
// and closes nc (amqpserver.Server.ServeConn with its WebSocket label).
type AMQPConnServer = amqpws.AMQPConnServer

// SetAMQPWebSocket enables /ws/amqp (gateway/amqpws): each WebSocket
// accepted there is served as one AMQP connection by serve. Call it
// before Serve.
func (s *Server) SetAMQPWebSocket(serve AMQPConnServer) {
	s.amqpWS.SetAMQPWebSocket(serve)
}

// NewWebSocketConn is a net.Conn over ws that carries a byte stream in
// binary messages (see amqpws.NewWebSocketConn).
func NewWebSocketConn(ws *websocket.Conn) net.Conn { return amqpws.NewWebSocketConn(ws) }
