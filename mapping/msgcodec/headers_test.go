package msgcodec

import (
	"net/http"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestSetHeaders: each present property becomes its header, absent ones
// none; header values that are not strings are JSON; values with control
// characters are left out rather than sent broken.
func TestSetHeaders(t *testing.T) {
	p := mapping.Properties{
		Flags: mapping.FlagContentType | mapping.FlagMessageID | mapping.FlagDeliveryMode | mapping.FlagTimestamp |
			mapping.FlagPriority | mapping.FlagHeaders,
		ContentType: "application/json", MessageID: "m1", DeliveryMode: 2, Priority: 0, Timestamp: time.Unix(1700000000, 0),
		CorrelationID: "not flagged",
		Headers:       mapping.Table{"s": "x", "n": int32(7), "bin": []byte("raw"), "nested": mapping.Table{"d": mapping.Decimal{Scale: 1, Value: 15}}, "bad": "a\nb"},
	}
	h := http.Header{}
	SetHeaders(h, &p)
	for name, want := range map[string]string{
		"Content-Type": "application/json", "X-Amqp-Message-Id": "m1", "X-Amqp-Delivery-Mode": "2",
		"X-Amqp-Priority": "0", "X-Amqp-Timestamp": "1700000000", "X-Amqp-Correlation-Id": "",
		"X-Amqp-Header-S": "x", "X-Amqp-Header-N": "7", "X-Amqp-Header-Bin": "raw",
		"X-Amqp-Header-Nested": `{"d":1.5}`, "X-Amqp-Header-Bad": "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	h = http.Header{}
	SetHeaders(h, &mapping.Properties{})
	if len(h) != 1 || h.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("no properties: %v", h)
	}
}
