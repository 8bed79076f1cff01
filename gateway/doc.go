// Package gateway is Warren's HTTP front: one echo server on the HTTP port
// on top of the routing core (package mapping). It only translates
// between HTTP and the core; it holds no broker state of its own.
//
// This package is the composition root: New builds the Server, which owns
// one Server per front and the state they share, and registers their
// routes (server.go routes):
//
//	/healthz                       gateway (server.go)
//	/v1/publish, /v1/queues/.../get, /v1/ack, /v1/nack, /v1/extend,
//	/v1/events, /v1/rpc, /v1/replies, /v1/route
//	                               gateway/rest       the REST data plane
//	/v1/ws                         gateway/websocket  Warren's JSON protocol
//	/ws                            gateway/stomp      STOMP 1.0-1.2 (Web-STOMP)
//	/ws/amqp                       gateway/amqpws     AMQP 0-9-1 over WebSocket
//	/v1/tokens                     gateway/internal/wsconn (websockets.go)
//	/api/..., /metrics, /, /assets gateway/mgmt       management API, UI, metrics
//	/openapi.json, /asyncapi.json, /docs, /examples
//	                               gateway/internal/docs
//
// Shared mechanics live under gateway/internal: httpx (the one error table
// and ErrorBody, the client address, publish-and-wait), auth (HTTP basic
// auth with its cache; one Checker per Server), wsconn (the WebSocket
// upgrade, login, tokens and session transport shared by the WebSocket
// fronts; its State is owned by the Server and replaced by SetWSConfig)
// docs, and validate (the middleware that checks every documented request
// against the OpenAPI document, run after routing). The message codec is
// mapping/msgcodec. Every front publishes through mapping.Channel.Publish
// and answers its refusals from httpx's one table. No front imports another; every
// front's state lives in its Server, owned by this package's Server.
package gateway
