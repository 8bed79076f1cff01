// Package stomp is the gateway's STOMP front: STOMP 1.0-1.2 over
// WebSocket at GET /ws with RabbitMQ Web-STOMP's destinations (stomp.go)
// and the frame parser and encoder (stomp_frame.go).
//
// Its Server is owned by the gateway's Server, which registers its route
// (Routes) and gives it the shared WebSocket state (gateway/internal/wsconn:
// upgrade, login, tokens, the session transport). It translates between
// STOMP frames and package mapping; it imports no other front.
package stomp
