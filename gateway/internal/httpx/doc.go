// Package httpx is the HTTP plumbing every HTTP front of the gateway
// shares: the one error table that turns core errors into an HTTP status
// and an ErrorBody (errors.go, also the codes of WebSocket and STOMP error
// frames) and the client address of a request (remote.go). It holds no
// state.
package httpx
