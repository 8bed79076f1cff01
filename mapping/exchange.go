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

	// Bindings with this exchange as source, indexed for its type, and
	// by destination (to find one binding without scanning them all).
	bindings []*binding
	pos      map[*binding]int // index in bindings
	byDest   map[any][]*binding
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
	// metaKey is its record's key in a cluster (VHost.bindIdx); "" on a
	// single node.
	metaKey string
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
	return &exchange{vh: vh, spec: spec, direct: map[string][]*binding{}, pos: map[*binding]int{}, byDest: map[any][]*binding{}}
}

func validExchangeType(t string) bool {
	switch t {
	case TypeDirect, TypeFanout, TypeTopic, TypeHeaders:
		return true
	}
	return false
}

// dest is the binding's destination as a map key.
func (b *binding) dest() any {
	if b.queue != nil {
		return b.queue
	}
	return b.dstEx
}

func (e *exchange) addBinding(b *binding) {
	e.pos[b] = len(e.bindings)
	e.bindings = append(e.bindings, b)
	e.byDest[b.dest()] = append(e.byDest[b.dest()], b)
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
	// Swap-remove: the order of an exchange's bindings does not matter.
	if i, ok := e.pos[b]; ok {
		last := len(e.bindings) - 1
		e.bindings[i] = e.bindings[last]
		e.pos[e.bindings[i]] = i
		e.bindings[last] = nil
		e.bindings = e.bindings[:last]
		delete(e.pos, b)
	}
	if l := removeBinding(e.byDest[b.dest()], b); len(l) == 0 {
		delete(e.byDest, b.dest())
	} else {
		e.byDest[b.dest()] = l
	}
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
	for _, o := range e.byDest[b.dest()] {
		if o.same(b) {
			return o
		}
	}
	return nil
}

// queueSet collects the queues a message reaches, once each: a short
// list scanned linearly, and a map once it is long (fanout to thousands).
type queueSet struct {
	list []*Queue
	seen map[*Queue]struct{}
	tr   *RouteTrace // a dry run (TraceRoute) records each hop here
}

const queueSetLinear = 16

func (s *queueSet) add(q *Queue) {
	if s.seen != nil {
		if _, ok := s.seen[q]; ok {
			return
		}
		s.seen[q] = struct{}{}
	} else if slices.Contains(s.list, q) {
		return
	}
	s.list = append(s.list, q)
	if s.seen == nil && len(s.list) > queueSetLinear {
		s.seen = make(map[*Queue]struct{}, 2*len(s.list))
		for _, x := range s.list {
			s.seen[x] = struct{}{}
		}
	}
}

// route adds to out every queue that m reaches from e, following
// exchange-to-exchange bindings. visited stops binding cycles.
func (e *exchange) route(m *Message, key string, out *queueSet, visited []*exchange) []*exchange {
	visited = append(visited, e)
	visit := func(b *binding) {
		if out.tr != nil {
			kind := "queue"
			if b.queue == nil {
				kind = "exchange"
			}
			out.tr.Hops = append(out.tr.Hops, RouteHop{Exchange: e.spec.Name, Destination: b.destName(), DestinationType: kind, BindingKey: b.key, Arguments: b.args, Via: "binding", RoutingKey: key})
		}
		if b.queue != nil {
			out.add(b.queue)
			return
		}
		if !slices.Contains(visited, b.dstEx) {
			visited = b.dstEx.route(m, key, out, visited)
		}
	}
	switch e.spec.Type {
	case TypeDirect:
		if e.spec.Name == "" {
			if q := e.vh.queues[key]; q != nil {
				if out.tr != nil {
					out.tr.Hops = append(out.tr.Hops, RouteHop{Destination: q.name, DestinationType: "queue", BindingKey: key, Via: "default", RoutingKey: key})
				}
				out.add(q)
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
		return argMismatch("exchange", s.Name, vh, k, s.Args, e.spec.Args)
	}
	return nil
}

// argMismatch words a differing argument as RabbitMQ does: "received
// the value '10' of type 'signedint' but current is none".
func argMismatch(kind, name, vh, k string, got, cur Table) error {
	gv, gok := got[k]
	cv, cok := cur[k]
	if gok && cok {
		return errorf(KindPreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received '%v' but current is '%v'", k, kind, name, vh, gv, cv)
	}
	describe := func(t Table) string {
		v, ok := t[k]
		if !ok {
			return "none"
		}
		return fmt.Sprintf("the value '%v' of type '%s'", v, amqpTypeName(v))
	}
	return errorf(KindPreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received %s but current is %s", k, kind, name, vh, describe(got), describe(cur))
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

func isXArg(k string) bool {
	return len(k) > 2 && k[0] == 'x' && k[1] == '-' || k == "alternate-exchange"
}
