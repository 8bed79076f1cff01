package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The cross-front round trip: a message published on one front with every
// basic property (cluster_id aside: amqp091-go cannot set it) and a nested,
// typed header table is consumed on another, and the consumer sees the
// same properties, headers and body. STOMP headers and the REST single
// publish's X-Amqp-Header-* are flat strings, so pairs with them carry a
// flat string table; the other pairs carry strings, integers, doubles,
// booleans, nested tables, arrays, a byte array and a timestamp.

var (
	rtConsumeFronts = []string{"amqp", "rest", "ws", "stomp", "mgmt"}
	rtFlatPublish   = map[string]bool{"rest": true, "stomp": true}
	rtFlatConsume   = map[string]bool{"stomp": true}
)

// rtMessage is the message of one pair, in the JSON form of the shared
// codec (numbers as float64 after a JSON round trip).
type rtMessage struct {
	props   map[string]any
	headers map[string]any
	body    []byte
}

func rtWant(id string, flat bool) rtMessage {
	m := rtMessage{
		props: map[string]any{
			"content_type": "application/x-test", "content_encoding": "identity", "delivery_mode": 2,
			"priority": 5, "correlation_id": "corr-" + id, "reply_to": "replies-" + id, "expiration": "600000",
			"message_id": id, "timestamp": 1700000000, "type": "order.created", "user_id": "guest", "app_id": "roundtrip",
		},
		body: []byte{'b', 0, 1, 0xfe, 0xff, 'z'},
	}
	if flat {
		m.headers = map[string]any{"s": "text", "k2": "v 2"}
		m.body = []byte("flat body é " + id)
	} else {
		m.headers = map[string]any{
			"s": "text", "i": 42, "neg": -7, "f": 1.5, "b": true,
			"nested": map[string]any{"level2": map[string]any{"k": "v", "arr": []any{1, "two", map[string]any{"deep": true}}}},
			"bin":    map[string]any{"$bytes": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})},
			"ts":     map[string]any{"$timestamp": 1700000000},
		}
	}
	return m.canonical()
}

// canonical puts m through JSON so that numbers compare as float64.
func (m rtMessage) canonical() rtMessage {
	var out rtMessage
	b, _ := json.Marshal(m.props)
	json.Unmarshal(b, &out.props)
	b, _ = json.Marshal(m.headers)
	json.Unmarshal(b, &out.headers)
	out.body = m.body
	return out
}

// rtAMQPValue converts a JSON-form header value to what amqp091-go sends.
func rtAMQPValue(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
		return x
	case map[string]any:
		if s, ok := x["$bytes"].(string); ok && len(x) == 1 {
			b, _ := base64.StdEncoding.DecodeString(s)
			return b
		}
		if n, ok := x["$timestamp"].(float64); ok && len(x) == 1 {
			return time.Unix(int64(n), 0)
		}
		t := amqp.Table{}
		for k, e := range x {
			t[k] = rtAMQPValue(e)
		}
		return t
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rtAMQPValue(e)
		}
		return out
	}
	return v
}

