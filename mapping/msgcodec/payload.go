package msgcodec

import (
	"encoding/base64"
	"unicode/utf8"
)

// DecodePayload reads a client's payload in its payload_encoding: "string"
// (also "" and "text") or "base64". field names the payload in errors.
func DecodePayload(payload, encoding, field string) ([]byte, error) {
	switch encoding {
	case "", "string", "text":
		return []byte(payload), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			return nil, errorf(field, "is not valid base64: %v", err)
		}
		return b, nil
	}
	return nil, errorf(field+"_encoding", "unknown payload_encoding '%s': use 'string' or 'base64'", encoding)
}

// EncodePayload writes a body for JSON: valid UTF-8 as a "string", the
// rest as "base64".
func EncodePayload(b []byte) (payload, encoding string) {
	if utf8.Valid(b) {
		return string(b), "string"
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}
