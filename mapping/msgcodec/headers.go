package msgcodec

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/warrenmq/warren/mapping"
)

// HeaderPrefix starts the HTTP header that carries one AMQP header
// (X-Amqp-Header-<name>).
const HeaderPrefix = "X-Amqp-Header-"

// SetHeaders writes the properties p in their HTTP form: content_type as
// Content-Type (application/octet-stream when absent), content_encoding as
// Content-Encoding, the other properties as X-Amqp-* and each AMQP header
// as X-Amqp-Header-<name>, strings as they are and other values as their
// JSON form (ValueToJSON). A header value that HTTP cannot carry (control
// characters) is left out. REST responses and the shovel's webhook
// requests use it, so a receiver sees the same headers from both.
func SetHeaders(h http.Header, p *mapping.Properties) {
	set := func(flag uint16, name, v string) {
		if p.Flags&flag != 0 {
			h.Set(name, v)
		}
	}
	if p.Flags&mapping.FlagContentType != 0 && p.ContentType != "" {
		h.Set("Content-Type", p.ContentType)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	set(mapping.FlagContentEncoding, "Content-Encoding", p.ContentEncoding)
	set(mapping.FlagCorrelationID, "X-Amqp-Correlation-Id", p.CorrelationID)
	set(mapping.FlagReplyTo, "X-Amqp-Reply-To", p.ReplyTo)
	set(mapping.FlagMessageID, "X-Amqp-Message-Id", p.MessageID)
	set(mapping.FlagType, "X-Amqp-Type", p.Type)
	set(mapping.FlagAppID, "X-Amqp-App-Id", p.AppID)
	set(mapping.FlagUserID, "X-Amqp-User-Id", p.UserID)
	set(mapping.FlagExpiration, "X-Amqp-Expiration", p.Expiration)
	set(mapping.FlagClusterID, "X-Amqp-Cluster-Id", p.ClusterID)
	set(mapping.FlagPriority, "X-Amqp-Priority", strconv.Itoa(int(p.Priority)))
	set(mapping.FlagDeliveryMode, "X-Amqp-Delivery-Mode", strconv.Itoa(int(p.DeliveryMode)))
	if p.Flags&mapping.FlagTimestamp != 0 {
		h.Set("X-Amqp-Timestamp", strconv.FormatInt(p.Timestamp.Unix(), 10))
	}
	for k, v := range p.Headers {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		default:
			b, err := json.Marshal(ValueToJSON(v))
			if err != nil {
				continue
			}
			s = string(b)
		}
		if headerValueOK(s) {
			h.Set(HeaderPrefix+k, s)
		}
	}
}

// headerValueOK: may s be sent as an HTTP header value (no control
// characters other than tab)?
func headerValueOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
