// Package wsconn is what the WebSocket fronts share: the upgrade and its
// origin check (ws.go), who a session runs as (basic auth, the tokens of
// POST /v1/tokens in token.go, or a first-frame login), the transport of
// one session with its bounded send queue and its reader and writer
// goroutines (ws_conn.go, session.go), the close codes, and the codes of
// error frames (errors.go).
//
// A State is owned by the gateway's Server (one per configuration, see
// gateway.Server.SetWSConfig); it holds the live sessions so that Shutdown
// can end them. The protocols themselves live in gateway/websocket (JSON
// at /v1/ws) and gateway/stomp (STOMP at /ws); neither imports the other.
package wsconn
