package websocket

// Warren's JSON protocol over WebSocket (subprotocol warren.v1), documented
// in docs/websocket.md and openapi/ws.json. Every frame is one JSON object
// with an "op". Requests carry an optional "id" (number or string) that
// the answer (ok, error, reply) repeats.
//
// Error codes mirror HTTP statuses and so the AMQP reply codes (DESIGN.md):
// 400 bad request, 401 not authenticated, 403 access refused (AMQP 403/530),
// 404 not found, 409 precondition failed (AMQP 406), 423 resource locked
// (AMQP 405), 429 too many requests, 500 internal, 501 not implemented,
// 503 unavailable (AMQP 506), 504 RPC timeout.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sync/atomic"
	"unicode/utf8"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// wsRequest is every client frame; each op reads the fields it needs.
type wsRequest struct {
	Op string          `json:"op"`
	ID json.RawMessage `json:"id,omitempty"`

	// auth
	Token    string `json:"token,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	VHost    string `json:"vhost,omitempty"`

	// publish, rpc
	Exchange        string          `json:"exchange"`
	RoutingKey      string          `json:"routing_key"`
	Properties      *msgcodec.Props `json:"properties,omitempty"`
	Payload         string          `json:"payload"`
	PayloadEncoding string          `json:"payload_encoding,omitempty"`
	TimeoutMS       int64           `json:"timeout_ms,omitempty"`

	// subscribe, unsubscribe, ack, nack, reject
	Subscription string `json:"subscription,omitempty"`
	Queue        string `json:"queue,omitempty"`
	BindingKey   string `json:"binding_key,omitempty"`
	Prefetch     *int   `json:"prefetch,omitempty"`
	Ack          string `json:"ack,omitempty"` // "auto" (default) or "client"
	DeliveryTag  uint64 `json:"delivery_tag,omitempty"`
	Multiple     bool   `json:"multiple,omitempty"`
	Requeue      *bool  `json:"requeue,omitempty"`

	// declare_queue, declare_exchange, bind, unbind, delete_*
	Type                string         `json:"type,omitempty"`
	Durable             bool           `json:"durable,omitempty"`
	Exclusive           bool           `json:"exclusive,omitempty"`
	AutoDelete          bool           `json:"auto_delete,omitempty"`
	Internal            bool           `json:"internal,omitempty"`
	Passive             bool           `json:"passive,omitempty"`
	Arguments           map[string]any `json:"arguments,omitempty"`
	DestinationExchange string         `json:"destination_exchange,omitempty"`
	IfUnused            bool           `json:"if_unused,omitempty"`
	IfEmpty             bool           `json:"if_empty,omitempty"`
}

// frame encodes a server frame built from fields in the order given.
func wsFrame(op string, id json.RawMessage, kv ...any) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"op":`...)
	b = wsconn.AppendString(b, op)
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, ',')
		b = wsconn.AppendString(b, kv[i].(string))
		b = append(b, ':')
		b = wsconn.AppendValue(b, kv[i+1])
	}
	return append(b, '}')
}

func wsErrorFrame(id json.RawMessage, err error) []byte {
	code, name, msg := wsconn.ErrorCode(err)
	return wsFrame("error", id, "code", code, "error", name, "message", msg)
}

// wsAppendPayload writes "payload" and "payload_encoding": the body as a
// string when it is UTF-8, else base64.
func wsAppendPayload(b, body []byte) []byte {
	b = append(b, `"payload":`...)
	if utf8.Valid(body) {
		b = wsconn.AppendString(b, string(body))
		return append(b, `,"payload_encoding":"string"`...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, body)
	return append(b, `","payload_encoding":"base64"`...)
}

// wsAppendMessage writes the fields every message-bearing frame has.
func wsAppendMessage(b []byte, m *mapping.Message) []byte {
	b = append(b, `,"exchange":`...)
	b = wsconn.AppendString(b, m.Exchange)
	b = append(b, `,"routing_key":`...)
	b = wsconn.AppendString(b, m.RoutingKey)
	if p := msgcodec.PropsToJSON(&m.Properties); !p.IsZero() {
		if j, err := json.Marshal(p); err == nil {
			b = append(b, `,"properties":`...)
			b = append(b, j...)
		}
	}
	b = append(b, ',')
	return wsAppendPayload(b, m.Body)
}

// wsFanout remembers how the last message was encoded, so that a message
// fanned out to thousands of subscriptions (one server-named queue per
// browser) is encoded once instead of once per subscriber. Holding the
// pointer keeps the message alive, so a different message can never show
// up under the same address; messages are not changed after routing
// (dead-lettering makes a new one).
type wsFanout struct {
	m    *mapping.Message
	tail []byte
}

var wsLastFanout atomic.Pointer[wsFanout]

// wsFanoutMaxBody bounds the bodies whose encoding is kept.
const wsFanoutMaxBody = 64 << 10

// wsAppendMessageShared is wsAppendMessage through the one-entry cache.
func wsAppendMessageShared(b []byte, m *mapping.Message) []byte {
	if f := wsLastFanout.Load(); f != nil && f.m == m {
		return append(b, f.tail...)
	}
	start := len(b)
	b = wsAppendMessage(b, m)
	if len(m.Body) <= wsFanoutMaxBody {
		wsLastFanout.Store(&wsFanout{m: m, tail: bytes.Clone(b[start:])})
	}
	return b
}
