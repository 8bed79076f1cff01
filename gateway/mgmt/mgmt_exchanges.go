package mgmt

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

type mgExchangeJSON struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
	Policy     any            `json:"policy"`
}

func mgExchangeOut(x mapping.ExchangeInfo) mgExchangeJSON {
	return mgExchangeJSON{
		Name: x.Name, VHost: x.VHost, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete,
		Internal: x.Internal, Arguments: msgcodec.TableToJSON(x.Args),
	}
}

func (m *mgmt) listExchanges(c echo.Context) error {
	vhs, err := m.vhostsParam(c)
	if err != nil {
		return err
	}
	out := []mgExchangeJSON{}
	for _, vh := range vhs {
		for _, x := range vh.Exchanges() {
			out = append(out, mgExchangeOut(x))
		}
	}
	return mgList(c, out)
}

func (m *mgmt) exchangeParams(c echo.Context) (*mapping.VHost, string, error) {
	vh, name, err := m.queueParams(c)
	return vh, mgExchangeName(name), err
}

func (m *mgmt) getExchange(c echo.Context) error {
	vh, name, err := m.exchangeParams(c)
	if err != nil {
		return err
	}
	x, err := vh.Exchange(name)
	if err != nil {
		return coreError(err)
	}
	return c.JSON(http.StatusOK, mgExchangeOut(x))
}

// mgExchangeBody is what PUT /api/exchanges/{vhost}/{name} takes.
type mgExchangeBody struct {
	Type       string         `json:"type"`
	Durable    mgFlexBool     `json:"durable"`
	AutoDelete mgFlexBool     `json:"auto_delete"`
	Internal   mgFlexBool     `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func (m *mgmt) putExchange(c echo.Context) error {
	vh, name, err := m.exchangeParams(c)
	if err != nil {
		return err
	}
	var body mgExchangeBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	if body.Type == "" {
		return apiError(http.StatusBadRequest, "key 'type' is mandatory (direct, fanout, topic or headers)")
	}
	_, lookErr := vh.Exchange(name)
	args, err := msgcodec.TableFromJSON(body.Arguments, "arguments")
	if err != nil {
		return err
	}
	spec := mapping.ExchangeSpec{
		Name: name, Type: body.Type, Durable: body.Durable.or(false), AutoDelete: body.AutoDelete.or(false),
		Internal: body.Internal.or(false), Args: args,
	}
	err = m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error { return ch.DeclareExchange(spec, false) })
	if err != nil {
		return err
	}
	return mgCreated(c, lookErr == nil)
}

func (m *mgmt) deleteExchange(c echo.Context) error {
	vh, name, err := m.exchangeParams(c)
	if err != nil {
		return err
	}
	if _, err := vh.Exchange(name); err != nil {
		return coreError(err)
	}
	err = m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error { return ch.DeleteExchange(name, mgBoolParam(c, "if-unused")) })
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *mgmt) exchangeBindings(c echo.Context, asSource bool) error {
	vh, name, err := m.exchangeParams(c)
	if err != nil {
		return err
	}
	if _, err := vh.Exchange(name); err != nil {
		return coreError(err)
	}
	out := []mgBindingJSON{}
	for _, b := range vh.Bindings() {
		if (asSource && b.Source == name) || (!asSource && b.DestinationType == "exchange" && b.Destination == name) {
			out = append(out, mgBindingOut(b))
		}
	}
	return mgList(c, out)
}

func (m *mgmt) exchangeBindingsSource(c echo.Context) error { return m.exchangeBindings(c, true) }
func (m *mgmt) exchangeBindingsDestination(c echo.Context) error {
	return m.exchangeBindings(c, false)
}

// mgPublishBody is what POST /api/exchanges/{vhost}/{name}/publish takes.
type mgPublishBody struct {
	Properties      msgcodec.Props `json:"properties"`
	RoutingKey      *string        `json:"routing_key"`
	Payload         *string        `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

// publish is POST /api/exchanges/{vhost}/{name}/publish. It answers once
// every queue the message reached has stored it.
func (m *mgmt) publish(c echo.Context) error {
	vh, name, err := m.exchangeParams(c)
	if err != nil {
		return err
	}
	var body mgPublishBody
	limit := m.s.router.MaxMessageSize()*4/3 + 1<<16
	if err := mgBind(c, &body, limit); err != nil {
		return err
	}
	if body.RoutingKey == nil {
		return apiError(http.StatusBadRequest, "key 'routing_key' is mandatory")
	}
	if body.Payload == nil {
		return apiError(http.StatusBadRequest, "key 'payload' is mandatory")
	}
	var payload []byte
	switch body.PayloadEncoding {
	case "string", "":
		payload = []byte(*body.Payload)
	case "base64":
		if payload, err = base64.StdEncoding.DecodeString(*body.Payload); err != nil {
			return apiError(http.StatusBadRequest, "payload is not valid base64: "+err.Error())
		}
	default:
		return apiError(http.StatusBadRequest, fmt.Sprintf("unknown payload_encoding '%s': use string or base64", body.PayloadEncoding))
	}
	props, err := msgcodec.PropsFromJSON(&body.Properties, 0, "properties")
	if err != nil {
		return err
	}
	var routed bool
	err = m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error {
		msg := &mapping.Message{Exchange: name, RoutingKey: *body.RoutingKey, Properties: props, Body: payload}
		ctx, cancel := context.WithTimeout(c.Request().Context(), mgmtTimeout)
		defer cancel()
		out, err := publishAndWait(ch, msg, ctx, ctx)
		routed = out.Routed
		return err
	})
	if err != nil {
		return err
	}
	st := m.s.router.Stats()
	if routed {
		st.Confirmed.Add(1)
	} else {
		st.UnroutableReturned.Add(1)
	}
	return c.JSON(http.StatusOK, map[string]bool{"routed": routed})
}

