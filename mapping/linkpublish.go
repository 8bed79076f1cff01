package mapping

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Publish forwarding: a message for a queue whose home is another node
// goes there as its record; the home enqueues it as a local publish would
// (alarms, max-length and overflow, TTL, priorities, dead-lettering and
// the store are all decided there) and answers when the message is stored
// by the rule a local publish follows. The publisher's confirm waits for
// every answer (storeTracker counts each forward as one pending write).

// forward is one message on its way to a queue's home.
type forward struct {
	id       uint64
	q        *Queue
	m        *Message
	t        *storeTracker
	frame    []byte
	budget   *linkBudget // charged with len(frame) until the answer
	home     string
	homeInc  uint64    // the home's incarnation heard when last sent (0: none heard yet)
	sent     time.Time // last sent
	deadline time.Time // no answer by then: failed, never retried
	until    time.Time // retries (no home answering) stop then
	back     time.Duration
	retrying bool // waiting for its retry timer
}

// linkBudget bounds the forward bytes in flight to one home node.
type linkBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int
}

func (l *link) budget(node string) *linkBudget {
	if b, ok := l.budgets.Load(node); ok {
		return b.(*linkBudget)
	}
	b := &linkBudget{}
	b.cond = sync.NewCond(&b.mu)
	v, _ := l.budgets.LoadOrStore(node, b)
	return v.(*linkBudget)
}

// acquire waits, with no core lock held (enqueue's contract), until n
// bytes fit; a message larger than the whole budget goes alone.
func (b *linkBudget) acquire(n int, wait bool, quit <-chan struct{}) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for wait && b.used > 0 && b.used+n > linkBudgetBytes {
		select {
		case <-quit:
			return false
		default:
		}
		b.cond.Wait()
	}
	b.used += n
	return true
}

