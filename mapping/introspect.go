package mapping

import "sort"

// QueueStats is a queue as the management API and `warren ctl` show it.
type QueueStats struct {
	VHost      string
	Name       string
	Durable    bool
	AutoDelete bool
	Exclusive  bool
	Type       string // QueueTypeClassic or QueueTypeQuorum
	Owner      string // connection name of an exclusive queue
	Node       string // in a cluster, the node that dispatches it (home.go); "" on a single node
	Arguments  Table
	Ready      int
	Unacked    int
	Consumers  int
	ReadyBytes int64
	Published  uint64 // counters since start, for rates
	Delivered  uint64
	Acked      uint64
	// A quorum queue on a replicated log (ownership.go): the node that
	// leads it (its home), the nodes holding a replica and those of them
	// that are current. Empty for other queues.
	Leader  string
	Members []string
	Online  []string
}

// Messages is ready plus unacknowledged.
func (s QueueStats) Messages() int { return s.Ready + s.Unacked }

func (q *Queue) stats() QueueStats {
	s := q.localStats()
	if l := q.vh.r.link; l != nil && !q.atHome() {
		l.remoteStats(q, &s) // the home's figures (linkops.go)
	}
	return s
}

// localStats is stats without asking the home: a copy that is not at
// home reports its definition and zero figures.
func (q *Queue) localStats() QueueStats {
	q.mu.Lock()
	q.expireLocked()
	s := QueueStats{
		VHost: q.vh.name, Name: q.name, Durable: q.spec.Durable, AutoDelete: q.spec.AutoDelete,
		Exclusive: q.spec.Exclusive, Type: queueTypeOf(q.spec.Args), Arguments: q.spec.Args, Ready: q.readyLenLocked(), Unacked: q.unacked,
		Consumers: len(q.consumers), ReadyBytes: q.readyBytesLocked(),
		Published: q.counters.published.Load(), Delivered: q.counters.delivered.Load(), Acked: q.counters.acked.Load(),
	}
	q.unlockAndDeadLetter()
	if q.owner != nil {
		s.Owner = q.owner.info.Name
	}
	s.Node = q.homeNode()
	if leader, members, online, ok := q.replicas(); ok {
		s.Leader, s.Members, s.Online = leader, members, online
	}
	return s
}

// Queues lists the vhost's queues, sorted by name. In a cluster the
// figures of queues homed on other nodes come from their homes, one
// batched request per home, the homes asked in parallel (linkops.go).
func (vh *VHost) Queues() []QueueStats {
	qs := vh.queueList(false)
	out := make([]QueueStats, len(qs))
	var away []int
	for i, q := range qs {
		out[i] = q.localStats()
		if !q.atHome() {
			away = append(away, i)
		}
	}
	if l := vh.r.link; l != nil && len(away) > 0 {
		l.remoteStatsBatch(qs, out, away)
	}
	return out
}

// HomedQueues lists the vhost's queues that this node dispatches (all of
// them on a single node), sorted by name, with no request to another
// node: what a node's own metrics report.
func (vh *VHost) HomedQueues() []QueueStats { return vh.localList(true) }

// QueueDefinitions lists every queue of the vhost as this node holds it,
// sorted by name, with no request to another node: definitions are
// right, the figures of queues homed elsewhere are zero (for exports).
func (vh *VHost) QueueDefinitions() []QueueStats { return vh.localList(false) }

func (vh *VHost) localList(homed bool) []QueueStats {
	qs := vh.queueList(homed)
	out := make([]QueueStats, len(qs))
	for i, q := range qs {
		out[i] = q.localStats()
	}
	return out
}

// queueList is the vhost's queues sorted by name, only those at home
// when homed.
func (vh *VHost) queueList(homed bool) []*Queue {
	vh.mu.RLock()
	qs := make([]*Queue, 0, len(vh.queues))
	for _, q := range vh.queues {
		if !homed || q.atHome() {
			qs = append(qs, q)
		}
	}
	vh.mu.RUnlock()
	sort.Slice(qs, func(i, j int) bool { return qs[i].name < qs[j].name })
	return qs
}

// QueueCount is how many queues this node holds: those it dispatches
// (Homed) and the copies of queues other nodes dispatch (Copies).
func (r *Router) QueueCount() (homed, copies int) {
	r.mu.RLock()
	vhs := make([]*VHost, 0, len(r.vhosts))
	for _, vh := range r.vhosts {
		vhs = append(vhs, vh)
	}
	r.mu.RUnlock()
	for _, vh := range vhs {
		vh.mu.RLock()
		for _, q := range vh.queues {
			if q.atHome() {
				homed++
			} else {
				copies++
			}
		}
		vh.mu.RUnlock()
	}
	return homed, copies
}

// Queue returns one queue's stats.
func (vh *VHost) Queue(name string) (QueueStats, error) {
	vh.mu.RLock()
	q := vh.queues[name]
	vh.mu.RUnlock()
	if q == nil {
		return QueueStats{}, noQueue(vh.name, name)
	}
	return q.stats(), nil
}

// ExchangeInfo is an exchange as the management API shows it.
type ExchangeInfo struct {
	VHost string
	ExchangeSpec
}

// Exchanges lists the vhost's exchanges (the default one as ""), sorted.
func (vh *VHost) Exchanges() []ExchangeInfo {
	vh.mu.RLock()
	out := make([]ExchangeInfo, 0, len(vh.exchanges))
	for _, e := range vh.exchanges {
		out = append(out, ExchangeInfo{VHost: vh.name, ExchangeSpec: e.spec})
	}
	vh.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Exchange returns one exchange.
func (vh *VHost) Exchange(name string) (ExchangeInfo, error) {
	vh.mu.RLock()
	defer vh.mu.RUnlock()
	e := vh.exchanges[name]
	if e == nil {
		return ExchangeInfo{}, noExchange(vh.name, name)
	}
	return ExchangeInfo{VHost: vh.name, ExchangeSpec: e.spec}, nil
}

// BindingInfo is a binding as the management API shows it. The default
// exchange's implicit bindings are listed too, as RabbitMQ does.
type BindingInfo struct {
	VHost           string
	Source          string
	Destination     string
	DestinationType string // "queue" or "exchange"
	RoutingKey      string
	Arguments       Table
}

// Bindings lists every binding of the vhost, sorted.
func (vh *VHost) Bindings() []BindingInfo {
	vh.mu.RLock()
	var out []BindingInfo
	for name := range vh.queues {
		out = append(out, BindingInfo{VHost: vh.name, Source: "", Destination: name, DestinationType: "queue", RoutingKey: name})
	}
	for _, e := range vh.exchanges {
		for _, b := range e.bindings {
			bi := BindingInfo{VHost: vh.name, Source: e.spec.Name, Destination: b.destName(), DestinationType: "queue", RoutingKey: b.key, Arguments: b.args}
			if b.dstEx != nil {
				bi.DestinationType = "exchange"
			}
			out = append(out, bi)
		}
	}
	vh.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Destination != b.Destination {
			return a.Destination < b.Destination
		}
		return a.RoutingKey < b.RoutingKey
	})
	return out
}
