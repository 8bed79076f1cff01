package mapping

import "sync/atomic"

// A queue's home is the node that keeps its ready messages in memory and
// dispatches them to consumers. On a single node every queue is at home.
// In a cluster every node holds every queue (routing needs them all), but
// only its home node dispatches it; the other nodes hold a copy that
// forwards publishes to the home and serves consumers through it
// (docs/cluster.md, mapping/README.md "Cluster").
//
//   - exclusive, non-durable and classic durable queues: the node that
//     declared them, for their whole life;
//   - quorum queues: the node whose embedded server leads the queue's
//     replicated stream, so the home moves when the Raft leader does.
type queueHome struct {
	node atomic.Pointer[string] // nil: this node (single node, or not yet known elsewhere)
}

// homeNode is the name of the node that dispatches q; "" on a single node.
func (q *Queue) homeNode() string {
	if p := q.home.node.Load(); p != nil {
		return *p
	}
	return q.vh.r.NodeName()
}

// atHome reports whether this node dispatches q.
func (q *Queue) atHome() bool {
	p := q.home.node.Load()
	return p == nil || *p == q.vh.r.NodeName()
}

// noHome is the home of a quorum queue whose leader stepped down here
// with no successor known yet: not this node (which released it), so
// publishes are retried and consumers wait instead of this node serving
// the queue it no longer holds.
var noHome = ""

// setNoHome records that q has no known home for now (see noHome).
func (q *Queue) setNoHome() { q.home.node.Store(&noHome) }

// setHome records the node that now dispatches q.
func (q *Queue) setHome(node string) {
	if node == "" || node == q.vh.r.NodeName() {
		q.home.node.Store(nil)
		return
	}
	q.home.node.Store(&node)
}

// moves reports whether q's home can move to another node: a quorum
// queue's follows its stream's leader; any other queue lives and dies
// with the node that declared it.
func (q *Queue) moves() bool { return queueTypeOf(q.spec.Args) == QueueTypeQuorum }

// homeDown is RabbitMQ's answer for a queue whose home node is down
// (404 NOT_FOUND, "home node ... is down or inaccessible") to a declare
// on another node and to every request through it (link.request: counts,
// basic.get, basic.consume, purge, delete); nil while the home is running, or not
// known to be down yet (this node just started), and for a quorum queue,
// whose home moves to another member instead. Publishes are still
// retried and then nacked; consumers on other nodes are cancelled
// (link.reattach) (docs/cluster.md).
func (q *Queue) homeDown() error {
	h := q.homeNode()
	if h == "" || q.atHome() || q.moves() || !q.vh.r.nodeSilent(h) {
		return nil
	}
	kind := "queue"
	if q.spec.Durable {
		kind = "durable queue"
	}
	return errorf(KindNotFound, "home node '%s' of %s '%s' in vhost '%s' is down or inaccessible", h, kind, q.name, q.vh.name)
}