// ---------------------------------------------------------------------------
// bindings

type mgBindingJSON struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
	PropertiesKey   string         `json:"properties_key"`
}

func mgBindingOut(b mapping.BindingInfo) mgBindingJSON {
	return mgBindingJSON{
		Source: b.Source, VHost: b.VHost, Destination: b.Destination, DestinationType: b.DestinationType,
		RoutingKey: b.RoutingKey, Arguments: msgcodec.TableToJSON(b.Arguments), PropertiesKey: mgPropsKey(b.RoutingKey, b.Arguments),
	}
}

// mgPropsKey names a binding in URLs as RabbitMQ does: "~" for an empty
// key without arguments, the escaped key, or the key, "~" and a hash of
// the arguments.
func mgPropsKey(key string, args mapping.Table) string {
	k := strings.ReplaceAll(url.PathEscape(key), "~", "%7E")
	if len(args) == 0 {
		if key == "" {
			return "~"
		}
		return k
	}
	b, _ := json.Marshal(msgcodec.TableToJSON(args))
	sum := sha256.Sum256(b)
	return k + "~" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (m *mgmt) listBindings(c echo.Context) error {
	vhs, err := m.vhostsParam(c)
	if err != nil {
		return err
	}
	out := []mgBindingJSON{}
	for _, vh := range vhs {
		for _, b := range vh.Bindings() {
			out = append(out, mgBindingOut(b))
		}
	}
	return mgList(c, out)
}

// mgBindingRoute resolves /bindings/:vhost/e/:source/{q|e}/:destination.
type mgBindingRoute struct {
	vh       *mapping.VHost
	source   string
	dest     string
	destType string
}

func (m *mgmt) bindingParams(c echo.Context) (mgBindingRoute, error) {
	var br mgBindingRoute
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return br, err
	}
	if br.vh, err = m.vhost(c, vhost); err != nil {
		return br, err
	}
	if br.source, err = mgParam(c, "source"); err != nil {
		return br, err
	}
	br.source = mgExchangeName(br.source)
	if br.dest, err = mgParam(c, "destination"); err != nil {
		return br, err
	}
	br.destType = "queue"
	if strings.Contains(c.Path(), "/e/:source/e/") {
		br.destType = "exchange"
		br.dest = mgExchangeName(br.dest)
	}
	if _, err := br.vh.Exchange(br.source); err != nil {
		return br, coreError(err)
	}
	if br.destType == "queue" {
		_, err = br.vh.Queue(br.dest)
	} else {
		_, err = br.vh.Exchange(br.dest)
	}
	return br, coreError(err)
}