// rtJSONValue converts what amqp091-go received to the JSON form.
func rtJSONValue(v any) any {
	switch x := v.(type) {
	case amqp.Table:
		m := map[string]any{}
		for k, e := range x {
			m[k] = rtJSONValue(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rtJSONValue(e)
		}
		return out
	case []byte:
		return map[string]any{"$bytes": base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return map[string]any{"$timestamp": x.Unix()}
	}
	return v
}

func rtStr(m map[string]any, k string) string  { s, _ := m[k].(string); return s }
func rtNum(m map[string]any, k string) float64 { f, _ := m[k].(float64); return f }

func rtPublish(t *testing.T, front string, a frontAddrs, queue string, m rtMessage) {
	t.Helper()
	p := m.props
	switch front {
	case "amqp":
		conn, err := amqp.Dial(a.amqpURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		ch.Confirm(false)
		h := rtAMQPValue(m.headers).(amqp.Table)
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{
			ContentType: rtStr(p, "content_type"), ContentEncoding: rtStr(p, "content_encoding"), Headers: h,
			DeliveryMode: uint8(rtNum(p, "delivery_mode")), Priority: uint8(rtNum(p, "priority")),
			CorrelationId: rtStr(p, "correlation_id"), ReplyTo: rtStr(p, "reply_to"), Expiration: rtStr(p, "expiration"),
			MessageId: rtStr(p, "message_id"), Timestamp: time.Unix(int64(rtNum(p, "timestamp")), 0), Type: rtStr(p, "type"),
			UserId: rtStr(p, "user_id"), AppId: rtStr(p, "app_id"), Body: m.body,
		})
		if err != nil || !dc.Wait() {
			t.Fatalf("AMQP publish: %v", err)
		}
	case "rest":
		hdr := func(h http.Header) {
			h.Set("Content-Type", rtStr(p, "content_type"))
			h.Set("Content-Encoding", rtStr(p, "content_encoding"))
			h.Set("X-Amqp-Delivery-Mode", fmt.Sprint(p["delivery_mode"]))
			h.Set("X-Amqp-Priority", fmt.Sprint(p["priority"]))
			h.Set("X-Amqp-Timestamp", strconv.FormatInt(int64(rtNum(p, "timestamp")), 10))
			for k, name := range map[string]string{"correlation_id": "Correlation-Id", "reply_to": "Reply-To", "expiration": "Expiration",
				"message_id": "Message-Id", "type": "Type", "user_id": "User-Id", "app_id": "App-Id"} {
				h.Set("X-Amqp-"+name, rtStr(p, k))
			}
			for k, v := range m.headers {
				h.Set("X-Amqp-Header-"+k, v.(string))
			}
		}
		if err := httpFrontPublish(a, http.MethodPost, "/v1/publish/amq.default/"+queue, m.body, hdr, func([]byte) error { return nil }); err != nil {
			t.Fatalf("REST publish: %v", err)
		}
	case "rest-batch", "ws", "mgmt":
		props := map[string]any{}
		for k, v := range p {
			props[k] = v
		}
		props["headers"] = m.headers
		msg := map[string]any{"routing_key": queue, "payload": base64.StdEncoding.EncodeToString(m.body), "payload_encoding": "base64", "properties": props}
		var err error
		switch front {
		case "rest-batch":
			msg["exchange"] = "amq.default"
			body, _ := json.Marshal([]any{msg})
			err = httpFrontPublish(a, http.MethodPost, "/v1/publish", body, func(h http.Header) { h.Set("Content-Type", "application/json") }, func(b []byte) error {
				if !strings.Contains(string(b), `"status":200`) {
					return fmt.Errorf("batch answered %s", b)
				}
				return nil
			})
		case "mgmt":
			body, _ := json.Marshal(msg)
			err = httpFrontPublish(a, http.MethodPost, "/api/exchanges/%2F/amq.default/publish", body, func(h http.Header) { h.Set("Content-Type", "application/json") }, func([]byte) error { return nil })
		case "ws":
			msg["op"], msg["exchange"] = "publish", ""
			err = rtWS(a, msg, "ok", nil)
		}
		if err != nil {
			t.Fatalf("%s publish: %v", front, err)
		}
	case "stomp":
		hs := []string{"destination", "/amq/queue/" + queue, "content-type", rtStr(p, "content_type"),
			"content-encoding", rtStr(p, "content_encoding"), "persistent", "true", "priority", fmt.Sprint(p["priority"]),
			"correlation-id", rtStr(p, "correlation_id"), "reply-to", rtStr(p, "reply_to"), "expiration", rtStr(p, "expiration"),
			"amqp-message-id", rtStr(p, "message_id"), "timestamp", strconv.FormatInt(int64(rtNum(p, "timestamp")), 10),
			"type", rtStr(p, "type"), "user-id", rtStr(p, "user_id"), "app-id", rtStr(p, "app_id"), "receipt", "rt"}
		for k, v := range m.headers {
			hs = append(hs, k, v.(string))
		}
		if cmd, _, _, err := rtSTOMP(a, "SEND", hs, m.body, "RECEIPT"); err != nil || cmd != "RECEIPT" {
			t.Fatalf("STOMP SEND: %s %v", cmd, err)
		}
	default:
		t.Fatalf("unknown front %s", front)
	}
}

// wsErrorFrame is an error frame a WS request was answered with.
type wsErrorFrame struct{ frame map[string]any }

func (e *wsErrorFrame) Error() string { return fmt.Sprintf("error frame %v", e.frame) }

// rtWS sends one request on a new /v1/ws session and returns the first
// frame with op want (an error frame fails).
func rtWS(a frontAddrs, req map[string]any, want string, got *map[string]any) error {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("guest:guest")))
	d := websocket.Dialer{Subprotocols: []string{"warren.v1"}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+a.httpAddr+"/v1/ws", h)
	if err != nil {
		return err
	}
	defer ws.Close()
	req["id"] = 1
	if err := ws.WriteJSON(req); err != nil {
		return err
	}
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			return err
		}
		if f["op"] == "error" {
			return &wsErrorFrame{f}
		}
		if f["op"] == want {
			if got != nil {
				*got = f
			}
			return nil
		}
	}
}

