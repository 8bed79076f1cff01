package mapping

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Queue requests through the home (".rq"): counts for declare-ok and the
// management API, purge and delete; and direct reply-to across nodes
// (".r").

const (
	queueOpCounts byte = 'N' // ready, consumers
	queueOpStats  byte = 'I' // QueueStats figures
	queueOpStatsN byte = 'B' // QueueStats figures of many queues of a vhost
	queueOpPurge  byte = 'U'
	queueOpDelete byte = 'L'
	queueOpFlow   byte = 'W' // has the queue drained (flow.go)
	replyOpCheck  byte = 'Y' // is a direct reply-to key consumed here
)

// queueRequest asks q's home; local runs when the home is this node.
func (l *link) queueRequest(q *Queue, user string, op byte, extra func(*wbuf), local func() error) (*rbuf, error) {
	l.waitForwards(q)
	rest, _, err := l.request(q, "rq", func(b *wbuf) {
		*b = append(*b, op)
		b.s(q.vh.name)
		b.s(q.name)
		b.s(user)
		if extra != nil {
			extra(b)
		}
	}, local)
	return rest, err
}

// serveQueue answers queue requests for queues homed here. Purge and
// delete run as the requesting user on a hidden connection, so
// permissions and exclusivity are checked as for a local client.
func (l *link) serveQueue(msg jsstore.BusMsg) {
	rb := &rbuf{b: msg.Data}
	op, vhost, name, user := rb.byte(), rb.s(), rb.s(), rb.s()
	if rb.bad {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed queue request")))
		return
	}
	if op == queueOpStatsN {
		l.serveStatsBatch(msg, vhost, rb)
		return
	}
	if op == replyOpCheck {
		vh, err := l.r.VHost(vhost)
		if err == nil && vh.replyConsumed(name) {
			l.bus.Respond(msg, []byte{ansOK})
		} else {
			l.bus.Respond(msg, answerError(noQueue(vhost, name)))
		}
		return
	}
	if ans := l.checkHome(vhost, name); ans != nil {
		l.bus.Respond(msg, ans)
		return
	}
	vh, _ := l.r.VHost(vhost)
	q := vh.queue(name)
	var b wbuf
	b = append(b, ansOK)
	switch op {
	case queueOpCounts:
		m, c := q.counts()
		b.u(uint64(m))
		b.u(uint64(c))
	case queueOpStats:
		putFigures(&b, q.localStats())
	case queueOpFlow:
		b.bool(q.drainedBelow(flowLowWater))
	case queueOpPurge, queueOpDelete:
		ifUnused, ifEmpty := rb.bool(), rb.bool()
		if err := l.r.CheckVHostAccess(user, vhost); err != nil {
			l.bus.Respond(msg, answerError(err))
			return
		}
		conn := vh.connect(user, ConnInfo{Name: "cluster link", Protocol: "cluster link", Hidden: true})
		ch := conn.OpenChannel(0, nopSink{})
		var n int
		var err error
		if op == queueOpPurge {
			n, err = ch.PurgeQueue(name)
		} else {
			n, err = ch.DeleteQueue(name, ifUnused, ifEmpty)
		}
		conn.Close()
		if err != nil {
			l.bus.Respond(msg, answerError(err))
			return
		}
		b.u(uint64(n))
	default:
		l.bus.Respond(msg, answerError(errorf(KindInternal, "unknown queue request %q", op)))
		return
	}
	l.bus.Respond(msg, b)
}

type nopSink struct{}

func (nopSink) Deliver(Delivery) bool   { return true }
func (nopSink) Cancelled(string, error) {}

// countsAnywhere is counts() for declare-ok: from the home when that is
// another node.
func (ch *Channel) countsAnywhere(q *Queue) (int, int, error) {
	l := ch.vh.r.link
	if l == nil || q.atHome() {
		m, c := q.counts()
		return m, c, nil
	}
	var m, c int
	rest, err := l.queueRequest(q, ch.conn.user, queueOpCounts, nil, func() error {
		m, c = q.counts()
		return nil
	})
	if err != nil || rest == nil {
		return m, c, err
	}
	m, c = int(rest.u()), int(rest.u())
	return m, c, nil
}

