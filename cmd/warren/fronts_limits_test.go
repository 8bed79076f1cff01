package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// nestedHeaders is a header table nested depth levels deep (the table
// itself is level 1, as the core counts).
func nestedHeaders(depth int) map[string]any {
	var v any = "leaf"
	for range depth - 1 {
		v = map[string]any{"n": v}
	}
	return map[string]any{"n": v}
}

// TestHeaderDepthLimitIsTheCores: every JSON front takes a header table
// exactly as deep as the core's limit (64) and refuses a deeper one with
// 400 naming the field, instead of accepting it and failing to store it.
func TestHeaderDepthLimitIsTheCores(t *testing.T) {
	inst := startWarren(t, "")
	_, ch := amqpDial(t, inst)
	declare(t, ch, "deep-q", true)
	a := instAddrs(inst)
	publish := func(front string, depth int) error {
		props := map[string]any{"headers": nestedHeaders(depth)}
		msg := map[string]any{"routing_key": "deep-q", "payload": "x", "properties": props}
		switch front {
		case "rest-batch":
			msg["exchange"] = "amq.default"
			body, _ := json.Marshal([]any{msg})
			return httpFrontPublish(a, http.MethodPost, "/v1/publish", body, func(h http.Header) { h.Set("Content-Type", "application/json") }, func(b []byte) error {
				var out struct {
					Results []struct {
						Status int
						Error  string
						Reason string
					}
				}
				json.Unmarshal(b, &out)
				if len(out.Results) == 1 && out.Results[0].Status != http.StatusOK {
					return &frontRefusal{status: out.Results[0].Status, text: out.Results[0].Reason}
				}
				return nil
			})
		case "mgmt":
			msg["payload_encoding"] = "string"
			body, _ := json.Marshal(msg)
			return httpFrontPublish(a, http.MethodPost, "/api/exchanges/%2F/amq.default/publish", body, func(h http.Header) { h.Set("Content-Type", "application/json") }, func([]byte) error { return nil })
		case "ws":
			msg["op"], msg["exchange"] = "publish", ""
			err := rtWS(a, msg, "ok", nil)
			if err != nil && strings.Contains(err.Error(), "error frame") {
				return &frontRefusal{status: http.StatusBadRequest, text: err.Error()}
			}
			return err
		}
		t.Fatalf("front %s", front)
		return nil
	}
	for _, f := range []string{"rest-batch", "mgmt", "ws"} {
		if err := publish(f, 64); err != nil {
			t.Errorf("%s: a header table 64 deep (the core's limit) refused: %v", f, err)
		}
		for _, depth := range []int{65, 512} {
			err := publish(f, depth)
			var r *frontRefusal
			if !errors.As(err, &r) || r.status != http.StatusBadRequest || !strings.Contains(r.text, "headers") {
				t.Errorf("%s: a header table %d deep: want 400 naming the headers, got %v", f, depth, err)
			}
		}
	}
	if n := queueDepth(t, amqpURL(inst), "deep-q"); n != 3 {
		t.Errorf("deep-q holds %d messages, want the 3 at the limit", n)
	}
}
