package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFrontsCancelledWhenQueueDeleted: a WebSocket subscription, an SSE
// stream and a STOMP subscription each end when their queue is deleted
// (by an AMQP client), and each says why, with the queue's name.
func TestFrontsCancelledWhenQueueDeleted(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	_, ch := amqpDial(t, inst)
	for _, q := range []string{"cx-ws", "cx-sse", "cx-stomp"} {
		declare(t, ch, q, true)
	}

	ws := wsConnect(t, inst)
	ws.call(map[string]any{"op": "subscribe", "queue": "cx-ws", "ack": "client", "subscription": "s"})
	sse := openSSE(t, newREST(t, inst), "/v1/events?queue=cx-sse", "")
	st := stompDial(t, inst, "")
	st.connect()
	st.send("SUBSCRIBE", "", "id", "sub-0", "destination", "/queue/cx-stomp", "receipt", "r1")
	st.expect("RECEIPT")

	for _, q := range []string{"cx-ws", "cx-sse", "cx-stomp"} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Fatalf("delete %s: %v", q, err)
		}
	}

	f := ws.expect("cancelled", nil)
	if f["subscription"] != "s" || f["reason"] != "queue 'cx-ws' in vhost '/' was deleted" {
		t.Errorf("WebSocket: %v", f)
	}
	for {
		ev := sse.next(t)
		if ev.event != "cancelled" {
			continue
		}
		var data map[string]string
		if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data["reason"] != "queue 'cx-sse' in vhost '/' was deleted" {
			t.Errorf("SSE: cancelled event %q (%v)", ev.data, err)
		}
		break
	}
	e := st.expect("ERROR")
	if e.headers["message"] != "Subscription cancelled" || !strings.Contains(e.body, "subscription 'sub-0' to queue 'cx-stomp' was cancelled: queue 'cx-stomp' in vhost '/' was deleted") {
		t.Errorf("STOMP: ERROR %v %q", e.headers, e.body)
	}
}
