package shovel

import (
	"strings"
	"testing"
	"time"
)

// TestParse: RabbitMQ's keys and aliases, values as JSON or as strings
// (rabbitmqadmin), and an error naming the key for each bad value.
func TestParse(t *testing.T) {
	base := `"src-uri":"amqp://","src-queue":"a","dest-uri":"amqp://"`
	for _, tc := range []struct {
		value string
		err   string // "" = valid
		check func(d *Def) bool
	}{
		{`{` + base + `}`, "", func(d *Def) bool {
			return d.AckMode == AckOnConfirm && d.Prefetch == DefaultPrefetch && d.DeleteAfter == "never" && d.ReconnectDelay == DefaultReconnectDelay
		}},
		{`{` + base + `,"prefetch-count":"10","delete-after":"5","add-forward-headers":"true","reconnect-delay":"1.5"}`, "", func(d *Def) bool {
			return d.Prefetch == 10 && d.DeleteAfterN == 5 && d.ForwardHeaders && d.ReconnectDelay == 1500*time.Millisecond
		}},
		{`{"src-uri":["amqp://h1","amqp://h2"],"src-exchange":"x","src-exchange-key":"k","dest-uri":"amqp://","dest-exchange":"y","ack-mode":"no-ack"}`, "", func(d *Def) bool {
			return len(d.SrcURIs) == 2 && d.SrcExchange == "x" && d.SrcExchangeKey == "k" && d.DestExchange == "y" && d.AckMode == AckNoAck
		}},
		{`{"src-uri":"amqp://","src-queue":"a","dest-uri":"https://u:p@h/x","dest-http-signature-secret":"s"}`, "", func(d *Def) bool {
			return d.IsHTTP() && d.SignatureHeader == DefaultSignatureHeader && d.RetryDelay == DefaultRetryDelay
		}},
		{`{` + base + `,"src-delete-after":"queue-length"}`, "", func(d *Def) bool { return d.DeleteAfter == "queue-length" }},
		{`[]`, "JSON object", nil},
		{`{"src-queue":"a","dest-uri":"amqp://"}`, "src-uri: is required", nil},
		{`{` + base + `,"bogus":1}`, "unrecognised keys in the shovel value: bogus", nil},
		{`{"src-uri":"amqp://","dest-uri":"amqp://"}`, "src-queue: a source needs", nil},
		{`{"src-uri":"amqp://","src-queue":"a","src-exchange":"x","dest-uri":"amqp://"}`, "not both", nil},
		{`{` + base + `,"ack-mode":"sometimes"}`, "ack-mode: must be", nil},
		{`{` + base + `,"src-prefetch-count":0}`, "src-prefetch-count: must be an integer", nil},
		{`{` + base + `,"src-delete-after":"later"}`, "src-delete-after: must be an integer", nil},
		{`{` + base + `,"reconnect-delay":-1}`, "reconnect-delay", nil},
		{`{"src-uri":"http://h/","src-queue":"a","dest-uri":"amqp://"}`, "src-uri: a source must be", nil},
		{`{"src-uri":"ftp://h/","src-queue":"a","dest-uri":"amqp://"}`, "scheme must be", nil},
		{`{"src-uri":"amqp://","src-queue":"a","dest-uri":"http://h/","dest-queue":"q"}`, "neither dest-queue", nil},
		{`{` + base + `,"dest-http-timeout":1}`, "dest-http-timeout: only goes with", nil},
		{`{` + base + `,"src-consumer-args":{"x-priority":1}}`, "src-consumer-args: is not supported", nil},
		{`{"src-uri":"amqp://","src-exchange":"x","dest-uri":"amqp://","src-delete-after":"queue-length"}`, "queue-length needs src-queue", nil},
	} {
		d, err := Parse([]byte(tc.value))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.value, err, tc.err)
		case tc.check != nil && err == nil && !tc.check(d):
			t.Errorf("%s: parsed as %+v", tc.value, d)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:guest@h:5672/v": "amqp://guest:***@h:5672/v",
		"https://u:p%40ss@h/hook":     "https://u:***@h/hook",
		"amqp://":                     "amqp://",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	got := string(RedactValue([]byte(`{"dest-uri":["http://a:b@h/"],"dest-http-signature-secret":"k"}`)))
	if strings.Contains(got, ":b@") || strings.Contains(got, `"k"`) {
		t.Errorf("RedactValue shows a secret: %s", got)
	}
}

// FuzzParse: any input gives a definition or an error, never a panic, and
// an accepted definition has both ends.
func FuzzParse(f *testing.F) {
	f.Add(`{"src-uri":"amqp://","src-queue":"a","dest-uri":"amqp://","src-prefetch-count":"5"}`)
	f.Add(`{"src-uri":["amqp://x"],"src-exchange":"","dest-uri":"http://h/","dest-http-retry-delay":2}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse([]byte(s))
		if err == nil && (len(d.SrcURIs) == 0 || len(d.DestURIs) == 0 || d.Prefetch < 1) {
			t.Fatalf("accepted %q as %+v", s, d)
		}
	})
}
