// Package gateway is Warren's HTTP front: an echo server on the HTTP port
// that serves health checks now and, on the same routing core, the REST,
// WebSocket, SSE and management APIs. It only translates between HTTP and
// package mapping; it holds no broker state of its own.
//
// Every front publishes through mapping.Channel.Publish and answers its
// refusals from one table (errorStatus in errors.go); messages, properties
// and field tables in JSON go through the shared codec in
// internal/msgcodec.
package gateway
