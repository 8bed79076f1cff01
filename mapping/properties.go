package mapping

import (
	"encoding/binary"
	"math"
	"time"
)

// flagsUnknown are the property-flag bits the basic class does not define:
// bit 1 is unused and bit 0 announces a further flags word, which only a
// class with more than 15 properties may send.
const flagsUnknown uint16 = 0x0003

// present returns the flags of the properties that AppendProperties writes:
// those whose flag is set, and also those whose value is non-zero although
// the flag is unset, so that a literal such as Properties{ContentType: "x"}
// works without its caller knowing about Flags. A zero value is written only
// when its flag says so (delivery mode 0, an empty content type, ...).
func (p *Properties) present() uint16 {
	f := p.Flags &^ flagsUnknown
	set := func(flag uint16, ok bool) {
		if ok {
			f |= flag
		}
	}
	set(FlagContentType, p.ContentType != "")
	set(FlagContentEncoding, p.ContentEncoding != "")
	set(FlagHeaders, len(p.Headers) > 0)
	set(FlagDeliveryMode, p.DeliveryMode != 0)
	set(FlagPriority, p.Priority != 0)
	set(FlagCorrelationID, p.CorrelationID != "")
	set(FlagReplyTo, p.ReplyTo != "")
	set(FlagExpiration, p.Expiration != "")
	set(FlagMessageID, p.MessageID != "")
	set(FlagTimestamp, !p.Timestamp.IsZero())
	set(FlagType, p.Type != "")
	set(FlagUserID, p.UserID != "")
	set(FlagAppID, p.AppID != "")
	set(FlagClusterID, p.ClusterID != "")
	return f
}

// Normalize makes Flags agree with the values, so that every front's
// message reads the same afterwards: a property holding a non-zero value is
// present whether or not its front set the flag, and bits that name no
// property are cleared. The publish entry point calls it first, so that
// persistence (delivery mode 2) and what consumers see never depend on how
// a front filled in Properties.
func (p *Properties) Normalize() { p.Flags = p.present() }

// AppendProperties appends the basic-class property list: the 16-bit
// property-flags word, then each present property in wire order. Which
// properties are present is decided by p.Flags, and in addition every
// property holding a non-zero value is written even if its flag is unset
// (see present). Bits of p.Flags that name no property are ignored.
func AppendProperties(dst []byte, p *Properties) ([]byte, error) {
	f := p.present()
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, f)
	var err error
	str := func(flag uint16, s string) {
		if err != nil || f&flag == 0 {
			return
		}
		if len(s) > math.MaxUint8 {
			err = unencodable("property %s is %d bytes, the limit is 255", flagName(flag), len(s))
			return
		}
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
	}
	str(FlagContentType, p.ContentType)
	str(FlagContentEncoding, p.ContentEncoding)
	if err == nil && f&FlagHeaders != 0 {
		dst, err = AppendTable(dst, p.Headers)
	}
	if f&FlagDeliveryMode != 0 {
		dst = append(dst, p.DeliveryMode)
	}
	if f&FlagPriority != 0 {
		dst = append(dst, p.Priority)
	}
	str(FlagCorrelationID, p.CorrelationID)
	str(FlagReplyTo, p.ReplyTo)
	str(FlagExpiration, p.Expiration)
	str(FlagMessageID, p.MessageID)
	if f&FlagTimestamp != 0 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.Timestamp.Unix()))
	}
	str(FlagType, p.Type)
	str(FlagUserID, p.UserID)
	str(FlagAppID, p.AppID)
	str(FlagClusterID, p.ClusterID)
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// ReadProperties parses a basic-class property list that fills src exactly
// (trailing bytes are an error). Flags of the result records which
// properties were on the wire. A continuation bit or the unused bit 1 in the
// flags word is an error: the basic class has 14 properties.
func ReadProperties(src []byte) (Properties, error) {
	p, n, err := ReadPropertiesPrefix(src)
	if err == nil && n != len(src) {
		return Properties{}, malformed("%d bytes after the properties", len(src)-n)
	}
	return p, err
}

// ReadPropertiesPrefix is ReadProperties for a property list at the start of
// src; it returns the number of bytes consumed.
func ReadPropertiesPrefix(src []byte) (Properties, int, error) {
	var p Properties
	if len(src) < 2 {
		return p, 0, malformed("property flags need 2 bytes, have %d", len(src))
	}
	f := binary.BigEndian.Uint16(src)
	if f&flagsUnknown != 0 {
		return p, 0, malformed("property flags %#04x set bits the basic class does not define", f)
	}
	p.Flags = f
	b := src[2:]
	var err error
	str := func(flag uint16, dst *string) {
		if err != nil || f&flag == 0 {
			return
		}
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			err = malformed("property %s runs past the header", flagName(flag))
			return
		}
		*dst = string(b[1 : 1+int(b[0])])
		b = b[1+int(b[0]):]
	}
	octet := func(flag uint16, dst *uint8) {
		if err != nil || f&flag == 0 {
			return
		}
		if len(b) < 1 {
			err = malformed("property %s runs past the header", flagName(flag))
			return
		}
		*dst = b[0]
		b = b[1:]
	}
	str(FlagContentType, &p.ContentType)
	str(FlagContentEncoding, &p.ContentEncoding)
	if err == nil && f&FlagHeaders != 0 {
		var n int
		if p.Headers, n, err = ReadTable(b); err == nil {
			b = b[n:]
		}
	}
	octet(FlagDeliveryMode, &p.DeliveryMode)
	octet(FlagPriority, &p.Priority)
	str(FlagCorrelationID, &p.CorrelationID)
	str(FlagReplyTo, &p.ReplyTo)
	str(FlagExpiration, &p.Expiration)
	str(FlagMessageID, &p.MessageID)
	if err == nil && f&FlagTimestamp != 0 {
		if len(b) < 8 {
			err = malformed("property timestamp runs past the header")
		} else {
			p.Timestamp = time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC()
			b = b[8:]
		}
	}
	str(FlagType, &p.Type)
	str(FlagUserID, &p.UserID)
	str(FlagAppID, &p.AppID)
	str(FlagClusterID, &p.ClusterID)
	if err != nil {
		return Properties{}, 0, err
	}
	return p, len(src) - len(b), nil
}

func flagName(flag uint16) string {
	switch flag {
	case FlagContentType:
		return "content-type"
	case FlagContentEncoding:
		return "content-encoding"
	case FlagHeaders:
		return "headers"
	case FlagDeliveryMode:
		return "delivery-mode"
	case FlagPriority:
		return "priority"
	case FlagCorrelationID:
		return "correlation-id"
	case FlagReplyTo:
		return "reply-to"
	case FlagExpiration:
		return "expiration"
	case FlagMessageID:
		return "message-id"
	case FlagTimestamp:
		return "timestamp"
	case FlagType:
		return "type"
	case FlagUserID:
		return "user-id"
	case FlagAppID:
		return "app-id"
	case FlagClusterID:
		return "cluster-id"
	}
	return "unknown"
}
