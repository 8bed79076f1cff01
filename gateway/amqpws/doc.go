// Package amqpws is the gateway's AMQP-over-WebSocket front: GET /ws/amqp
// upgrades with the origin rules of the other WebSocket endpoints
// (gateway/internal/wsconn) and carries an AMQP 0-9-1 byte stream in
// binary messages over a net.Conn (NewWebSocketConn), served by the AMQP
// server that cmd/warren hands to SetAMQPWebSocket. Its Server is owned
// by the gateway's Server; it imports no other front.
package amqpws