// rtSTOMP connects, sends one frame and returns the first frame with
// command want or ERROR.
func rtSTOMP(a frontAddrs, cmd string, headers []string, body []byte, want string) (string, map[string]string, []byte, error) {
	d := websocket.Dialer{Subprotocols: []string{"v12.stomp"}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+a.httpAddr+"/ws", nil)
	if err != nil {
		return "", nil, nil, err
	}
	defer ws.Close()
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`, ":", `\c`)
	var b bytes.Buffer
	b.WriteString("CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00")
	ws.WriteMessage(websocket.TextMessage, b.Bytes())
	b.Reset()
	b.WriteString(cmd + "\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(esc.Replace(headers[i]) + ":" + esc.Replace(headers[i+1]) + "\n")
	}
	b.WriteString("content-length:" + strconv.Itoa(len(body)) + "\n\n")
	b.Write(body)
	b.WriteByte(0)
	if err := ws.WriteMessage(websocket.TextMessage, b.Bytes()); err != nil {
		return "", nil, nil, err
	}
	unesc := strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\c`, ":", `\r`, "\r")
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			return "", nil, nil, err
		}
		s := strings.TrimLeft(string(data), "\r\n")
		if s == "" {
			continue
		}
		head, rest, _ := strings.Cut(s, "\n\n")
		lines := strings.Split(head, "\n")
		h := map[string]string{}
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(l, ":")
			if _, dup := h[k]; !dup {
				h[unesc.Replace(k)] = unesc.Replace(v)
			}
		}
		fb := []byte(rest)
		if n, err := strconv.Atoi(h["content-length"]); err == nil && n <= len(fb) {
			fb = fb[:n]
		} else {
			fb = bytes.TrimRight(fb, "\x00")
		}
		if lines[0] == want || lines[0] == "ERROR" {
			return lines[0], h, fb, nil
		}
	}
}

// rtJSONMessage reads the props/payload of a JSON front's message.
func rtJSONMessage(t *testing.T, props map[string]any, payload, encoding string) rtMessage {
	t.Helper()
	m := rtMessage{props: map[string]any{}}
	for k, v := range props {
		if k == "headers" {
			m.headers, _ = v.(map[string]any)
			continue
		}
		m.props[k] = v
	}
	if encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		m.body = b
	} else {
		m.body = []byte(payload)
	}
	return m.canonical()
}

