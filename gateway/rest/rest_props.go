package rest

// Message properties in HTTP form: X-Amqp-* request and response headers,
// and the JSON object of the batch publish and get bodies.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

const restHeaderPrefix = msgcodec.HeaderPrefix

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
// (the form the shovel's webhooks send too).
func setPropsHeaders(h http.Header, p *mapping.Properties) { msgcodec.SetHeaders(h, p) }

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
