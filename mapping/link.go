package mapping

import (
	"encoding/base64"
	"encoding/binary"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// The node link: in a cluster every node holds a *Queue for every queue,
// but only the queue's home dispatches it (home.go). The link makes a
// copy that is not at home behave like the queue for this node's
// clients, by talking to the home over core NATS (the embedded server's
// routes). mapping/README.md "Cluster: the node link" describes the
// protocol; in short, every node subscribes to subjects addressed to it:
//
//	warren.n.<node>.p        publish forwards (reply warren.n.<from>.pr.<id>)
//	warren.n.<node>.c        shadow-channel operations, in order: consume,
//	                         cancel, get, settle, credit, qos, flow, close
//	warren.n.<node>.rq       queue requests: counts, figures (one queue or
//	                         a batch), purge, delete
//	warren.n.<node>.d        deliveries and consumer cancels, batched
//	warren.n.<node>.r        direct reply-to messages (at most once)
//	warren.n.<node>.qd       declares of queues placed on this node
//	warren.n.<node>.ms       metadata sync: answered once a revision is applied
//	warren.n.<node>.pr.<id>  publish results
//
// <node> is nodeTag(name). Frames are a kind byte and uvarint-prefixed
// fields (linkwire.go); message content is the queue-log record encoding
// (Message.record, decodeRecord).
type link struct {
	r    *Router
	bus  *jsstore.Bus
	node string
	tag  string
	inc  uint64

	stops map[string]func() // by subject suffix ("p", "c", ...)
	quit  chan struct{}
	done  chan struct{}

	// Publisher side (linkpublish.go).
	fwdMu   sync.Mutex // LEAF
	fwds    map[uint64]*forward
	lines   map[*Queue]*retryLine // forwards waiting to be sent again
	nextFwd uint64
	budgets sync.Map // home node -> *linkBudget

	// Client side: channels with consumers or deliveries served by
	// another node's shadow channel (linkconsume.go).
	chansMu  sync.Mutex // LEAF
	chans    map[uint64]*Channel
	nextChan uint64

	// Home side: shadow channels serving other nodes' channels, and the
	// batched frames waiting for the flusher.
	shadowMu sync.Mutex // LEAF
	shadows  map[shadowKey]*shadow
	outMu    sync.Mutex          // LEAF
	out      map[string][][]byte // destination node -> batches of frames
	outKick  chan struct{}
	outWG    sync.WaitGroup

	counters linkCounters // for metrics (linkstats.go)

	reattaching atomic.Bool    // a re-attach round runs (watch)
	bg          sync.WaitGroup // that round's goroutine

	// Home side of declares placed here by other nodes (linkdeclare.go):
	// one goroutine each, waited for by stopLink.
	declMu      sync.Mutex // LEAF
	declStopped bool
	declWG      sync.WaitGroup
}

const (
	linkPrefix = "warren.n."
	// forwardRetryFor bounds how long a publish forward is retried while
	// its queue has no home answering (a home in transition).
	forwardRetryFor = 10 * time.Second
	// linkTimeout is how long an answer may take before the sender gives
	// up; nothing sent is retried after it (the home may have acted).
	linkTimeout = 30 * time.Second
	// linkBudget bounds the bytes of publish forwards in flight to one
	// home: a fast publisher is held as the store appender holds it.
	linkBudgetBytes = 16 << 20
	// shadowWindow bounds the delivery bytes a shadow channel sends ahead
	// of the client node's credit.
	shadowWindow = 1 << 20
	// outChunk: a batch of frames to one node is published once it
	// reaches this size (frames are not split).
	outChunk = 1 << 20
)

// nodeTag is a node name as one subject token (and direct reply-to key
// part): URL-safe base64, which has neither '.' nor wildcards.
func nodeTag(node string) string { return base64.RawURLEncoding.EncodeToString([]byte(node)) }

func nodeOfTag(tag string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tag)
	return string(b), err == nil && len(b) > 0
}

func subjectOf(node, what string) string { return linkPrefix + nodeTag(node) + "." + what }

// startLink opens the bus and subscribes to this node's subjects.
func (r *Router) startLink(cs *clusterState) error {
	bus, err := r.store.OpenBus()
	if err != nil {
		return err
	}
	l := &link{r: r, bus: bus, node: cs.node, tag: nodeTag(cs.node), inc: cs.incarnation,
		stops: map[string]func(){}, quit: make(chan struct{}), done: make(chan struct{}),
		fwds: map[uint64]*forward{}, lines: map[*Queue]*retryLine{}, chans: map[uint64]*Channel{}, shadows: map[shadowKey]*shadow{},
		out: map[string][][]byte{}, outKick: make(chan struct{}, 1)}
	r.link = l // before a handler may enqueue (which looks at r.link)
	for what, fn := range map[string]func(jsstore.BusMsg){
		"p": l.servePublish, "c": l.serveChannel, "rq": l.serveQueue, "d": l.serveDeliveries,
		"r": l.serveReply, "pr.*": l.servePublishResult, "ms": l.serveMetaSync, "qd": l.serveDeclare,
	} {
		stop, err := bus.Subscribe(linkPrefix+l.tag+"."+what, fn)
		if err != nil {
			for _, s := range l.stops {
				s()
			}
			bus.Close()
			r.link = nil
			return err
		}
		l.stops[what] = stop
	}
	l.outWG.Add(1)
	go l.flusher()
	go l.watch(cs)
	return nil
}

