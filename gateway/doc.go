// Package gateway is Warren's HTTP front: an echo server on the HTTP port
// that serves health checks now and, on the same routing core, the REST,
// WebSocket, SSE and management APIs. It only translates between HTTP and
// package mapping; it holds no broker state of its own.
package gateway
