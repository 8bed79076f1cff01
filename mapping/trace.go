package mapping

import (
	"slices"
)

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
// the same rules as Publish (CC/BCC keys, cycles, alternate exchanges
// only when nothing matched) and checks the same write permission, but
// publishes nothing.
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
	var qs []*Queue
	visited := e.trace(m, routingKey, &qs, &tr, nil)
	if cc, ok := headers["CC"].([]any); ok {
		for _, k := range cc {
			if key, ok := k.(string); ok {
				e.trace(m, key, &qs, &tr, visited[:0])
			}
		}
	}
	if bcc, ok := headers["BCC"].([]any); ok {
		for _, k := range bcc {
			if key, ok := k.(string); ok {
				e.trace(m, key, &qs, &tr, visited[:0])
			}
		}
	}
	seen := []*exchange{e}
	for cur := e; len(qs) == 0; {
		ae, ok := cur.spec.Args["alternate-exchange"].(string)
		if !ok {
			break
		}
		next := vh.exchanges[ae]
		if next == nil || slices.Contains(seen, next) {
			break
		}
		seen = append(seen, next)
		tr.AlternateExchanges = append(tr.AlternateExchanges, ae)
		tr.Hops = append(tr.Hops, RouteHop{Exchange: cur.spec.Name, Destination: ae, DestinationType: "exchange", Via: "alternate-exchange", RoutingKey: routingKey})
		next.trace(m, routingKey, &qs, &tr, nil)
		cur = next
	}
	for _, q := range qs {
		tr.Queues = append(tr.Queues, q.name)
	}
	return tr, nil
}

// trace mirrors route, recording each binding followed. Called with
// vh.mu held.
func (e *exchange) trace(m *Message, key string, out *[]*Queue, tr *RouteTrace, visited []*exchange) []*exchange {
	visited = append(visited, e)
	visit := func(b *binding) {
		hop := RouteHop{Exchange: e.spec.Name, Destination: b.destName(), DestinationType: "queue", BindingKey: b.key, Arguments: b.args, Via: "binding", RoutingKey: key}
		if b.queue != nil {
			tr.Hops = append(tr.Hops, hop)
			if !slices.Contains(*out, b.queue) {
				*out = append(*out, b.queue)
			}
			return
		}
		hop.DestinationType = "exchange"
		tr.Hops = append(tr.Hops, hop)
		if !slices.Contains(visited, b.dstEx) {
			visited = b.dstEx.trace(m, key, out, tr, visited)
		}
	}
	switch e.spec.Type {
	case TypeDirect:
		if e.spec.Name == "" {
			if q := e.vh.queues[key]; q != nil {
				tr.Hops = append(tr.Hops, RouteHop{Destination: q.name, DestinationType: "queue", BindingKey: key, Via: "default", RoutingKey: key})
				if !slices.Contains(*out, q) {
					*out = append(*out, q)
				}
			}
			return visited
		}
		for _, b := range e.direct[key] {
			visit(b)
		}
	case TypeFanout:
		for _, b := range e.bindings {
			visit(b)
		}
	case TypeTopic:
		e.topic.Match(key, visit)
	case TypeHeaders:
		for _, b := range e.bindings {
			if headersMatch(b.args, m.Properties.Headers) {
				visit(b)
			}
		}
	}
	return visited
}
