// Package mgmt is the gateway's management front: RabbitMQ's management
// HTTP API at /api/ (mgmt_*.go; mgmt_routes.go lists every route and its
// authorisation), the management web UI at / and /assets/ (ui.go, the
// embedded ui/ folder), the dynamic shovels' API (mgmt_shovels.go) and
// Prometheus metrics at /metrics with the request metrics of every HTTP
// route (metrics.go).
//
// Its Server is owned by the gateway's Server, which gives it the echo
// server, the core and the authentication to use; its state (rate
// sampler, metrics) lives in that Server. It translates between the
// management API's JSON and package mapping; it imports no other front.
package mgmt
