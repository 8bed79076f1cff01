package mapping

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMessageRecord: a message goes through its store record unchanged,
// with the version the PublishID calls for; truncated records are errors,
// never panics.
func TestMessageRecord(t *testing.T) {
	ts := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixNano()
	cases := []struct {
		name    string
		m       *Message
		version byte
		wantID  string
	}{
		{"plain", &Message{Exchange: "amq.topic", RoutingKey: "a.b", Body: []byte("hello")}, recordV2, ""},
		{"properties", &Message{RoutingKey: "q", Body: []byte{0, 1, 2}, Properties: Properties{ContentType: "text/plain", DeliveryMode: 2, Flags: FlagContentType | FlagDeliveryMode}}, recordV2, ""},
		{"publish id", &Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), PublishID: "guest\x00order-17"}, recordV3, "guest\x00order-17"},
		{"id too long is left out", &Message{RoutingKey: "k", Body: []byte("b"), PublishID: strings.Repeat("i", 256)}, recordV2, ""},
		{"empty body", &Message{RoutingKey: "k", PublishID: "u\x00k"}, recordV3, "u\x00k"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			m.ts = ts
			body := bytes.Clone(m.Body)
			rec := bytes.Clone(m.record())
			if rec[0] != tc.version {
				t.Fatalf("version %d, want %d", rec[0], tc.version)
			}
			got, err := decodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got.Exchange != m.Exchange || got.RoutingKey != m.RoutingKey || got.PublishID != tc.wantID ||
				got.ts != ts || !bytes.Equal(got.Body, body) || got.Properties.ContentType != m.Properties.ContentType ||
				got.Properties.DeliveryMode != m.Properties.DeliveryMode {
				t.Fatalf("decoded %q %q id %q ts %d body %q props %+v, want %q %q id %q ts %d body %q props %+v",
					got.Exchange, got.RoutingKey, got.PublishID, got.ts, got.Body, got.Properties,
					m.Exchange, m.RoutingKey, tc.wantID, ts, body, m.Properties)
			}
			for n := range len(rec) - len(body) {
				if _, err := decodeRecord(rec[:n]); err == nil && n < len(rec)-len(body) {
					t.Fatalf("record cut to %d of %d bytes decoded without error", n, len(rec))
				}
			}
		})
	}
	if _, err := decodeRecord([]byte{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Fatal("unknown version decoded")
	}
}
