package mapping

import (
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Bindings are visible on every running node before bind-ok, as in
// RabbitMQ (whose bindings are written to every node in one
// transaction). A lookup miss already waits for the watcher (the
// barrier, metawatch.go), but a binding is never looked up: a publish on
// another node that routes a few milliseconds after bind-ok would miss
// it and be dropped (a fanout subscriber losing the first message). So
// after writing a binding the writer asks every running node to say when
// its watcher has applied that revision ("ms" on the link), and answers
// once they all did, or after spreadWait (a node that does not answer in
// time still applies it; only its routing lags).
const spreadWait = 2 * time.Second

// spreadRev is a metadata write to wait for on the other nodes; the zero
// value is nothing to wait for (a single node, or no record written).
type spreadRev struct {
	b   jsstore.Bucket
	rev uint64
}

// spread waits until every other running node applied sp (bounded by
// spreadWait). It holds no lock.
func (r *Router) spread(sp spreadRev) {
	l := r.link
	cs := r.cluster
	if l == nil || cs == nil || sp.rev == 0 {
		return
	}
	cs.mu.Lock()
	var nodes []string
	now := time.Now()
	for name, h := range cs.heard {
		if h.running(now) {
			nodes = append(nodes, name)
		}
	}
	cs.mu.Unlock()
	var req wbuf
	req = append(req, byte(sp.b))
	req.u(sp.rev)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			if _, err := l.bus.Request(subjectOf(n, "ms"), req, spreadWait); err != nil {
				r.log.Debug("metadata change not confirmed by a node in time", "node", n, "err", err)
			}
		})
	}
	wg.Wait()
}

// serveMetaSync answers once this node's watcher applied the revision
// asked for, or after spreadWait.
func (l *link) serveMetaSync(m jsstore.BusMsg) {
	rb := &rbuf{b: m.Data}
	b, rev := rb.byte(), rb.u()
	if rb.bad || l.r.meta == nil || b > byte(jsstore.Live) {
		return
	}
	l.r.meta.caughtUp(jsstore.Bucket(b), rev, time.Now().Add(spreadWait))
	l.bus.Respond(m, []byte{ansOK})
}

// spreadLatest spreads the latest write to the bucket of a durable or
// transient record: this node's own write just made is at or below it.
func (r *Router) spreadLatest(durable bool) {
	if r.link == nil {
		return
	}
	b, ok := r.recordBucket(durable)
	if !ok {
		return
	}
	rev, err := r.store.KVLastRev(b)
	if err != nil {
		return
	}
	r.spread(spreadRev{b, rev})
}
