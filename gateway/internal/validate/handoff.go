package validate

// Handing the validated body to the handler: the middleware leaves the
// value it decoded and checked in the context, and the handlers of the
// JSON operations take their input from it instead of parsing the bytes
// again. A handler reached without the middleware (or with a body too
// large to validate) decodes the bytes itself, as before.

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping/msgcodec"
)

// oaBodyKey is the context key of the validated JSON body.
const oaBodyKey = "warren.validated-body"

// Body is the JSON body the validator decoded and checked (numbers as
// json.Number), if it did; handlers take their input from it instead of
// parsing the bytes again.
func Body(c echo.Context) (any, bool) {
	v := c.Get(oaBodyKey)
	if v == nil {
		return nil, false
	}
	return v.(oaBody).v, true
}

// Size is the length in bytes of the body the validator decoded, if it
// did: a handler with a lower limit than the validator's still refuses a
// body over it.
func Size(c echo.Context) (int, bool) {
	v := c.Get(oaBodyKey)
	if v == nil {
		return 0, false
	}
	return v.(oaBody).n, true
}

// oaBody wraps the value so that a JSON null body still counts as
// validated; n is the body's length.
type oaBody struct {
	v any
	n int
}

// Props fills a msgcodec.Props from a validated properties object.
func Props(m map[string]any, field string, p *msgcodec.Props) error {
	strs := []struct {
		key string
		dst **string
	}{
		{"content_type", &p.ContentType}, {"content_encoding", &p.ContentEncoding}, {"correlation_id", &p.CorrelationID},
		{"reply_to", &p.ReplyTo}, {"message_id", &p.MessageID}, {"type", &p.Type}, {"user_id", &p.UserID},
		{"app_id", &p.AppID}, {"cluster_id", &p.ClusterID},
	}
	for _, s := range strs {
		if _, ok := m[s.key]; !ok {
			continue
		}
		var v string
		if err := String(m, s.key, field, &v); err != nil {
			return err
		}
		*s.dst = &v
	}
	ints := []struct {
		key string
		dst **msgcodec.Int
	}{{"delivery_mode", &p.DeliveryMode}, {"priority", &p.Priority}, {"timestamp", &p.Timestamp}}
	for _, n := range ints {
		raw, ok := m[n.key]
		if !ok || raw == nil {
			continue
		}
		var v int64
		var err error
		switch x := raw.(type) {
		case json.Number:
			v, err = x.Int64()
		case string:
			v, err = json.Number(x).Int64()
		default:
			err = fmt.Errorf("not an integer")
		}
		if err != nil {
			return WrongType(field+"."+n.key, "an integer")
		}
		iv := msgcodec.Int(v)
		*n.dst = &iv
	}
	if raw, ok := m["expiration"]; ok && raw != nil {
		var s msgcodec.String
		switch x := raw.(type) {
		case string:
			s = msgcodec.String(x)
		case json.Number:
			s = msgcodec.String(x)
		default:
			return WrongType(field+".expiration", "a string")
		}
		p.Expiration = &s
	}
	if raw, ok := m["headers"]; ok && raw != nil {
		h, ok := raw.(map[string]any)
		if !ok {
			return WrongType(field+".headers", "an object")
		}
		p.Headers = h
	}
	return nil
}

// String reads an optional string field of m.
func String(m map[string]any, key, field string, dst *string) error {
	raw, ok := m[key]
	if !ok || raw == nil {
		return nil
	}
	s, ok := raw.(string)
	if !ok {
		return WrongType(field+"."+key, "a string")
	}
	*dst = s
	return nil
}

// WrongType is the 400 for a field of the wrong type.
func WrongType(field, want string) error {
	return apiError(http.StatusBadRequest, fmt.Sprintf("request body field '%s' must be %s", field, want))
}
