// Package auth checks the HTTP basic credentials of requests against
// Warren's users for every HTTP front of a gateway server (REST, the
// management API, POST /v1/tokens and WebSocket upgrades), remembering
// verified credentials so that a client pays for the password hash once
// (authCache). A Checker is owned by the gateway's Server.
package auth
