package mapping

import (
	"fmt"
	"slices"
)

// ExchangeSpec describes an exchange as exchange.declare does.
type ExchangeSpec struct {
	Name       string
	Type       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       Table
}

type exchange struct {
	vh   *VHost
	spec ExchangeSpec

	// Bindings with this exchange as source, indexed for its type.
	bindings []*binding
	direct   map[string][]*binding
	topic    topicTrie[*binding]
	// Bindings with this exchange as destination (exchange-to-exchange).
	incoming []*binding
}

// binding routes from an exchange to a queue or to another exchange.
type binding struct {
	src   *exchange
	key   string
	args  Table
	queue *Queue    // destination queue, or
	dstEx *exchange // destination exchange
}

func (b *binding) destName() string {
	if b.queue != nil {
		return b.queue.name
	}
	return b.dstEx.spec.Name
}

func (b *binding) same(o *binding) bool {
	return b.src == o.src && b.key == o.key && b.queue == o.queue && b.dstEx == o.dstEx && sameTable(b.args, o.args)
}

func newExchange(vh *VHost, spec ExchangeSpec) *exchange {
	return &exchange{vh: vh, spec: spec, direct: map[string][]*binding{}}
}

func validExchangeType(t string) bool {
	switch t {
	case TypeDirect, TypeFanout, TypeTopic, TypeHeaders:
		return true
	}
	return false
}

func (e *exchange) addBinding(b *binding) {
	e.bindings = append(e.bindings, b)
	switch e.spec.Type {
	case TypeDirect:
		e.direct[b.key] = append(e.direct[b.key], b)
	case TypeTopic:
		e.topic.Add(b.key, b)
	}
	if b.dstEx != nil {
		b.dstEx.incoming = append(b.dstEx.incoming, b)
	} else {
		b.queue.bindings = append(b.queue.bindings, b)
	}
}

func removeBinding(list []*binding, b *binding) []*binding {
	if i := slices.Index(list, b); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
}

func (e *exchange) removeBinding(b *binding) {
	e.bindings = removeBinding(e.bindings, b)
	switch e.spec.Type {
	case TypeDirect:
		if l := removeBinding(e.direct[b.key], b); len(l) == 0 {
			delete(e.direct, b.key)
		} else {
			e.direct[b.key] = l
		}
	case TypeTopic:
		e.topic.Remove(b.key, b)
	}
	if b.dstEx != nil {
		b.dstEx.incoming = removeBinding(b.dstEx.incoming, b)
	} else {
		b.queue.bindings = removeBinding(b.queue.bindings, b)
	}
}

func (e *exchange) findBinding(b *binding) *binding {
	for _, o := range e.bindings {
		if o.same(b) {
			return o
		}
	}
	return nil
}

// route adds to out every queue that m reaches from e, following
// exchange-to-exchange bindings. visited stops binding cycles.
func (e *exchange) route(m *Message, out []*Queue, visited []*exchange) ([]*Queue, []*exchange) {
	visited = append(visited, e)
	visit := func(b *binding) {
		if b.queue != nil {
			if !slices.Contains(out, b.queue) {
				out = append(out, b.queue)
			}
			return
		}
		if !slices.Contains(visited, b.dstEx) {
			out, visited = b.dstEx.route(m, out, visited)
		}
	}
	switch e.spec.Type {
	case TypeDirect:
		if e.spec.Name == "" {
			if q := e.vh.queues[m.RoutingKey]; q != nil {
				visit(&binding{src: e, key: m.RoutingKey, queue: q})
			}
			return out, visited
		}
		for _, b := range e.direct[m.RoutingKey] {
			visit(b)
		}
	case TypeFanout:
		for _, b := range e.bindings {
			visit(b)
		}
	case TypeTopic:
		e.topic.Match(m.RoutingKey, visit)
	case TypeHeaders:
		for _, b := range e.bindings {
			if headersMatch(b.args, m.Properties.Headers) {
				visit(b)
			}
		}
	}
	return out, visited
}

// equivalent explains the first difference between an existing exchange and
// a redeclaration, in RabbitMQ's words.
func (e *exchange) equivalent(s ExchangeSpec) error {
	vh := e.vh.name
	diff := func(arg string, got, cur any) error {
		return errorf(KindPreconditionFailed, "inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'", arg, s.Name, vh, got, cur)
	}
	switch {
	case s.Type != e.spec.Type:
		return diff("type", s.Type, e.spec.Type)
	case s.Durable != e.spec.Durable:
		return diff("durable", s.Durable, e.spec.Durable)
	case s.AutoDelete != e.spec.AutoDelete:
		return diff("auto_delete", s.AutoDelete, e.spec.AutoDelete)
	case s.Internal != e.spec.Internal:
		return diff("internal", s.Internal, e.spec.Internal)
	}
	if k, ok := argsDiffer(s.Args, e.spec.Args); ok {
		return diff(k, fmtArg(s.Args, k), fmtArg(e.spec.Args, k))
	}
	return nil
}

func fmtArg(t Table, k string) string {
	v, ok := t[k]
	if !ok {
		return "none"
	}
	return fmt.Sprint(v)
}

// argsDiffer compares the x- arguments (the ones that change behaviour) of
// a declaration; other arguments are informational, as in RabbitMQ.
func argsDiffer(a, b Table) (string, bool) {
	for k, v := range a {
		if !isXArg(k) {
			continue
		}
		w, ok := b[k]
		if !ok || !sameValue(v, w) {
			return k, true
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && isXArg(k) {
			return k, true
		}
	}
	return "", false
}

func isXArg(k string) bool { return len(k) > 2 && k[0] == 'x' && k[1] == '-' || k == "alternate-exchange" }
