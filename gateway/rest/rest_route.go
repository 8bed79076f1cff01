package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// routeHop is a hop of the routing dry run in JSON.
type routeHop struct {
	Exchange        string         `json:"exchange"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	BindingKey      string         `json:"binding_key"`
	Arguments       map[string]any `json:"arguments,omitempty"`
	Via             string         `json:"via"`
	RoutingKey      string         `json:"routing_key"`
}

// maxRouteBody bounds the JSON body of a dry run.
const maxRouteBody = 1 << 20

// route is POST /v1/route/{exchange}/{routing_key}: where a message with
// this key and these headers would go, without publishing it. Headers come
// from X-Amqp-Header-* and/or a JSON body {"headers": {...}}.
func (r *rest) route(c echo.Context) error {
	exchange, err := exchangeParam(c)
	if err != nil {
		return err
	}
	key, err := pathParam(c, "routing_key")
	if err != nil {
		return err
	}
	props, err := propsFromHeaders(c.Request().Header, 0)
	if err != nil {
		return err
	}
	t, err := r.tenantFor(c, vhostParam(c))
	if err != nil {
		return err
	}
	headers := props.Headers
	var in struct {
		Headers map[string]any `json:"headers"`
	}
	if tree, ok := validate.Body(c); ok { // one parse: the validator's
		m, _ := tree.(map[string]any)
		in.Headers, _ = m["headers"].(map[string]any)
	} else {
		body, err := restBody(c, maxRouteBody)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if ct := c.Request().Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
				return apiError(http.StatusBadRequest, "the body of a dry run, when given, is JSON {\"headers\": {...}} with Content-Type: application/json")
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&in); err != nil {
				return apiError(http.StatusBadRequest, "the body must be JSON {\"headers\": {...}}: "+err.Error())
			}
		}
	}
	if in.Headers != nil {
		if headers == nil {
			headers = mapping.Table{}
		}
		h, err := msgcodec.TableFromJSON(in.Headers, "headers")
		if err != nil {
			return err
		}
		for k, v := range h {
			headers[k] = v
		}
	}
	ch := t.channel()
	tr, err := ch.TraceRoute(exchange, key, headers)
	t.release(ch)
	if err != nil {
		return coreError(err)
	}
	hops := make([]routeHop, len(tr.Hops))
	for i, h := range tr.Hops {
		hops[i] = routeHop{Exchange: displayExchange(h.Exchange), Destination: h.Destination, DestinationType: h.DestinationType,
			BindingKey: h.BindingKey, Via: h.Via, RoutingKey: h.RoutingKey}
		if h.Arguments != nil {
			hops[i].Arguments = msgcodec.ValueToJSON(h.Arguments).(map[string]any)
		}
	}
	queues := tr.Queues
	if queues == nil {
		queues = []string{}
	}
	ae := tr.AlternateExchanges
	if ae == nil {
		ae = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"routed": len(queues) > 0, "queues": queues, "hops": hops, "alternate_exchanges": ae})
}
