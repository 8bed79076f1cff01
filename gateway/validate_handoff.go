package gateway

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

// validatedBody is the JSON body the validator decoded and checked
// (numbers as json.Number), if it did.
func validatedBody(c echo.Context) (any, bool) {
	v := c.Get(oaBodyKey)
	if v == nil {
		return nil, false
	}
	return v.(oaBody).v, true
}

// oaBody wraps the value so that a JSON null body still counts as
// validated.
type oaBody struct{ v any }

// oaBatchItems reads the items of a validated batch publish body (an
// array of V1BatchItem, types already checked against the schema).
func oaBatchItems(v any) ([]batchItem, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, oaWrongType("the request body", "an array")
	}
	items := make([]batchItem, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		field := fmt.Sprintf("[%d]", i)
		if !ok {
			return nil, oaWrongType(field, "an object")
		}
		it := &items[i]
		for _, f := range []struct {
			key string
			dst *string
		}{{"exchange", &it.Exchange}, {"routing_key", &it.RoutingKey}, {"payload", &it.Payload}, {"payload_encoding", &it.PayloadEncoding}} {
			if err := oaString(m, f.key, field, f.dst); err != nil {
				return nil, err
			}
		}
		if p, ok := m["properties"]; ok && p != nil {
			pm, ok := p.(map[string]any)
			if !ok {
				return nil, oaWrongType(field+".properties", "an object")
			}
			if err := oaProps(pm, field+".properties", &it.Properties); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}

// oaProps fills a msgcodec.Props from a validated properties object.
func oaProps(m map[string]any, field string, p *msgcodec.Props) error {
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
		if err := oaString(m, s.key, field, &v); err != nil {
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
			return oaWrongType(field+"."+n.key, "an integer")
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
			return oaWrongType(field+".expiration", "a string")
		}
		p.Expiration = &s
	}
	if raw, ok := m["headers"]; ok && raw != nil {
		h, ok := raw.(map[string]any)
		if !ok {
			return oaWrongType(field+".headers", "an object")
		}
		p.Headers = h
	}
	return nil
}

// oaString reads an optional string field of m.
func oaString(m map[string]any, key, field string, dst *string) error {
	raw, ok := m[key]
	if !ok || raw == nil {
		return nil
	}
	s, ok := raw.(string)
	if !ok {
		return oaWrongType(field+"."+key, "a string")
	}
	*dst = s
	return nil
}

func oaWrongType(field, want string) error {
	return apiError(http.StatusBadRequest, fmt.Sprintf("request body field '%s' must be %s", field, want))
}