// purgeRemote and deleteRemote run purge and delete on the home.
func (ch *Channel) purgeRemote(q *Queue) (n int, err error) {
	rest, err := ch.vh.r.link.queueRequest(q, ch.conn.user, queueOpPurge, func(b *wbuf) { b.bool(false); b.bool(false) },
		func() error { n, err = ch.PurgeQueue(q.name); return err })
	if err != nil || rest == nil {
		return n, err
	}
	return int(rest.u()), nil
}

func (ch *Channel) deleteRemote(q *Queue, ifUnused, ifEmpty bool) (n int, err error) {
	rest, err := ch.vh.r.link.queueRequest(q, ch.conn.user, queueOpDelete, func(b *wbuf) { b.bool(ifUnused); b.bool(ifEmpty) },
		func() error { n, err = ch.DeleteQueue(q.name, ifUnused, ifEmpty); return err })
	if errors.Is(err, ErrNotFound) && q.homeDown() == nil {
		// Deleted at its home meanwhile (auto-delete, expiry, another
		// client) and not yet here: delete-ok, as for a missing queue.
		// (A home known to be down is RabbitMQ's 404, which stands: the
		// queue is still there.)
		return 0, nil
	}
	if err != nil || rest == nil {
		return n, err
	}
	return int(rest.u()), nil
}

// remoteStats fills the figures of a queue homed elsewhere from its home
// (one request; the listing keeps this node's zeros when the home does
// not answer within statsTimeout).
func (l *link) remoteStats(q *Queue, s *QueueStats) {
	home := q.homeNode()
	if !l.r.nodeRunning(home) {
		return // not heard from: do not wait for it in a listing
	}
	var b wbuf
	b = append(b, queueOpStats)
	b.s(q.vh.name)
	b.s(q.name)
	b.s("")
	data, err := l.bus.Request(subjectOf(home, "rq"), b, statsTimeout)
	if err != nil {
		return
	}
	rest, _, err := readAnswer(data, q)
	if err != nil || rest == nil {
		return
	}
	getFigures(rest, s)
}

// The figures a home sends for a queue, in this order.
func putFigures(b *wbuf, s QueueStats) {
	for _, v := range []uint64{uint64(s.Ready), uint64(s.Unacked), uint64(s.Consumers), uint64(s.ReadyBytes), s.Published, s.Delivered, s.Acked} {
		b.u(v)
	}
}

// getFigures reads putFigures' figures into s (left alone when rb is bad).
func getFigures(rb *rbuf, s *QueueStats) {
	var v [7]uint64
	for i := range v {
		v[i] = rb.u()
	}
	if rb.bad {
		return
	}
	s.Ready, s.Unacked, s.Consumers, s.ReadyBytes = int(v[0]), int(v[1]), int(v[2]), int64(v[3])
	s.Published, s.Delivered, s.Acked = v[4], v[5], v[6]
}

// statsBatch bounds the queue names of one batched stats request (a few
// tens of KiB of names, far below the NATS payload limit).
const statsBatch = 1000

// remoteStatsBatch fills out[i] for each i in away (queues of one vhost
// homed elsewhere) from their homes: one request per home and batch of
// statsBatch names, all homes asked at once, so a listing waits for the
// slowest home once (at most statsTimeout) instead of for every queue in
// turn. A home not heard from, or not answering, leaves zeros.
func (l *link) remoteStatsBatch(qs []*Queue, out []QueueStats, away []int) {
	byHome := map[string][]int{}
	for _, i := range away {
		if home := qs[i].homeNode(); l.r.nodeRunning(home) {
			byHome[home] = append(byHome[home], i)
		}
	}
	var wg sync.WaitGroup
	for home, idx := range byHome {
		for len(idx) > 0 {
			part := idx[:min(len(idx), statsBatch)]
			idx = idx[len(part):]
			wg.Go(func() { l.statsFrom(home, qs, out, part) })
		}
	}
	wg.Wait()
}

// statsFrom asks home for the figures of qs[i], i in idx (one vhost);
// each goroutine writes its own out[i].
func (l *link) statsFrom(home string, qs []*Queue, out []QueueStats, idx []int) {
	var b wbuf
	b = append(b, queueOpStatsN)
	b.s(qs[idx[0]].vh.name)
	b.s("")
	b.s("")
	b.u(uint64(len(idx)))
	for _, i := range idx {
		b.s(qs[i].name)
	}
	data, err := l.bus.Request(subjectOf(home, "rq"), b, statsTimeout)
	if err != nil {
		return
	}
	rest, _, err := readAnswer(data, qs[idx[0]])
	if err != nil || rest == nil {
		return
	}
	for _, i := range idx {
		if rest.bool() { // homed there
			getFigures(rest, &out[i])
		}
		if rest.bad {
			return
		}
	}
}

