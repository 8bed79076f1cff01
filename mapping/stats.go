package mapping

import "sync/atomic"

// Stats are broker-wide message counters since start (Prometheus and the
// management API turn them into rates). Fronts add what only they see
// (confirms, returns) through the Count methods.
type Stats struct {
	Published          atomic.Uint64 // messages received from publishers
	Routed             atomic.Uint64 // published messages that reached a queue
	UnroutableDropped  atomic.Uint64
	UnroutableReturned atomic.Uint64
	Delivered          atomic.Uint64 // deliveries to consumers and gets
	DeliveredNoAck     atomic.Uint64
	Redelivered        atomic.Uint64
	Acked              atomic.Uint64
	Confirmed          atomic.Uint64
	DeadLettered       atomic.Uint64
	Expired            atomic.Uint64
}

// Stats returns the router's counters.
func (r *Router) Stats() *Stats { return &r.stats }

// queueStats are one queue's counters.
type queueCounters struct {
	published atomic.Uint64
	delivered atomic.Uint64
	acked     atomic.Uint64
}
