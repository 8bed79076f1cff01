package rest

import (
	"fmt"

	"github.com/warrenmq/warren/gateway/internal/validate"
)

// oaBatchItems reads the items of a validated batch publish body (an
// array of V1BatchItem, types already checked against the schema).
func oaBatchItems(v any) ([]batchItem, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, validate.WrongType("the request body", "an array")
	}
	items := make([]batchItem, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		field := fmt.Sprintf("[%d]", i)
		if !ok {
			return nil, validate.WrongType(field, "an object")
		}
		it := &items[i]
		for _, f := range []struct {
			key string
			dst *string
		}{{"exchange", &it.Exchange}, {"routing_key", &it.RoutingKey}, {"payload", &it.Payload}, {"payload_encoding", &it.PayloadEncoding}} {
			if err := validate.String(m, f.key, field, f.dst); err != nil {
				return nil, err
			}
		}
		if p, ok := m["properties"]; ok && p != nil {
			pm, ok := p.(map[string]any)
			if !ok {
				return nil, validate.WrongType(field+".properties", "an object")
			}
			if err := validate.Props(pm, field+".properties", &it.Properties); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}
