package mapping

import (
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// ShadowCountForTest is how many shadow channels r's link keeps.
func (r *Router) ShadowCountForTest() int {
	if r.link == nil {
		return 0
	}
	r.link.shadowMu.Lock()
	defer r.link.shadowMu.Unlock()
	return len(r.link.shadows)
}

// MoveHomeForTest moves the home of r's copy of a queue, as the quorum
// code does when the stream's leader changes.
func (r *Router) MoveHomeForTest(vhost, name, to string) {
	vh, _ := r.VHost(vhost)
	q := vh.queue(name)
	from := q.homeNode()
	q.setHome(to)
	r.homeMoved(q, from, to)
}

// FeedLinkForTest hands data to the handler of r's link subject what
// ("p", "c", "rq", "d", "r" or "pr.<id>"), as if a node sent it.
func (r *Router) FeedLinkForTest(what string, data []byte) {
	l := r.link
	m := jsstore.BusMsg{Subject: linkPrefix + l.tag + "." + what, Data: data}
	switch {
	case what == "p":
		l.servePublish(m)
	case what == "c":
		l.serveChannel(m)
	case what == "rq":
		l.serveQueue(m)
	case what == "d":
		l.serveDeliveries(m)
	case what == "r":
		l.serveReply(m)
	default:
		l.servePublishResult(m)
	}
}

// LinkFramesForTest returns well-formed frames of each kind for queue
// name in vhost "/", from a client node "nx" (seeds for the fuzz test).
func LinkFramesForTest(name string) map[string][][]byte {
	rec := (&Message{RoutingKey: name, Body: []byte("body")}).encodeRecord()
	hdr := func(op byte) wbuf {
		var b wbuf
		b = append(b, op)
		b.s("nx")
		b.u(7)
		b.u(1)
		b.u(0)
		return b
	}
	consume := hdr(chanOpConsume)
	consume.s("/")
	consume.s("guest")
	consume.s(name)
	consume.s("ctag")
	consume.bool(false)
	consume.bool(false)
	consume.u(10)
	consume.u(0)
	consume.u(0)
	consume.bool(false)
	get := hdr(chanOpGet)
	get.s("/")
	get.s("guest")
	get.s(name)
	get.bool(false)
	settle := hdr(chanOpSettle)
	settle = append(settle, settleRequeue)
	settle.u(2)
	settle.u(1)
	settle.u(1)
	credit := hdr(chanOpCredit)
	credit.u(1 << 30)
	cancel := hdr(chanOpCancel)
	cancel.s("ctag")
	var pub wbuf
	pub.s("/")
	pub.s(name)
	pub.bs(rec)
	var rq wbuf
	rq = append(rq, queueOpPurge)
	rq.s("/")
	rq.s(name)
	rq.s("guest")
	rq.bool(false)
	rq.bool(false)
	var stats wbuf // batched figures (linkops.go statsFrom)
	stats = append(stats, queueOpStatsN)
	stats.s("/")
	stats.s("")
	stats.s("")
	stats.u(2)
	stats.s(name)
	stats.s("missing")
	var d wbuf
	d.s("nx")
	var fr wbuf
	fr = append(fr, outDeliver)
	fr.u(1)
	fr.u(5)
	fr.s("ctag")
	fr = append(fr, 0)
	fr.u(1)
	fr.bs(rec)
	d = append(d, 0, 0, 0, byte(len(fr)))
	d = append(d, fr...)
	var reply wbuf
	reply.s("/")
	reply.bs(rec)
	return map[string][][]byte{
		"c":    {consume, get, settle, credit, cancel, hdr(chanOpClose)},
		"p":    {pub},
		"rq":   {rq, stats},
		"d":    {d},
		"r":    {reply},
		"pr.1": {{ansOK}, {ansRefused}, answerError(ErrNotFound)},
	}
}

// SetHomeForTest records a new home on r's copy without telling the link
// (a node that learns of a move before or without homeMoved).
func (r *Router) SetHomeForTest(vhost, name, to string) {
	vh, _ := r.VHost(vhost)
	vh.queue(name).setHome(to)
}

// AdoptQueueForTest waits until r has its copy of queue s (made by the
// replicated metadata when another node declared it) and records home as
// the node that dispatches it.
func (r *Router) AdoptQueueForTest(vhost string, s QueueSpec, home string) error {
	vh, err := r.VHost(vhost)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if q := vh.queue(s.Name); q != nil {
			q.setHome(home)
			return nil
		}
		if time.Now().After(deadline) {
			return errorf(KindNotFound, "%s has no copy of queue '%s'", r.NodeName(), s.Name)
		}
	}
}

// SwallowForwardsForTest makes r's link take the publishes forwarded to
// it and never answer them, as a home that received them and stopped
// before it stored them (a graceful close drops the answers of the
// writes still pending when its link stops). taken counts them.
func (r *Router) SwallowForwardsForTest() (taken func() int64, err error) {
	return r.swallowLink("p")
}

// SwallowDeclaresForTest does the same with the queue declares other
// nodes place on r, as a node that took one and died before answering.
func (r *Router) SwallowDeclaresForTest() (taken func() int64, err error) {
	return r.swallowLink("qd")
}

func (r *Router) swallowLink(what string) (taken func() int64, err error) {
	l := r.link
	l.stops[what]()
	var n atomic.Int64
	stop, err := l.bus.Subscribe(linkPrefix+l.tag+"."+what, func(jsstore.BusMsg) { n.Add(1) })
	if err != nil {
		return nil, err
	}
	l.stops[what] = stop
	return n.Load, l.bus.Flush()
}

// ForgetNodeForTest drops the heartbeat r heard last from node, as if r
// had not heard it yet (its next one, within a second, is heard again).
func (r *Router) ForgetNodeForTest(node string) {
	cs := r.cluster
	cs.mu.Lock()
	delete(cs.heard, node)
	cs.mu.Unlock()
}

// ForwardsForTest counts r's publish forwards waiting for an answer, and
// how many of them were sent before their home had been heard from.
func (r *Router) ForwardsForTest() (n, unheard int) {
	l := r.link
	l.fwdMu.Lock()
	defer l.fwdMu.Unlock()
	for _, f := range l.fwds {
		n++
		if f.homeInc == 0 {
			unheard++
		}
	}
	return n, unheard
}