func (br mgBindingRoute) matching() []mgBindingJSON {
	out := []mgBindingJSON{}
	for _, b := range br.vh.Bindings() {
		if b.Source == br.source && b.Destination == br.dest && b.DestinationType == br.destType {
			out = append(out, mgBindingOut(b))
		}
	}
	return out
}

func (m *mgmt) listBindingsBetween(c echo.Context) error {
	br, err := m.bindingParams(c)
	if err != nil {
		return err
	}
	return mgList(c, br.matching())
}

// mgBindingBody is what POST /api/bindings/... takes.
type mgBindingBody struct {
	RoutingKey string         `json:"routing_key"`
	Arguments  map[string]any `json:"arguments"`
}

func (m *mgmt) createBinding(c echo.Context) error {
	br, err := m.bindingParams(c)
	if err != nil {
		return err
	}
	var body mgBindingBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	args, err := msgcodec.TableFromJSON(body.Arguments, "arguments")
	if err != nil {
		return err
	}
	err = m.withChannel(c, br.vh.Name(), func(ch *mapping.Channel) error {
		if br.destType == "queue" {
			return ch.BindQueue(br.dest, br.source, body.RoutingKey, args)
		}
		return ch.BindExchange(br.dest, br.source, body.RoutingKey, args)
	})
	if err != nil {
		return err
	}
	char := "q"
	if br.destType == "exchange" {
		char = "e"
	}
	c.Response().Header().Set("Location", "/api/bindings/"+url.PathEscape(br.vh.Name())+"/e/"+url.PathEscape(br.source)+
		"/"+char+"/"+url.PathEscape(br.dest)+"/"+url.PathEscape(mgPropsKey(body.RoutingKey, args)))
	return c.NoContent(http.StatusCreated)
}

func (m *mgmt) findBinding(c echo.Context) (mgBindingRoute, mgBindingJSON, mapping.Table, error) {
	br, err := m.bindingParams(c)
	if err != nil {
		return br, mgBindingJSON{}, nil, err
	}
	props, err := mgParam(c, "props")
	if err != nil {
		return br, mgBindingJSON{}, nil, err
	}
	for _, b := range br.vh.Bindings() {
		if b.Source == br.source && b.Destination == br.dest && b.DestinationType == br.destType && mgPropsKey(b.RoutingKey, b.Arguments) == props {
			return br, mgBindingOut(b), b.Arguments, nil
		}
	}
	return br, mgBindingJSON{}, nil, apiError(http.StatusNotFound, fmt.Sprintf("no binding '%s' from exchange '%s' to %s '%s' in vhost '%s'", props, br.source, br.destType, br.dest, br.vh.Name()))
}

func (m *mgmt) getBinding(c echo.Context) error {
	_, b, _, err := m.findBinding(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (m *mgmt) deleteBinding(c echo.Context) error {
	br, b, args, err := m.findBinding(c)
	if err != nil {
		return err
	}
	err = m.withChannel(c, br.vh.Name(), func(ch *mapping.Channel) error {
		if br.destType == "queue" {
			return ch.UnbindQueue(br.dest, br.source, b.RoutingKey, args)
		}
		return ch.UnbindExchange(br.dest, br.source, b.RoutingKey, args)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