func (b *linkBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// enqueueDeadLetter is enqueue for a dead letter: nobody waits for it, and
// the caller may be one of the link's own goroutines (a forwarded publish
// overflowing, a shadow's reject), which must not wait for the link's
// budget: its forwards may be the answers the other node is waiting for.
func (q *Queue) enqueueDeadLetter(m *Message) {
	if l := q.vh.r.link; l != nil && !q.atHome() {
		l.forward(q, m, nil, false)
		return
	}
	q.enqueue(m, nil)
}

// forward sends m to q's home. It is enqueue for a queue not at home and
// has enqueue's contract: no core lock is held, t learns the outcome.
// With wait it waits for room in the home's budget; without, it takes the
// room anyway (dead letters).
func (l *link) forward(q *Queue, m *Message, t *storeTracker, wait bool) {
	var b wbuf
	rec := m.logRecord()
	b = make(wbuf, 0, len(rec)+len(q.vh.name)+len(q.name)+8)
	b.s(q.vh.name)
	b.s(q.name)
	b.bs(rec)
	t.add()
	l.counters.fwdSent.Add(1)
	home := q.homeNode()
	f := &forward{q: q, m: m, t: t, frame: b, back: 20 * time.Millisecond}
	f.budget = l.budget(home)
	if !f.budget.acquire(len(b), wait, l.quit) {
		t.finish(false)
		return
	}
	inc := l.r.nodeIncarnation(home)
	now := time.Now()
	f.aim(home, inc, now)
	f.until = now.Add(forwardRetryFor)
	l.fwdMu.Lock()
	l.nextFwd++
	f.id = l.nextFwd
	l.fwds[f.id] = f
	if line := l.lines[q]; line != nil {
		// Behind the queue's forwards waiting to be sent again.
		f.retrying = true
		line.fs = append(line.fs, f)
		l.fwdMu.Unlock()
		return
	}
	l.fwdMu.Unlock()
	l.send(f)
}

// aim points f at home, whose incarnation heard now is inc, as it is
// sent at now: what the watcher's rule (forwardLost) judges it by. It is
// set before f is in l.fwds, or under l.fwdMu.
func (f *forward) aim(home string, inc uint64, now time.Time) {
	f.home, f.homeInc, f.sent, f.deadline = home, inc, now, now.Add(linkTimeout)
}

// send publishes f to the home it is aimed at.
func (l *link) send(f *forward) {
	reply := linkPrefix + l.tag + ".pr." + strconv.FormatUint(f.id, 10)
	if err := l.bus.Publish(subjectOf(f.home, "p"), reply, f.frame); err != nil {
		l.finishCounted(f.id, false, func(f *forward) { f.t.finish(false) })
	}
}

// waitForwards waits until every forward to q sent from this node so far
// has been answered (or failed), so that a basic.get, a count, a purge or
// a delete that a client asks for after publishing sees its publishes:
// forwards and queue requests travel on different subjects, and the home
// serves them on different goroutines. On one node, and in RabbitMQ, a
// channel's publish is in its queue before the channel's next command
// runs. Later forwards are not waited for (a busy publisher cannot hold
// the request off), and nothing waits past linkTimeout, nor for a home
// known to be down (the request answers its 404 at once).
func (l *link) waitForwards(q *Queue) {
	if q.homeDown() != nil {
		return
	}
	l.fwdMu.Lock()
	upto := l.nextFwd
	l.fwdMu.Unlock()
	deadline := time.Now().Add(linkTimeout)
	poll := 200 * time.Microsecond
	for {
		pending := false
		l.fwdMu.Lock()
		for id, f := range l.fwds {
			if id <= upto && f.q == q {
				pending = true
				break
			}
		}
		l.fwdMu.Unlock()
		if !pending || time.Now().After(deadline) {
			return
		}
		select {
		case <-l.quit:
			return
		case <-time.After(poll):
		}
		poll = min(2*poll, 10*time.Millisecond)
	}
}

// take removes forward id (nil when it was finished already).
func (l *link) takeForward(id uint64) *forward {
	l.fwdMu.Lock()
	defer l.fwdMu.Unlock()
	f := l.fwds[id]
	delete(l.fwds, id)
	return f
}

func (l *link) finishForward(id uint64, fn func(*forward)) {
	if f := l.takeForward(id); f != nil {
		f.budget.release(len(f.frame))
		fn(f)
	}
}

// failForwards fails (nacks) the forwards for which why gives a reason:
// those that got no answer in time, or all of them at shutdown. It
// returns how many failed, by home node and reason.
func (l *link) failForwards(why func(*forward) string) map[[2]string]int {
	var out []*forward
	failed := map[[2]string]int{}
	l.fwdMu.Lock()
	for id, f := range l.fwds {
		if w := why(f); w != "" {
			out = append(out, f)
			delete(l.fwds, id)
			failed[[2]string{f.home, w}]++
		}
	}
	l.fwdMu.Unlock()
	for _, f := range out {
		f.budget.release(len(f.frame))
		l.counters.fwdFailed.Add(1)
		f.t.finish(false)
	}
	return failed
}

// servePublishResult handles a home's answer to a forward, or the
// server's no-responders status when nobody serves the home's subject.
func (l *link) servePublishResult(msg jsstore.BusMsg) {
	id, ok := idFromSubject(msg.Subject)
	if !ok {
		return
	}
	var ans byte = ansMoved
	if !msg.NoResponders {
		ans = (&rbuf{b: msg.Data}).byte()
	}
	switch ans {
	case ansOK:
		hold := len(msg.Data) > 1 && msg.Data[1]&fwdHold != 0
		l.finishCounted(id, true, func(f *forward) {
			f.q.heldAtHome.Store(hold) // before the confirm: the next publish sees it
			f.t.finish(true)
		})
	case ansRefused:
		l.finishCounted(id, true, func(f *forward) {
			f.t.setFull(f.q.name)
			f.t.finish(true)
		})
	case ansMoved:
		l.retry(id)
	default:
		l.finishCounted(id, false, func(f *forward) { f.t.finish(false) })
	}
}

// retryLine holds a queue's forwards waiting to be sent again, in the
// order they were first sent; while it exists, new forwards to the queue
// join it instead of overtaking them (a publisher channel's messages to a
// queue keep their order through a change of home).
type retryLine struct {
	fs   []*forward
	back time.Duration
}

// retry puts a forward answered "moved" (or by nobody) in its queue's
// retry line; the line is sent again after a backoff, to the queue's home
// as it is then (or enqueued here when the home moved here). After
// forwardRetryFor the forward fails.
func (l *link) retry(id uint64) {
	l.fwdMu.Lock()
	f := l.fwds[id]
	if f == nil {
		l.fwdMu.Unlock()
		return
	}
	if time.Now().After(f.until) {
		l.fwdMu.Unlock()
		l.finishCounted(id, false, func(f *forward) { f.t.finish(false) })
		return
	}
	f.retrying = true
	line := l.lines[f.q]
	if line == nil {
		line = &retryLine{back: f.back}
		l.lines[f.q] = line
		q := f.q
		time.AfterFunc(line.back, func() { l.resend(q) })
	}
	at := len(line.fs)
	for at > 0 && line.fs[at-1].id > id {
		at--
	}
	line.fs = slices.Insert(line.fs, at, f)
	l.fwdMu.Unlock()
}

// resend sends a queue's retry line, oldest first, from one goroutine.
func (l *link) resend(q *Queue) {
	select {
	case <-l.quit:
		return // stopLink fails them
	default:
	}
	home := q.homeNode()
	inc := l.r.nodeIncarnation(home) // before l.fwdMu: both are leaves
	now := time.Now()
	l.fwdMu.Lock()
	line := l.lines[q]
	delete(l.lines, q)
	var fs []*forward
	if line != nil {
		for _, f := range line.fs {
			if l.fwds[f.id] == f { // not failed meanwhile
				f.retrying = false
				f.aim(home, inc, now)
				f.back = min(2*line.back, time.Second)
				fs = append(fs, f)
			}
		}
	}
	l.fwdMu.Unlock()
	for _, f := range fs {
		if q.atHome() {
			l.finishCounted(f.id, true, func(f *forward) {
				if ok, _ := f.q.enqueue(f.m, f.t); !ok {
					f.t.setFull(f.q.name)
				}
				f.t.finish(true)
			})
			continue
		}
		l.send(f)
	}
}

// servePublish is the home's side: enqueue the forwarded record and
// answer when it is stored.
func (l *link) servePublish(msg jsstore.BusMsg) {
	rb := &rbuf{b: msg.Data}
	vhost, name, rec := rb.s(), rb.s(), rb.bs()
	if rb.bad {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "malformed publish forward")))
		return
	}
	vh, err := l.r.VHost(vhost)
	if err != nil {
		// Gone with its vhost: as a local publish into a queue deleted
		// meanwhile, the message is dropped.
		l.bus.Respond(msg, []byte{ansOK})
		return
	}
	q := vh.queue(name)
	if q == nil {
		l.bus.Respond(msg, []byte{ansOK})
		return
	}
	if !q.atHome() {
		l.bus.Respond(msg, movedAnswer())
		return
	}
	if o, refused := l.r.alarmOutcome(); refused {
		l.bus.Respond(msg, refusedAnswer(o))
		return
	}
	m, err := decodeRecord(rec)
	if err != nil {
		l.bus.Respond(msg, answerError(errorf(KindInternal, "forwarded message: %v", err)))
		return
	}
	// hold is written before t.finish and read by done after it.
	var hold byte
	t := &storeTracker{routed: true, vhost: vhost, done: func(o Outcome) {
		if o.Refused == NotRefused {
			l.bus.Respond(msg, []byte{ansOK, hold})
		} else {
			l.bus.Respond(msg, refusedAnswer(o))
		}
	}}
	t.pending.Store(1)
	l.counters.fwdServed.Add(1)
	ok, full := q.enqueue(m, t)
	if !ok {
		t.setFull(q.name)
	}
	if full && q.holdsPublishers() {
		hold = fwdHold // flow.go: the publishing node holds its channel
	}
	t.finish(true)
}

// fwdHold, in the byte after ansOK of a forward's answer: the queue holds
// its publishers (flow.go). An answer without that byte holds nobody.
const fwdHold byte = 1

func refusedAnswer(o Outcome) []byte {
	if o.Refused != RefusedQueueFull {
		return answerError(o.Reason) // the publisher nacks
	}
	return []byte{ansRefused}
}

// prepareForward builds m's record before m is shared when a target queue
// is homed elsewhere: the forward carries it, and the record() rewrite of
// m.Body is only safe now (research §3.5, persist.go).
func prepareForward(m *Message, qs []*Queue) {
	for _, q := range qs {
		if !q.atHome() {
			m.record()
			return
		}
	}
}
