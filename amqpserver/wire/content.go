package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/warrenmq/warren/mapping"
)

// ParseContentHeader parses the payload of a content header frame. The
// weight must be 0, and the properties must fill the rest of the payload;
// any error wraps ErrSyntax. The body size is returned as sent: checking it
// against a message size limit is the caller's business.
func ParseContentHeader(payload []byte) (classID uint16, bodySize uint64, props mapping.Properties, err error) {
	if len(payload) < 14 {
		return 0, 0, props, fmt.Errorf("%w: content header of %d bytes, need at least 14", ErrSyntax, len(payload))
	}
	classID = binary.BigEndian.Uint16(payload)
	if w := binary.BigEndian.Uint16(payload[2:]); w != 0 {
		return 0, 0, props, fmt.Errorf("%w: content header weight %d, must be 0", ErrSyntax, w)
	}
	bodySize = binary.BigEndian.Uint64(payload[4:])
	props, err = mapping.ReadProperties(payload[12:])
	if err != nil {
		return 0, 0, mapping.Properties{}, fmt.Errorf("%w: content header: %w", ErrSyntax, err)
	}
	return classID, bodySize, props, nil
}
