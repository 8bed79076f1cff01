// Package websocket is the gateway's WebSocket JSON front: Warren's JSON
// protocol (subprotocol warren.v1) at GET /v1/ws, documented in
// docs/websocket.md and openapi/ws.json. ws_session.go holds a session
// (auth, publish with confirms and flow, subscribe, settle, RPC, bind),
// ws_protocol.go the frames and their encoding.
//
// Its Server is owned by the gateway's Server, which registers its route
// (Routes) and gives it the shared WebSocket state (gateway/internal/wsconn:
// upgrade, login, tokens, the session transport). It translates between
// JSON frames and package mapping; it imports no other front.
package websocket
