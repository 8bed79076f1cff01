package gateway

// Message properties in HTTP form: X-Amqp-* request and response headers,
// and the JSON object of the batch publish and get bodies.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/httpprops"
)

const restHeaderPrefix = httpprops.HeaderPrefix

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

// setPropsHeaders writes the properties of m as X-Amqp-* response headers;
// the mapping is shared with the shovel's webhook destination.
func setPropsHeaders(h http.Header, p *mapping.Properties) { httpprops.SetHeaders(h, p) }

// jsonProps is the JSON form of message properties. Absent properties are
// omitted; timestamp is Unix seconds.
type jsonProps struct {
	ContentType     *string        `json:"content_type,omitempty"`
	ContentEncoding *string        `json:"content_encoding,omitempty"`
	Headers         map[string]any `json:"headers,omitempty"`
	DeliveryMode    *uint8         `json:"delivery_mode,omitempty"`
	Priority        *uint8         `json:"priority,omitempty"`
	CorrelationID   *string        `json:"correlation_id,omitempty"`
	ReplyTo         *string        `json:"reply_to,omitempty"`
	Expiration      *string        `json:"expiration,omitempty"`
	MessageID       *string        `json:"message_id,omitempty"`
	Timestamp       *int64         `json:"timestamp,omitempty"`
	Type            *string        `json:"type,omitempty"`
	UserID          *string        `json:"user_id,omitempty"`
	AppID           *string        `json:"app_id,omitempty"`
	ClusterID       *string        `json:"cluster_id,omitempty"`
}

func toJSONProps(p *mapping.Properties) jsonProps {
	var j jsonProps
	str := func(flag uint16, v string) *string {
		if p.Flags&flag == 0 {
			return nil
		}
		return &v
	}
	j.ContentType = str(mapping.FlagContentType, p.ContentType)
	j.ContentEncoding = str(mapping.FlagContentEncoding, p.ContentEncoding)
	j.CorrelationID = str(mapping.FlagCorrelationID, p.CorrelationID)
	j.ReplyTo = str(mapping.FlagReplyTo, p.ReplyTo)
	j.Expiration = str(mapping.FlagExpiration, p.Expiration)
	j.MessageID = str(mapping.FlagMessageID, p.MessageID)
	j.Type = str(mapping.FlagType, p.Type)
	j.UserID = str(mapping.FlagUserID, p.UserID)
	j.AppID = str(mapping.FlagAppID, p.AppID)
	j.ClusterID = str(mapping.FlagClusterID, p.ClusterID)
	if p.Flags&mapping.FlagDeliveryMode != 0 {
		v := p.DeliveryMode
		j.DeliveryMode = &v
	}
	if p.Flags&mapping.FlagPriority != 0 {
		v := p.Priority
		j.Priority = &v
	}
	if p.Flags&mapping.FlagTimestamp != 0 {
		v := p.Timestamp.Unix()
		j.Timestamp = &v
	}
	if p.Flags&mapping.FlagHeaders != 0 && p.Headers != nil {
		j.Headers = restJSONValue(p.Headers).(map[string]any)
	}
	return j
}

// restJSONValue converts a field-table value to plain JSON values.
func restJSONValue(v any) any { return httpprops.JSONValue(v) }

// restTableValue converts a decoded JSON value (UseNumber) to a field-table
// value: integers as long, other numbers as double.
func restTableValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		t := make(mapping.Table, len(v))
		for k, x := range v {
			t[k] = restTableValue(x)
		}
		return t
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = restTableValue(x)
		}
		return out
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// fromJSONProps builds properties from the JSON form; defaultMode as in
// propsFromHeaders.
func fromJSONProps(j *jsonProps, defaultMode uint8) mapping.Properties {
	var p mapping.Properties
	str := func(flag uint16, src *string, dst *string) {
		if src != nil {
			*dst = *src
			p.Flags |= flag
		}
	}
	str(mapping.FlagContentType, j.ContentType, &p.ContentType)
	str(mapping.FlagContentEncoding, j.ContentEncoding, &p.ContentEncoding)
	str(mapping.FlagCorrelationID, j.CorrelationID, &p.CorrelationID)
	str(mapping.FlagReplyTo, j.ReplyTo, &p.ReplyTo)
	str(mapping.FlagExpiration, j.Expiration, &p.Expiration)
	str(mapping.FlagMessageID, j.MessageID, &p.MessageID)
	str(mapping.FlagType, j.Type, &p.Type)
	str(mapping.FlagUserID, j.UserID, &p.UserID)
	str(mapping.FlagAppID, j.AppID, &p.AppID)
	str(mapping.FlagClusterID, j.ClusterID, &p.ClusterID)
	if j.Priority != nil {
		p.Priority, p.Flags = *j.Priority, p.Flags|mapping.FlagPriority
	}
	if j.Timestamp != nil {
		p.Timestamp, p.Flags = time.Unix(*j.Timestamp, 0), p.Flags|mapping.FlagTimestamp
	}
	mode := defaultMode
	if j.DeliveryMode != nil {
		mode = *j.DeliveryMode
	}
	if mode != 0 {
		p.DeliveryMode, p.Flags = mode, p.Flags|mapping.FlagDeliveryMode
	}
	if j.Headers != nil {
		p.Headers = restTableValue(j.Headers).(mapping.Table)
		p.Flags |= mapping.FlagHeaders
	}
	return p
}

// jsonMessage is a message in get responses and SSE events.
type jsonMessage struct {
	Payload         string    `json:"payload"`
	PayloadEncoding string    `json:"payload_encoding"`
	PayloadBytes    int       `json:"payload_bytes"`
	Properties      jsonProps `json:"properties"`
	Exchange        string    `json:"exchange"`
	RoutingKey      string    `json:"routing_key"`
	Redelivered     bool      `json:"redelivered"`
	MessageCount    *int      `json:"message_count,omitempty"`
	AckToken        string    `json:"ack_token,omitempty"`
	LeaseExpiresAt  string    `json:"lease_expires_at,omitempty"`
}

func toJSONMessage(d mapping.Delivery) jsonMessage {
	m := d.Message
	j := jsonMessage{
		Properties: toJSONProps(&m.Properties), Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		Redelivered: d.Redelivered, PayloadBytes: len(m.Body),
	}
	j.Payload, j.PayloadEncoding = restPayload(m.Body)
	return j
}

// restPayload keeps valid UTF-8 as a string and base64-encodes the rest.
func restPayload(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), "string"
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}
