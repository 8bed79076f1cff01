package gateway

// Message properties in HTTP form: X-Amqp-* request and response headers,
// and the JSON object of the batch publish and get bodies.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/gateway/internal/msgcodec"
	"github.com/warrenmq/warren/mapping"
)

const restHeaderPrefix = "X-Amqp-Header-"

// propsFromHeaders builds message properties from a request's headers.
// defaultMode is the delivery mode when X-Amqp-Delivery-Mode is absent
// (0: leave it absent).
func propsFromHeaders(h http.Header, defaultMode uint8) (mapping.Properties, error) {
	var p mapping.Properties
	str := func(name string, flag uint16, dst *string) {
		if v := h.Get(name); v != "" {
			*dst = v
			p.Flags |= flag
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		p.ContentType, p.Flags = ct, p.Flags|mapping.FlagContentType
	}
	str("Content-Encoding", mapping.FlagContentEncoding, &p.ContentEncoding)
	str("X-Amqp-Correlation-Id", mapping.FlagCorrelationID, &p.CorrelationID)
	str("X-Amqp-Reply-To", mapping.FlagReplyTo, &p.ReplyTo)
	str("X-Amqp-Message-Id", mapping.FlagMessageID, &p.MessageID)
	str("X-Amqp-Type", mapping.FlagType, &p.Type)
	str("X-Amqp-App-Id", mapping.FlagAppID, &p.AppID)
	str("X-Amqp-User-Id", mapping.FlagUserID, &p.UserID)
	str("X-Amqp-Expiration", mapping.FlagExpiration, &p.Expiration)
	if v := h.Get("X-Amqp-Priority"); v != "" {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return p, apiError(http.StatusBadRequest, fmt.Sprintf("X-Amqp-Priority must be an integer 0..255, got '%s'", v))
		}
		p.Priority, p.Flags = uint8(n), p.Flags|mapping.FlagPriority
	}
	if v := h.Get("X-Amqp-Timestamp"); v != "" {
		ts, err := restTimestamp(v)
		if err != nil {
			return p, apiError(http.StatusBadRequest, "X-Amqp-Timestamp: "+err.Error())
		}
		p.Timestamp, p.Flags = ts, p.Flags|mapping.FlagTimestamp
	}
	mode := defaultMode
	if v := h.Get("X-Amqp-Delivery-Mode"); v != "" {
		m, err := parseDeliveryMode(v)
		if err != nil {
			return p, err
		}
		mode = m
	}
	if mode != 0 {
		p.DeliveryMode, p.Flags = mode, p.Flags|mapping.FlagDeliveryMode
	}
	for name, vs := range h {
		if len(name) > len(restHeaderPrefix) && strings.EqualFold(name[:len(restHeaderPrefix)], restHeaderPrefix) && len(vs) > 0 {
			if p.Headers == nil {
				p.Headers = mapping.Table{}
			}
			p.Headers[strings.ToLower(name[len(restHeaderPrefix):])] = vs[0]
		}
	}
	if p.Headers != nil {
		p.Flags |= mapping.FlagHeaders
	}
	return p, nil
}

func parseDeliveryMode(v string) (uint8, error) {
	switch strings.ToLower(v) {
	case "1", "transient", "non-persistent":
		return 1, nil
	case "2", "persistent":
		return 2, nil
	}
	return 0, apiError(http.StatusBadRequest, fmt.Sprintf("X-Amqp-Delivery-Mode must be 1 (transient) or 2 (persistent), got '%s'", v))
}

// restTimestamp accepts Unix seconds or RFC 3339.
func restTimestamp(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want Unix seconds or RFC 3339, got '%s'", v)
	}
	return t, nil
}

// setPropsHeaders writes the properties of m as X-Amqp-* response headers
// (content_type as Content-Type, content_encoding as Content-Encoding).
func setPropsHeaders(h http.Header, p *mapping.Properties) {
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
			b, err := json.Marshal(msgcodec.ValueToJSON(v))
			if err != nil {
				continue
			}
			s = string(b)
		}
		if restHeaderValueOK(s) {
			h.Set(restHeaderPrefix+k, s)
		}
	}
}

func restHeaderValueOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// jsonMessage is a message in get responses and SSE events.
type jsonMessage struct {
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
	PayloadBytes    int            `json:"payload_bytes"`
	Properties      msgcodec.Props `json:"properties"`
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	Redelivered     bool           `json:"redelivered"`
	MessageCount    *int           `json:"message_count,omitempty"`
	AckToken        string         `json:"ack_token,omitempty"`
	LeaseExpiresAt  string         `json:"lease_expires_at,omitempty"`
}

func toJSONMessage(d mapping.Delivery) jsonMessage {
	m := d.Message
	j := jsonMessage{
		Properties: msgcodec.PropsToJSON(&m.Properties), Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		Redelivered: d.Redelivered, PayloadBytes: len(m.Body),
	}
	j.Payload, j.PayloadEncoding = msgcodec.EncodePayload(m.Body)
	return j
}
