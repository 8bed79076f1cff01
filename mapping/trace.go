package mapping

// RouteHop is one step of a routing dry run: a binding (or the default
// exchange's implicit binding, or an alternate exchange) that the message
// would follow.
type RouteHop struct {
	Exchange        string // source exchange ("" = the default exchange)
	Destination     string
	DestinationType string // "queue" or "exchange"
	BindingKey      string
	Arguments       Table
	// Via says why the hop is taken: "binding", "default" (the default
	// exchange's implicit binding), or "alternate-exchange".
	Via string
	// RoutingKey is the key being routed at this hop (differs from the
	// message's key for CC/BCC keys).
	RoutingKey string
}

// RouteTrace is what TraceRoute reports.
type RouteTrace struct {
	Queues             []string // in the order the message reaches them
	Hops               []RouteHop
	AlternateExchanges []string // alternate exchanges tried, in order
}

// TraceRoute is a dry run of Publish: which queues a message with this
// routing key and headers would reach from exchange, through which
// bindings, exchange-to-exchange hops and alternate exchanges. It follows
// the same routing as Publish (routeTraced: CC/BCC keys, cycles,
// alternate exchanges only when nothing matched) and checks the same write
// permission, but publishes nothing.
func (ch *Channel) TraceRoute(exchangeName, routingKey string, headers Table) (RouteTrace, error) {
	var tr RouteTrace
	if err := ch.allowed(Write, ResourceExchange, exchangeName); err != nil {
		return tr, err
	}
	vh := ch.vh
	m := &Message{Exchange: exchangeName, RoutingKey: routingKey, Properties: Properties{Headers: headers}}
	if headers != nil {
		m.Properties.Flags |= FlagHeaders
	}
	vh.mu.RLock()
	defer vh.mu.RUnlock()
	e, ok := vh.exchanges[exchangeName]
	if !ok {
		return tr, noExchange(vh.name, exchangeName)
	}
	if e.spec.Internal {
		return tr, errorf(KindAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", exchangeName, vh.name)
	}
	for _, q := range vh.routeTraced(e, m, &tr) {
		tr.Queues = append(tr.Queues, q.name)
	}
	return tr, nil
}
