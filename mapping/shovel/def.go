package shovel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Ack modes, as RabbitMQ names them.
const (
	AckOnConfirm = "on-confirm" // ack the source after the destination confirmed (default)
	AckOnPublish = "on-publish" // ack the source once the message was sent on
	AckNoAck     = "no-ack"     // consume without acknowledgements
)

// Def is a parsed shovel definition: the "value" of a shovel parameter.
type Def struct {
	SrcURIs         []string
	SrcQueue        string
	SrcExchange     string
	SrcExchangeKey  string
	DestURIs        []string
	DestQueue       string
	DestExchange    string
	DestExchangeKey string
	AckMode         string
	Prefetch        int
	// DeleteAfter: "never", "queue-length" or a message count.
	DeleteAfter    string
	DeleteAfterN   int
	ReconnectDelay time.Duration
	ForwardHeaders bool
	TimestampHdr   bool

	// HTTP destinations (Warren's own keys).
	HTTPTimeout     time.Duration
	RetryDelay      time.Duration
	RetryMaxDelay   time.Duration
	SignatureSecret string
	SignatureHeader string
}

// Defaults, as RabbitMQ documents them for dynamic shovels, and Warren's
// for webhooks.
const (
	DefaultPrefetch        = 1000
	DefaultReconnectDelay  = 5 * time.Second
	DefaultHTTPTimeout     = 30 * time.Second
	DefaultRetryDelay      = time.Second
	DefaultRetryMaxDelay   = 5 * time.Minute
	DefaultSignatureHeader = "X-Warren-Signature"
)

// keys lists every key a shovel value may hold, with the alias RabbitMQ
// still accepts from older releases.
var keys = map[string]string{
	"src-protocol": "", "src-uri": "", "src-queue": "", "src-exchange": "", "src-exchange-key": "",
	"src-prefetch-count": "", "prefetch-count": "src-prefetch-count",
	"src-delete-after": "", "delete-after": "src-delete-after",
	"src-consumer-args": "", "src-queue-args": "",
	"dest-protocol": "", "dest-uri": "", "dest-queue": "", "dest-exchange": "", "dest-exchange-key": "",
	"dest-add-forward-headers": "", "add-forward-headers": "dest-add-forward-headers",
	"dest-add-timestamp-header": "", "add-timestamp-header": "dest-add-timestamp-header",
	"dest-publish-properties": "", "publish-properties": "dest-publish-properties",
	"dest-queue-args": "",
	"ack-mode":        "", "reconnect-delay": "",
	"dest-http-timeout": "", "dest-http-retry-delay": "", "dest-http-retry-max-delay": "",
	"dest-http-signature-secret": "", "dest-http-signature-header": "",
}

