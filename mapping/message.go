package mapping

import "time"

// Table is an AMQP field table. Values keep their wire type through their Go
// type, so that a table read from one client is written to another with the
// same type letters (RabbitMQ's letters in brackets):
//
//	bool (t), int8 (b), uint8 (B), int16 (s), uint16 (u), int32 (I),
//	uint32 (i), int64 (l), float32 (f), float64 (d), Decimal (D),
//	string (S), []byte (x), time.Time (T), Table (F), []any (A), nil (V).
type Table map[string]any

// Decimal is an AMQP decimal value: Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// Property flag bits of the basic class content header, in wire order.
const (
	FlagContentType     uint16 = 0x8000
	FlagContentEncoding uint16 = 0x4000
	FlagHeaders         uint16 = 0x2000
	FlagDeliveryMode    uint16 = 0x1000
	FlagPriority        uint16 = 0x0800
	FlagCorrelationID   uint16 = 0x0400
	FlagReplyTo         uint16 = 0x0200
	FlagExpiration      uint16 = 0x0100
	FlagMessageID       uint16 = 0x0080
	FlagTimestamp       uint16 = 0x0040
	FlagType            uint16 = 0x0020
	FlagUserID          uint16 = 0x0010
	FlagAppID           uint16 = 0x0008
	FlagClusterID       uint16 = 0x0004
)

// Properties are the 14 basic-class content properties. Flags records which
// ones were present on the wire, so that an absent property stays absent
// (a zero DeliveryMode is not the same as no delivery mode).
type Properties struct {
	Flags           uint16
	ContentType     string
	ContentEncoding string
	Headers         Table
	DeliveryMode    uint8
	Priority        uint8
	CorrelationID   string
	ReplyTo         string
	Expiration      string
	MessageID       string
	Timestamp       time.Time
	Type            string
	UserID          string
	AppID           string
	ClusterID       string
}

// Persistent reports whether the publisher asked for delivery mode 2. It
// reads the value only: a front that set DeliveryMode without its flag
// still gets a persistent message (Normalize makes the two agree).
func (p *Properties) Persistent() bool {
	return p.DeliveryMode == 2
}