// stopLink stops the watcher and the flusher, fails forwards still in
// flight, closes the shadow channels and the bus.
func (r *Router) stopLink() {
	l := r.link
	if l == nil {
		return
	}
	close(l.quit)
	<-l.done
	l.bg.Wait()
	l.declMu.Lock()
	l.declStopped = true
	l.declMu.Unlock()
	l.declWG.Wait()
	l.outWG.Wait()
	for _, s := range l.stops {
		s()
	}
	l.failForwards(func(*forward) string { return "shutdown" })
	for _, sh := range l.shadowList() {
		l.closeShadow(sh.key)
	}
	l.bus.Close()
}

// watch runs once a second: it expires forwards that got no answer, and
// compares the heartbeats with the nodes this one serves or is served by.
// A node silent for hbTimeout, or heard with a new incarnation, has lost
// its shadow channels here (their unacked messages are requeued) and its
// consumers of this node's clients are re-attached elsewhere.
func (l *link) watch(cs *clusterState) {
	defer close(l.done)
	t := time.NewTicker(hbInterval)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		alive := map[string]liveNode{}
		cs.mu.Lock()
		for name, h := range cs.heard {
			if h.running(now) {
				alive[name] = liveNode{inc: h.hb.Incarnation, started: h.at.Add(-h.hb.Stats.Uptime)}
			}
		}
		stopped := maps.Clone(cs.said)
		cs.mu.Unlock()
		failed := l.failForwards(func(f *forward) string { return forwardLost(f, now, alive, stopped) })
		for k, n := range failed {
			l.r.log.Warn("publish forwards nacked: no answer from their queue's home", "node", k[0], "why", k[1], "count", n)
		}
		l.dropDeadShadows(alive, stopped)
		// Re-attaching waits for homes (up to forwardRetryFor each):
		// on its own goroutine, one round at a time, so expiries and
		// dead shadows are not held up.
		if l.reattaching.CompareAndSwap(false, true) {
			l.bg.Add(1)
			go func() {
				defer l.bg.Done()
				defer l.reattaching.Store(false)
				l.reattach(alive, stopped)
			}()
		}
	}
}

// liveNode is a node heard from within hbTimeout: the incarnation of its
// last heartbeat, and when that process started, by its own uptime (no
// clock is compared across machines; the heartbeat's transit only makes
// the start look later, by milliseconds).
type liveNode struct {
	inc     uint64
	started time.Time
}

// stoppedNode is a node whose last heartbeat said it stops (a graceful
// stop): that incarnation, and when it said so.
type stoppedNode struct {
	inc uint64
	at  time.Time
}

// saidStop reports whether stopped holds node's incarnation inc, which
// then answers nothing more (inc 0: not heard when the request was
// made, so any incarnation of it).
func saidStop(stopped map[string]stoppedNode, node string, inc uint64) bool {
	n, ok := stopped[node]
	return ok && (inc == 0 || inc == n.inc)
}

// forwardLost is the one rule for a forward still waiting for its answer
// (the watcher applies it every hbInterval): it says why the forward is
// failed now (nacked, never retried: the home may have stored it), or
// "" to wait on. A forward fails after linkTimeout, and hbTimeout after
// it was sent when its home has stopped since (not heard from for
// hbTimeout) or restarted: the process heard now is not the one the
// forward went to, and the new one never answers the old one's
// requests. That process is known by the incarnation heard when the
// forward was sent; when the home had not been heard from yet (the
// first second after either node started), by its start: a process
// that started after the send did not get it. A home that said it stops
// (its last heartbeat, sent once its link was closed) answers none of
// the forwards sent to it before: they fail at once.
func forwardLost(f *forward, now time.Time, alive map[string]liveNode, stopped map[string]stoppedNode) string {
	if f.retrying {
		return "" // not sent: waiting for its retry
	}
	if now.After(f.deadline) {
		return "no answer in time"
	}
	if f.sent.Before(stopped[f.home].at) && saidStop(stopped, f.home, f.homeInc) {
		return "the node stopped (it said so)"
	}
	if now.Sub(f.sent) <= hbTimeout {
		return ""
	}
	home, up := alive[f.home]
	switch {
	case !up:
		return "the node stopped"
	case f.homeInc != 0 && home.inc != f.homeInc:
		return "the node restarted"
	case f.homeInc == 0 && home.started.After(f.sent):
		return "the node restarted (it was not heard from when they were sent)"
	}
	return ""
}

