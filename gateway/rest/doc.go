// Package rest is the gateway's REST front: the /v1/ data plane. Publish
// single and batch with properties (rest_publish.go, rest_props.go),
// leased consume with ack tokens and long-poll (rest_get.go, lease.go),
// Server-Sent Events (sse.go), curl RPC (rpc.go) and the routing dry run
// (rest_route.go); rest_routes.go registers the routes and holds the
// per-(user, vhost) hidden connections.
//
// Its Server is owned by the gateway's Server, which gives it the echo
// server, the core and authentication, and calls Shutdown before the HTTP
// server stops. Request validation against openapi/ runs in the gateway's
// middleware before these handlers. It imports no other front.
package rest