func rtConsume(t *testing.T, front string, a frontAddrs, queue string) rtMessage {
	t.Helper()
	switch front {
	case "amqp":
		conn, err := amqp.Dial(a.amqpURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("AMQP get: %v %v", ok, err)
		}
		m := rtMessage{props: map[string]any{
			"content_type": d.ContentType, "content_encoding": d.ContentEncoding, "delivery_mode": d.DeliveryMode,
			"priority": d.Priority, "correlation_id": d.CorrelationId, "reply_to": d.ReplyTo, "expiration": d.Expiration,
			"message_id": d.MessageId, "timestamp": d.Timestamp.Unix(), "type": d.Type, "user_id": d.UserId, "app_id": d.AppId,
		}, body: d.Body}
		m.headers, _ = rtJSONValue(d.Headers).(map[string]any)
		return m.canonical()
	case "rest":
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.httpAddr+"/v1/queues/"+url.PathEscape(queue)+"/get?ack=auto", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			Messages []struct {
				Payload         string         `json:"payload"`
				PayloadEncoding string         `json:"payload_encoding"`
				Properties      map[string]any `json:"properties"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Messages) != 1 {
			t.Fatalf("REST get: %s", b)
		}
		g := out.Messages[0]
		return rtJSONMessage(t, g.Properties, g.Payload, g.PayloadEncoding)
	case "mgmt":
		body := []byte(`{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`)
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.httpAddr+"/api/queues/%2F/"+url.PathEscape(queue)+"/get", bytes.NewReader(body))
		req.SetBasicAuth("guest", "guest")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out []struct {
			Payload         string         `json:"payload"`
			PayloadEncoding string         `json:"payload_encoding"`
			Properties      map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out) != 1 {
			t.Fatalf("management get: %s", b)
		}
		return rtJSONMessage(t, out[0].Properties, out[0].Payload, out[0].PayloadEncoding)
	case "ws":
		var f map[string]any
		if err := rtWS(a, map[string]any{"op": "subscribe", "queue": queue}, "message", &f); err != nil {
			t.Fatalf("WS subscribe: %v", err)
		}
		props, _ := f["properties"].(map[string]any)
		return rtJSONMessage(t, props, rtStr(f, "payload"), rtStr(f, "payload_encoding"))
	case "stomp":
		cmd, h, body, err := rtSTOMP(a, "SUBSCRIBE", []string{"id", "rt", "destination", "/amq/queue/" + queue}, nil, "MESSAGE")
		if err != nil || cmd != "MESSAGE" {
			t.Fatalf("STOMP SUBSCRIBE: %s %v %v", cmd, h, err)
		}
		m := rtMessage{props: map[string]any{}, headers: map[string]any{}, body: body}
		names := map[string]string{"content-type": "content_type", "content-encoding": "content_encoding", "correlation-id": "correlation_id",
			"reply-to": "reply_to", "expiration": "expiration", "amqp-message-id": "message_id", "type": "type", "user-id": "user_id", "app-id": "app_id"}
		for k, v := range h {
			switch {
			case names[k] != "":
				m.props[names[k]] = strings.TrimPrefix(v, "/reply-queue/")
			case k == "persistent":
				if v == "true" {
					m.props["delivery_mode"] = 2
				}
			case k == "priority", k == "timestamp":
				n, _ := strconv.Atoi(v)
				m.props[k] = n
			case k == "destination", k == "message-id", k == "subscription", k == "ack", k == "redelivered", k == "content-length":
			default:
				m.headers[k] = v
			}
		}
		return m.canonical()
	}
	t.Fatalf("unknown front %s", front)
	return rtMessage{}
}

// TestCrossFrontRoundTrip publishes on every front and consumes on every
// front; each pair's consumer sees exactly the published properties,
// headers and body.
func TestCrossFrontRoundTrip(t *testing.T) {
	inst := startWarren(t, "")
	a := instAddrs(inst)
	_, ch := amqpDial(t, inst)
	for _, pub := range publishFronts {
		for _, sub := range rtConsumeFronts {
			name := pub + "-to-" + sub
			t.Run(name, func(t *testing.T) {
				queue := "rt-" + name
				declare(t, ch, queue, true)
				want := rtWant(name, rtFlatPublish[pub] || rtFlatConsume[sub])
				rtPublish(t, pub, a, queue, want)
				got := rtConsume(t, sub, a, queue)
				if !reflect.DeepEqual(got.props, want.props) {
					t.Errorf("properties\n got %v\nwant %v", got.props, want.props)
				}
				if !reflect.DeepEqual(got.headers, want.headers) {
					t.Errorf("headers\n got %v\nwant %v", got.headers, want.headers)
				}
				if !bytes.Equal(got.body, want.body) {
					t.Errorf("body %q, want %q", got.body, want.body)
				}
			})
		}
	}
}
