package shovel

import (
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/mapping"
)

// Conversions between amqp091-go's message form and the core's. amqp091
// has no presence flags: an empty string or zero number counts as absent,
// which is also how it writes them on the wire.

func toCoreValue(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		t := make(mapping.Table, len(v))
		for k, x := range v {
			t[k] = toCoreValue(x)
		}
		return t
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = toCoreValue(x)
		}
		return out
	case amqp.Decimal:
		return mapping.Decimal{Scale: v.Scale, Value: v.Value}
	}
	return v
}

func toAMQPValue(v any) any {
	switch v := v.(type) {
	case mapping.Table:
		t := make(amqp.Table, len(v))
		for k, x := range v {
			t[k] = toAMQPValue(x)
		}
		return t
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = toAMQPValue(x)
		}
		return out
	case mapping.Decimal:
		return amqp.Decimal{Scale: v.Scale, Value: v.Value}
	}
	return v
}

// fromDelivery builds a core message from an amqp091 delivery.
func fromDelivery(d *amqp.Delivery) *mapping.Message {
	var p mapping.Properties
	str := func(flag uint16, src string, dst *string) {
		if src != "" {
			*dst = src
			p.Flags |= flag
		}
	}
	str(mapping.FlagContentType, d.ContentType, &p.ContentType)
	str(mapping.FlagContentEncoding, d.ContentEncoding, &p.ContentEncoding)
	str(mapping.FlagCorrelationID, d.CorrelationId, &p.CorrelationID)
	str(mapping.FlagReplyTo, d.ReplyTo, &p.ReplyTo)
	str(mapping.FlagExpiration, d.Expiration, &p.Expiration)
	str(mapping.FlagMessageID, d.MessageId, &p.MessageID)
	str(mapping.FlagType, d.Type, &p.Type)
	str(mapping.FlagUserID, d.UserId, &p.UserID)
	str(mapping.FlagAppID, d.AppId, &p.AppID)
	if d.Headers != nil {
		p.Headers = toCoreValue(d.Headers).(mapping.Table)
		p.Flags |= mapping.FlagHeaders
	}
	if d.DeliveryMode != 0 {
		p.DeliveryMode, p.Flags = d.DeliveryMode, p.Flags|mapping.FlagDeliveryMode
	}
	if d.Priority != 0 {
		p.Priority, p.Flags = d.Priority, p.Flags|mapping.FlagPriority
	}
	if !d.Timestamp.IsZero() {
		p.Timestamp, p.Flags = d.Timestamp, p.Flags|mapping.FlagTimestamp
	}
	return &mapping.Message{Exchange: d.Exchange, RoutingKey: d.RoutingKey, Properties: p, Body: d.Body}
}

// toPublishing builds an amqp091 publishing from a core message.
func toPublishing(m *mapping.Message) amqp.Publishing {
	p := &m.Properties
	out := amqp.Publishing{
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		DeliveryMode:    p.DeliveryMode,
		Priority:        p.Priority,
		CorrelationId:   p.CorrelationID,
		ReplyTo:         p.ReplyTo,
		Expiration:      p.Expiration,
		MessageId:       p.MessageID,
		Type:            p.Type,
		UserId:          p.UserID,
		AppId:           p.AppID,
		Body:            m.Body,
	}
	if p.Flags&mapping.FlagTimestamp != 0 {
		out.Timestamp = p.Timestamp
	}
	if p.Headers != nil {
		out.Headers = toAMQPValue(p.Headers).(amqp.Table)
	}
	return out
}

// deliveryAttempt is the delivery count a remote broker reports: quorum
// queues send x-delivery-count (earlier deliveries); otherwise 1, or 2
// when the broker says the message was delivered before.
func deliveryAttempt(d *amqp.Delivery) int {
	switch n := d.Headers["x-delivery-count"].(type) {
	case int64:
		return int(n) + 1
	case int32:
		return int(n) + 1
	}
	if d.Redelivered {
		return 2
	}
	return 1
}