// ---- frames ----

// wbuf builds a frame: a kind byte, then uvarints and length-prefixed
// strings and byte strings.
type wbuf []byte

func (b *wbuf) u(v uint64) { *b = binary.AppendUvarint(*b, v) }
func (b *wbuf) s(v string) { b.u(uint64(len(v))); *b = append(*b, v...) }
func (b *wbuf) bs(v []byte) {
	b.u(uint64(len(v)))
	*b = append(*b, v...)
}
func (b *wbuf) bool(v bool) {
	if v {
		*b = append(*b, 1)
	} else {
		*b = append(*b, 0)
	}
}

// rbuf reads a frame; a short or malformed frame sets bad, and every
// later read returns zero values.
type rbuf struct {
	b   []byte
	bad bool
}

func (r *rbuf) u() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) bs() []byte {
	n := r.u()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *rbuf) s() string { return string(r.bs()) }

func (r *rbuf) bool() bool {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return false
	}
	v := r.b[0] != 0
	r.b = r.b[1:]
	return v
}

func (r *rbuf) byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Answers to requests: a status byte, then for an error its Kind and text.
const (
	ansOK      byte = iota
	ansError        // Kind, text
	ansMoved        // the queue's home is not (or no longer) this node
	ansRefused      // a publish refused: Refusal, Kind, text
)

func answerError(err error) []byte {
	var b wbuf
	if err == ErrClosed {
		err = errorf(KindResourceError, "node is shutting down")
	}
	e := asError(err)
	b = append(b, ansError)
	b.u(uint64(e.Kind))
	b.s(e.Text)
	return b
}

func movedAnswer() []byte { return []byte{ansMoved} }

// readAnswer decodes an answer's status; rest is what follows ansOK.
func readAnswer(data []byte, q *Queue) (rest *rbuf, moved bool, err error) {
	rb := &rbuf{b: data}
	switch rb.byte() {
	case ansOK:
		return rb, false, nil
	case ansMoved:
		return nil, true, nil
	case ansError:
		k := Kind(rb.u())
		t := rb.s()
		if !rb.bad {
			return nil, false, &Error{Kind: k, Text: t}
		}
	}
	return nil, false, errorf(KindInternal, "queue '%s' in vhost '%s': bad answer from its home node", q.name, q.vh.name)
}

// request sends a request about q to its home and waits for the answer,
// retrying while nobody answers or the node asked is no longer the home
// (a home in transition), for up to forwardRetryFor, and not once a
// classic queue's home is known to be down (homeDown's 404). local runs
// instead when the home is (or becomes) this node.
func (l *link) request(q *Queue, what string, frame func(*wbuf), local func() error) (*rbuf, string, error) {
	back := 20 * time.Millisecond
	until := time.Now().Add(forwardRetryFor)
	for {
		if q.atHome() {
			return nil, "", local()
		}
		if err := q.homeDown(); err != nil {
			return nil, "", err // a classic queue's home is known to be down: not worth waiting
		}
		home := q.homeNode()
		var b wbuf
		frame(&b)
		data, err := l.bus.Request(subjectOf(home, what), b, linkTimeout)
		moved := false
		var rest *rbuf
		switch {
		case err == jsstore.ErrNoResponders:
			moved = true
		case err == jsstore.ErrNoAnswer:
			return nil, "", errorf(KindResourceError, "queue '%s' in vhost '%s': its home node %s did not answer in %v", q.name, q.vh.name, home, linkTimeout)
		case err != nil:
			return nil, "", asError(err)
		default:
			rest, moved, err = readAnswer(data, q)
			if !moved {
				return rest, home, err
			}
		}
		select {
		case <-l.quit:
			return nil, "", ErrClosed
		default:
		}
		if time.Now().After(until) {
			return nil, "", errorf(KindResourceError, "queue '%s' in vhost '%s' has no home node answering (node %s); retry later", q.name, q.vh.name, home)
		}
		time.Sleep(back)
		back = min(2*back, time.Second)
	}
}

// homeQueue finds the queue a frame names, when this node is its home.
func (l *link) homeQueue(vhost, name string) (*Queue, bool) {
	vh, err := l.r.VHost(vhost)
	if err != nil {
		return nil, false
	}
	q := vh.queue(name)
	return q, q != nil && q.atHome()
}

func idFromSubject(subj string) (uint64, bool) {
	i := strings.LastIndexByte(subj, '.')
	v, err := strconv.ParseUint(subj[i+1:], 10, 64)
	return v, err == nil
}
