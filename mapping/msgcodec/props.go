package msgcodec

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Props is the JSON form of the basic properties, with RabbitMQ's
// management API names. An absent property is omitted; timestamp is Unix
// seconds. Numbers are also accepted as strings ("2"), as rabbitmqadmin
// sends them.
type Props struct {
	ContentType     *string        `json:"content_type,omitempty"`
	ContentEncoding *string        `json:"content_encoding,omitempty"`
	Headers         map[string]any `json:"headers,omitempty"`
	DeliveryMode    *Int           `json:"delivery_mode,omitempty"`
	Priority        *Int           `json:"priority,omitempty"`
	CorrelationID   *string        `json:"correlation_id,omitempty"`
	ReplyTo         *string        `json:"reply_to,omitempty"`
	Expiration      *String        `json:"expiration,omitempty"`
	MessageID       *string        `json:"message_id,omitempty"`
	Timestamp       *Int           `json:"timestamp,omitempty"`
	Type            *string        `json:"type,omitempty"`
	UserID          *string        `json:"user_id,omitempty"`
	AppID           *string        `json:"app_id,omitempty"`
	ClusterID       *string        `json:"cluster_id,omitempty"`
}

// Int is an integer given as a JSON number or a string of digits.
type Int int64

func (n *Int) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return &json.UnsupportedValueError{Str: "want an integer, got " + string(b)}
	}
	*n = Int(v)
	return nil
}

// String is a string also given as a JSON number (expiration: 60000).
type String string

func (s *String) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = String(v)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return &json.UnsupportedValueError{Str: "want a string, got " + string(b)}
	}
	*s = String(b)
	return nil
}

// IsZero reports whether no property is set.
func (j *Props) IsZero() bool {
	return j == nil || j.ContentType == nil && j.ContentEncoding == nil && j.Headers == nil && j.DeliveryMode == nil &&
		j.Priority == nil && j.CorrelationID == nil && j.ReplyTo == nil && j.Expiration == nil && j.MessageID == nil &&
		j.Timestamp == nil && j.Type == nil && j.UserID == nil && j.AppID == nil && j.ClusterID == nil
}

// PropsToJSON converts properties to their JSON form: those that are
// present (by flag or by a non-zero value).
func PropsToJSON(p *mapping.Properties) Props {
	q := *p
	q.Normalize()
	f := q.Flags
	var j Props
	str := func(flag uint16, v string) *string {
		if f&flag == 0 {
			return nil
		}
		return &v
	}
	j.ContentType = str(mapping.FlagContentType, p.ContentType)
	j.ContentEncoding = str(mapping.FlagContentEncoding, p.ContentEncoding)
	j.CorrelationID = str(mapping.FlagCorrelationID, p.CorrelationID)
	j.ReplyTo = str(mapping.FlagReplyTo, p.ReplyTo)
	if f&mapping.FlagExpiration != 0 {
		e := String(p.Expiration)
		j.Expiration = &e
	}
	j.MessageID = str(mapping.FlagMessageID, p.MessageID)
	j.Type = str(mapping.FlagType, p.Type)
	j.UserID = str(mapping.FlagUserID, p.UserID)
	j.AppID = str(mapping.FlagAppID, p.AppID)
	j.ClusterID = str(mapping.FlagClusterID, p.ClusterID)
	num := func(flag uint16, v int64) *Int {
		if f&flag == 0 {
			return nil
		}
		n := Int(v)
		return &n
	}
	j.DeliveryMode = num(mapping.FlagDeliveryMode, int64(p.DeliveryMode))
	j.Priority = num(mapping.FlagPriority, int64(p.Priority))
	j.Timestamp = num(mapping.FlagTimestamp, p.Timestamp.Unix())
	if f&mapping.FlagHeaders != 0 && p.Headers != nil {
		j.Headers = TableToJSON(p.Headers)
	}
	return j
}

// PropsFromJSON builds properties from their JSON form. defaultMode is the
// delivery mode when none is given (0: leave it absent). field names the
// object in errors ("properties").
func PropsFromJSON(j *Props, defaultMode uint8, field string) (mapping.Properties, error) {
	var p mapping.Properties
	if j == nil {
		j = &Props{}
	}
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
	if j.Expiration != nil {
		p.Expiration, p.Flags = string(*j.Expiration), p.Flags|mapping.FlagExpiration
	}
	str(mapping.FlagMessageID, j.MessageID, &p.MessageID)
	str(mapping.FlagType, j.Type, &p.Type)
	str(mapping.FlagUserID, j.UserID, &p.UserID)
	str(mapping.FlagAppID, j.AppID, &p.AppID)
	str(mapping.FlagClusterID, j.ClusterID, &p.ClusterID)
	if j.Priority != nil {
		if *j.Priority < 0 || *j.Priority > 255 {
			return p, errorf(join(field, "priority"), "must be 0 to 255, got %d", *j.Priority)
		}
		p.Priority, p.Flags = uint8(*j.Priority), p.Flags|mapping.FlagPriority
	}
	if j.Timestamp != nil {
		p.Timestamp, p.Flags = time.Unix(int64(*j.Timestamp), 0).UTC(), p.Flags|mapping.FlagTimestamp
	}
	mode := defaultMode
	if j.DeliveryMode != nil {
		if *j.DeliveryMode != 1 && *j.DeliveryMode != 2 {
			return p, errorf(join(field, "delivery_mode"), "must be 1 (transient) or 2 (persistent), got %d", *j.DeliveryMode)
		}
		mode = uint8(*j.DeliveryMode)
	}
	if mode != 0 {
		p.DeliveryMode, p.Flags = mode, p.Flags|mapping.FlagDeliveryMode
	}
	if j.Headers != nil {
		t, err := TableFromJSON(j.Headers, join(field, "headers"))
		if err != nil {
			return p, err
		}
		p.Headers, p.Flags = t, p.Flags|mapping.FlagHeaders
	}
	return p, nil
}
