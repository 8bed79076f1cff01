package main

// One publish per front, as a client of that front sees it: AMQP
// (amqp091-go, confirm mode), REST single and batch, the WebSocket JSON
// protocol, STOMP over WebSocket and the management API. The tests of the
// core publish path (persistence across SIGKILL, alarms, overflow) run the
// same message through every front and compare what the fronts answer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// publishFronts are the fronts a client can publish through.
var publishFronts = []string{"amqp", "rest", "rest-batch", "ws", "stomp", "mgmt"}

// frontAddrs are where a Warren listens.
type frontAddrs struct {
	amqpURL  string // amqp://guest:guest@host:port/
	httpAddr string // host:port
}

func instAddrs(inst *instance) frontAddrs {
	return frontAddrs{amqpURL: amqpURL(inst), httpAddr: inst.HTTPAddr()}
}

// frontMsg is the message each front publishes: persistent, with a
// message id, content type, correlation id and one string header.
type frontMsg struct {
	queue string // the default exchange routes to it
	id    string // message_id; also the body
	front string // header "front"
}

// frontRefusal is how a front refused a publish: what its client saw.
type frontRefusal struct {
	status int    // HTTP status, WS error code, AMQP reply code (0: none)
	text   string // the reason as the client got it
	header http.Header
}

func (r *frontRefusal) Error() string { return fmt.Sprintf("%d %s", r.status, r.text) }

// frontPublish publishes m through front and waits for the front's answer
// that the message is stored. It returns a *frontRefusal when the front
// refused it, another error when the exchange itself failed.
func frontPublish(t testing.TB, front string, a frontAddrs, m frontMsg) error {
	t.Helper()
	switch front {
	case "amqp":
		return amqpFrontPublish(a, m)
	case "rest":
		return httpFrontPublish(a, http.MethodPost, "/v1/publish/amq.default/"+url.PathEscape(m.queue), []byte(m.id), func(h http.Header) {
			h.Set("Content-Type", "text/plain")
			h.Set("X-Amqp-Delivery-Mode", "2")
			h.Set("X-Amqp-Message-Id", m.id)
			h.Set("X-Amqp-Correlation-Id", "corr-"+m.id)
			h.Set("X-Amqp-Header-Front", m.front)
		}, func(b []byte) error {
			if string(b) != `{"routed":true}` {
				return fmt.Errorf("REST publish answered %s", b)
			}
			return nil
		})
	case "rest-batch":
		body, _ := json.Marshal([]map[string]any{{
			"exchange": "amq.default", "routing_key": m.queue, "payload": m.id,
			"properties": frontJSONProps(m),
		}})
		return httpFrontPublish(a, http.MethodPost, "/v1/publish", body, func(h http.Header) {
			h.Set("Content-Type", "application/json")
		}, func(b []byte) error {
			var out struct {
				Results []struct {
					Routed bool   `json:"routed"`
					Status int    `json:"status"`
					Error  string `json:"error"`
					Reason string `json:"reason"`
				} `json:"results"`
			}
			if err := json.Unmarshal(b, &out); err != nil || len(out.Results) != 1 {
				return fmt.Errorf("batch publish answered %s", b)
			}
			r := out.Results[0]
			if r.Status != http.StatusOK {
				return &frontRefusal{status: r.Status, text: r.Error + ": " + r.Reason}
			}
			if !r.Routed {
				return fmt.Errorf("batch publish answered %s", b)
			}
			return nil
		})
	case "mgmt":
		body, _ := json.Marshal(map[string]any{
			"routing_key": m.queue, "payload": m.id, "payload_encoding": "string",
			"properties": frontJSONProps(m),
		})
		return httpFrontPublish(a, http.MethodPost, "/api/exchanges/%2F/amq.default/publish", body, func(h http.Header) {
			h.Set("Content-Type", "application/json")
		}, func(b []byte) error {
			if !strings.Contains(string(b), `"routed":true`) {
				return fmt.Errorf("management publish answered %s", b)
			}
			return nil
		})
	case "ws":
		return wsFrontPublish(a, m)
	case "stomp":
		return stompFrontPublish(a, m)
	}
	t.Fatalf("unknown front %q", front)
	return nil
}

func frontJSONProps(m frontMsg) map[string]any {
	return map[string]any{
		"delivery_mode": 2, "message_id": m.id, "content_type": "text/plain",
		"correlation_id": "corr-" + m.id, "headers": map[string]any{"front": m.front},
	}
}

func amqpFrontPublish(a frontAddrs, m frontMsg) error {
	conn, err := amqp.Dial(a.amqpURL)
	if err != nil {
		return err
	}
	// A blocked server does not read, so it never answers
	// connection.close: give up on the handshake after a while.
	defer conn.CloseDeadline(time.Now().Add(2 * time.Second))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", m.queue, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, MessageId: m.id, ContentType: "text/plain",
		CorrelationId: "corr-" + m.id, Headers: amqp.Table{"front": m.front}, Body: []byte(m.id),
	})
	if err != nil {
		return err
	}
	// Under a resource alarm the server stops reading and says
	// connection.blocked instead of confirming.
	select {
	case <-dc.Done():
		if !dc.Acked() {
			return &frontRefusal{text: "basic.nack"}
		}
		return nil
	case b := <-blocked:
		if b.Active {
			return &frontRefusal{text: "connection.blocked: " + b.Reason}
		}
		return fmt.Errorf("connection.unblocked before the confirm")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func httpFrontPublish(a frontAddrs, method, path string, body []byte, hdr func(http.Header), ok func([]byte) error) error {
	req, err := http.NewRequest(method, "http://"+a.httpAddr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth("guest", "guest")
	hdr(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &frontRefusal{status: resp.StatusCode, text: string(b), header: resp.Header}
	}
	return ok(b)
}

func wsFrontPublish(a frontAddrs, m frontMsg) error {
	var ok map[string]any
	err := rtWS(a, map[string]any{"op": "publish", "exchange": "", "routing_key": m.queue, "payload": m.id, "properties": frontJSONProps(m)}, "ok", &ok)
	var ef *wsErrorFrame
	if errors.As(err, &ef) {
		code, _ := ef.frame["code"].(float64)
		return &frontRefusal{status: int(code), text: fmt.Sprint(ef.frame["error"], ": ", ef.frame["message"])}
	}
	if err != nil {
		return err
	}
	if ok["routed"] != true {
		return fmt.Errorf("WS publish answered %v", ok)
	}
	return nil
}

func stompFrontPublish(a frontAddrs, m frontMsg) error {
	cmd, h, _, err := rtSTOMP(a, "SEND", []string{"destination", "/amq/queue/" + m.queue, "persistent", "true", "content-type", "text/plain",
		"message-id", m.id, "correlation-id", "corr-" + m.id, "front", m.front, "receipt", "r1"}, []byte(m.id), "RECEIPT")
	switch {
	case err != nil:
		return err
	case cmd == "ERROR":
		return &frontRefusal{text: h["message"]}
	case h["receipt-id"] != "r1":
		return fmt.Errorf("RECEIPT for %q", h["receipt-id"])
	}
	return nil
}