// Parse validates a shovel value in RabbitMQ's format. rabbitmqadmin and
// the web UI send numbers and booleans either as JSON values or as
// strings; both are accepted. Errors name the key that is wrong.
func Parse(raw []byte) (*Def, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil, fmt.Errorf("the shovel value must be a JSON object")
	}
	in := map[string]any{}
	var unknown []string
	for k, x := range v {
		canon, ok := keys[k]
		if !ok {
			unknown = append(unknown, k)
			continue
		}
		if canon == "" {
			canon = k
		}
		in[canon] = x
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unrecognised keys in the shovel value: %s", strings.Join(unknown, ", "))
	}
	p := parser{in: in}
	d := &Def{}
	for _, k := range []string{"src-protocol", "dest-protocol"} {
		if s := p.str(k); s != "" && s != "amqp091" {
			p.fail(k, "only amqp091 is supported, got '%s'", s)
		}
	}
	for _, k := range []string{"src-consumer-args", "src-queue-args", "dest-queue-args", "dest-publish-properties"} {
		if x, ok := in[k]; ok {
			if m, isMap := x.(map[string]any); !isMap || len(m) > 0 {
				p.fail(k, "is not supported by Warren (only an empty object is accepted)")
			}
		}
	}
	d.SrcURIs = p.uris("src-uri")
	d.DestURIs = p.uris("dest-uri")
	d.SrcQueue, d.SrcExchange = p.str("src-queue"), p.str("src-exchange")
	d.SrcExchangeKey = p.str("src-exchange-key")
	d.DestQueue, d.DestExchange = p.str("dest-queue"), p.str("dest-exchange")
	d.DestExchangeKey = p.str("dest-exchange-key")
	_, hasSrcQ := in["src-queue"]
	_, hasSrcX := in["src-exchange"]
	switch {
	case hasSrcQ && hasSrcX:
		p.fail("src-queue", "give src-queue or src-exchange, not both")
	case !hasSrcQ && !hasSrcX:
		p.fail("src-queue", "a source needs src-queue or src-exchange")
	case hasSrcQ && d.SrcQueue == "":
		p.fail("src-queue", "must not be empty")
	}
	if _, ok := in["src-exchange-key"]; ok && !hasSrcX {
		p.fail("src-exchange-key", "only goes with src-exchange")
	}
	_, hasDstQ := in["dest-queue"]
	_, hasDstX := in["dest-exchange"]
	if hasDstQ && hasDstX {
		p.fail("dest-queue", "give dest-queue or dest-exchange, not both")
	}
	if _, ok := in["dest-exchange-key"]; ok && !hasDstX {
		p.fail("dest-exchange-key", "only goes with dest-exchange")
	}
	d.AckMode = AckOnConfirm
	if s := p.str("ack-mode"); s != "" {
		switch s {
		case AckOnConfirm, AckOnPublish, AckNoAck:
			d.AckMode = s
		default:
			p.fail("ack-mode", "must be on-confirm, on-publish or no-ack, got '%s'", s)
		}
	}
	d.Prefetch = DefaultPrefetch
	if _, ok := in["src-prefetch-count"]; ok {
		d.Prefetch = p.int("src-prefetch-count", 1, 65535)
	}
	d.DeleteAfter = "never"
	if x, ok := in["src-delete-after"]; ok {
		if s, isStr := x.(string); isStr && (s == "never" || s == "queue-length") {
			d.DeleteAfter = s
		} else {
			d.DeleteAfterN = p.int("src-delete-after", 1, 1<<31-1)
			d.DeleteAfter = strconv.Itoa(d.DeleteAfterN)
		}
		if d.DeleteAfter == "queue-length" && !hasSrcQ {
			p.fail("src-delete-after", "queue-length needs src-queue")
		}
	}
	d.ReconnectDelay = p.seconds("reconnect-delay", DefaultReconnectDelay)
	d.ForwardHeaders = p.bool("dest-add-forward-headers")
	d.TimestampHdr = p.bool("dest-add-timestamp-header")
	d.HTTPTimeout = p.seconds("dest-http-timeout", DefaultHTTPTimeout)
	d.RetryDelay = p.seconds("dest-http-retry-delay", DefaultRetryDelay)
	d.RetryMaxDelay = p.seconds("dest-http-retry-max-delay", DefaultRetryMaxDelay)
	d.SignatureSecret = p.str("dest-http-signature-secret")
	d.SignatureHeader = DefaultSignatureHeader
	if s := p.str("dest-http-signature-header"); s != "" {
		d.SignatureHeader = s
	}
	if d.IsHTTP() {
		if len(d.DestURIs) > 1 {
			p.fail("dest-uri", "an HTTP destination takes one URI")
		}
		if hasDstQ || hasDstX {
			p.fail("dest-uri", "an HTTP destination takes neither dest-queue nor dest-exchange")
		}
		if d.HTTPTimeout <= 0 {
			p.fail("dest-http-timeout", "must be more than 0")
		}
		if d.RetryMaxDelay < d.RetryDelay {
			p.fail("dest-http-retry-max-delay", "must not be less than dest-http-retry-delay")
		}
	} else {
		for _, k := range []string{"dest-http-timeout", "dest-http-retry-delay", "dest-http-retry-max-delay", "dest-http-signature-secret", "dest-http-signature-header"} {
			if _, ok := in[k]; ok {
				p.fail(k, "only goes with an http:// or https:// dest-uri")
			}
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return d, nil
}

// IsHTTP reports whether the destination is a webhook.
func (d *Def) IsHTTP() bool {
	return len(d.DestURIs) > 0 && (strings.HasPrefix(d.DestURIs[0], "http://") || strings.HasPrefix(d.DestURIs[0], "https://"))
}

type parser struct {
	in  map[string]any
	err error
}

func (p *parser) fail(key, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
	}
}

func (p *parser) str(key string) string {
	x, ok := p.in[key]
	if !ok {
		return ""
	}
	s, isStr := x.(string)
	if !isStr {
		p.fail(key, "must be a string")
	}
	return s
}

func (p *parser) int(key string, lo, hi int) int {
	var n int64
	var err error
	switch x := p.in[key].(type) {
	case json.Number:
		n, err = x.Int64()
	case string:
		n, err = strconv.ParseInt(x, 10, 64)
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil || n < int64(lo) || n > int64(hi) {
		p.fail(key, "must be an integer from %d to %d", lo, hi)
		return lo
	}
	return int(n)
}

func (p *parser) seconds(key string, def time.Duration) time.Duration {
	x, ok := p.in[key]
	if !ok {
		return def
	}
	var f float64
	var err error
	switch x := x.(type) {
	case json.Number:
		f, err = x.Float64()
	case string:
		f, err = strconv.ParseFloat(x, 64)
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil || f < 0 || f > 86400 {
		p.fail(key, "must be a number of seconds from 0 to 86400")
		return def
	}
	return time.Duration(f * float64(time.Second))
}

func (p *parser) bool(key string) bool {
	switch x := p.in[key].(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b
		}
	}
	p.fail(key, "must be true or false")
	return false
}

// uris takes a URI or a list of URIs (tried in turn on each connect).
func (p *parser) uris(key string) []string {
	var out []string
	switch x := p.in[key].(type) {
	case nil:
		p.fail(key, "is required")
		return nil
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				p.fail(key, "must be a string or a list of strings")
				return nil
			}
			out = append(out, s)
		}
	default:
		p.fail(key, "must be a string or a list of strings")
		return nil
	}
	if len(out) == 0 {
		p.fail(key, "needs at least one URI")
	}
	for _, s := range out {
		u, err := url.Parse(s)
		if err != nil {
			p.fail(key, "'%s' is not a URI: %v", Redact(s), err)
			continue
		}
		switch u.Scheme {
		case "amqp", "amqps":
		case "http", "https":
			if key == "src-uri" {
				p.fail(key, "a source must be an amqp:// or amqps:// URI")
			} else if u.Host == "" {
				p.fail(key, "'%s' has no host", Redact(s))
			}
		default:
			p.fail(key, "'%s': the scheme must be amqp, amqps, http or https", Redact(s))
		}
	}
	return out
}

// Redact hides the password of a URI, as the API shows it.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return strings.Replace(u.String(), "%2A%2A%2A", "***", 1)
}