// serveStatsBatch answers statsFrom: for each name, whether this node is
// its home and then its figures.
func (l *link) serveStatsBatch(msg jsstore.BusMsg, vhost string, rb *rbuf) {
	n := rb.u()
	if rb.bad || n > statsBatch {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed queue stats request")))
		return
	}
	vh, err := l.r.VHost(vhost)
	if err != nil {
		l.bus.Respond(msg, answerError(err))
		return
	}
	var b wbuf
	b = append(b, ansOK)
	for range n {
		q := vh.queue(rb.s())
		if rb.bad {
			l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed queue stats request")))
			return
		}
		home := q != nil && q.atHome()
		b.bool(home)
		if home {
			putFigures(&b, q.localStats())
		}
	}
	l.bus.Respond(msg, b)
}

const statsTimeout = 2 * time.Second

// ---- direct reply-to across nodes ----

// replyKeyPrefix is the start of this node's direct reply-to keys: in a
// cluster the key names the node of the channel that consumes it, so a
// reply published on any node finds it.
func (r *Router) replyKeyPrefix() string {
	if r.link == nil {
		return DirectReplyTo + "."
	}
	return DirectReplyTo + "." + r.link.tag + "."
}

// replyNode is the node a direct reply-to key belongs to ("" for this
// node, or a key of a single node's form).
func (r *Router) replyNode(key string) string {
	if r.link == nil {
		return ""
	}
	rest := strings.TrimPrefix(key, DirectReplyTo+".")
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return ""
	}
	node, ok := nodeOfTag(rest[:i])
	if !ok || node == r.link.node {
		return ""
	}
	return node
}

// sendReply hands a reply to the node whose channel consumes its key: at
// most once, as RabbitMQ's direct reply-to (a reply for a node that is
// gone is dropped).
func (l *link) sendReply(node string, vh *VHost, m *Message) {
	var b wbuf
	b.s(vh.name)
	b.bs(m.logRecord())
	if err := l.bus.Publish(subjectOf(node, "r"), "", b); err != nil {
		l.r.log.Debug("link: reply not sent", "node", node, "err", err)
	}
}

// replyConsumed asks node whether a direct reply-to key of its is
// consumed (passive queue.declare of the key, as RabbitMQ answers it).
func (l *link) replyConsumed(node string, vh *VHost, key string) bool {
	var b wbuf
	b = append(b, replyOpCheck)
	b.s(vh.name)
	b.s(key)
	b.s("")
	data, err := l.bus.Request(subjectOf(node, "rq"), b, statsTimeout)
	return err == nil && len(data) > 0 && data[0] == ansOK
}

func (vh *VHost) replyConsumed(key string) bool {
	vh.replyMu.RLock()
	defer vh.replyMu.RUnlock()
	return vh.replies[key] != nil
}

func (l *link) serveReply(msg jsstore.BusMsg) {
	rb := &rbuf{b: msg.Data}
	vhost, rec := rb.s(), rb.bs()
	if rb.bad {
		return
	}
	vh, err := l.r.VHost(vhost)
	if err != nil {
		return
	}
	m, err := decodeRecord(rec)
	if err != nil {
		return
	}
	vh.deliverReply(m)
}

// flowDrained asks q's home whether q drained below its low water mark
// (WaitFlow of a publisher held for it). One try, bounded by
// flowMaxWait: a home that does not answer, or moved, holds nobody.
func (l *link) flowDrained(q *Queue) bool {
	var b wbuf
	b = append(b, queueOpFlow)
	b.s(q.vh.name)
	b.s(q.name)
	b.s("")
	data, err := l.bus.Request(subjectOf(q.homeNode(), "rq"), b, flowMaxWait)
	if err != nil {
		return true
	}
	rest, moved, err := readAnswer(data, q)
	if err != nil || moved {
		return true
	}
	drained := rest.bool()
	return drained || rest.bad
}
