package mapping

import (
	"errors"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Declares placed on another node (placement.go): only a queue's home
// creates its log, arms its timers and writes its record, so the
// declaring node asks the chosen node (".qd") to declare the queue as the
// client's user and answers its client with that node's answer. The
// home's declare-ok waits until every running node applied the new queue
// (spreadLatest), the asking node included, so the client can use the
// queue at once on any node.

// declareElsewhere declares s on the first of nodes that answers (the
// next is tried only when nobody listens on a node: a node that got the
// request may have declared the queue). This node may be one of nodes.
func (ch *Channel) declareElsewhere(nodes []string, s QueueSpec) (QueueInfo, error) {
	vh := ch.vh
	l := vh.r.link
	args, err := encodeArgs(s.Args)
	if err != nil {
		return QueueInfo{}, errorf(KindPreconditionFailed, "queue arguments: %v", err)
	}
	var b wbuf
	b.s(vh.name)
	b.s(ch.conn.user)
	b.s(s.Name)
	b.bool(s.Durable)
	b.bool(s.AutoDelete)
	b.bs(args)
	for _, node := range nodes {
		if node == vh.r.NodeName() {
			return ch.declareHere(s)
		}
		data, err := l.requestRunning(node, "qd", b)
		switch {
		case err == jsstore.ErrNoResponders:
			continue // not running: the next one
		case err == jsstore.ErrNoAnswer:
			return QueueInfo{}, errorf(KindResourceError, "cannot declare queue '%s' in vhost '%s': node %s, which was to hold it, did not answer in %v", s.Name, vh.name, node, linkTimeout)
		case err == errStoppedAsked:
			return QueueInfo{}, errorf(KindResourceError, "cannot declare queue '%s' in vhost '%s': node %s, which was to hold it, stopped before it answered (the queue may exist there)", s.Name, vh.name, node)
		case err != nil:
			return QueueInfo{}, asError(err)
		}
		name, m, c, err := readDeclareAnswer(data)
		if err != nil {
			return QueueInfo{}, err
		}
		if vh.queueOrSync(name) == nil {
			return QueueInfo{}, errorf(KindInternal, "queue '%s' in vhost '%s' was declared on node %s but is not known on this node yet; declare it again", name, vh.name, node)
		}
		l.counters.declSent.Add(1)
		ch.setLastQueue(name)
		return QueueInfo{Name: name, Messages: m, Consumers: c}, nil
	}
	return QueueInfo{}, errorf(KindResourceError, "cannot declare queue '%s' in vhost '%s': none of the nodes that may hold it (%v) is running", s.Name, vh.name, nodes)
}

// errStoppedAsked: the node asked stopped before it answered.
var errStoppedAsked = errors.New("mapping: the node asked stopped before it answered")

// requestRunning is a request to node that gives up once node is known
// to be down (its heartbeats missed, or its last one said it stops)
// rather than waiting out linkTimeout. The request's goroutine ends with
// the request (linkTimeout at most, or the bus's close).
func (l *link) requestRunning(node, what string, b wbuf) ([]byte, error) {
	type answer struct {
		data []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		data, err := l.bus.Request(subjectOf(node, what), b, linkTimeout)
		got <- answer{data, err}
	}()
	t := time.NewTicker(hbInterval)
	defer t.Stop()
	for {
		select {
		case a := <-got:
			return a.data, a.err
		case <-t.C:
			if l.r.nodeSilent(node) {
				return nil, errStoppedAsked
			}
		}
	}
}

func readDeclareAnswer(data []byte) (name string, m, c int, err error) {
	rb := &rbuf{b: data}
	switch rb.byte() {
	case ansOK:
		name, m, c = rb.s(), int(rb.u()), int(rb.u())
		if !rb.bad && name != "" {
			return name, m, c, nil
		}
	case ansError:
		k, t := Kind(rb.u()), rb.s()
		if !rb.bad {
			return "", 0, 0, &Error{Kind: k, Text: t}
		}
	}
	return "", 0, 0, errorf(KindInternal, "bad answer to a queue declare from another node")
}

// serveDeclare answers declareElsewhere. The declare may take a while
// (a replicated log, the spread), so each runs on its own goroutine,
// which stopLink waits for.
func (l *link) serveDeclare(msg jsstore.BusMsg) {
	l.declMu.Lock()
	if l.declStopped {
		l.declMu.Unlock()
		l.bus.Respond(msg, answerError(ErrClosed))
		return
	}
	l.declWG.Add(1)
	l.declMu.Unlock()
	go func() {
		defer l.declWG.Done()
		l.bus.Respond(msg, l.declare(msg.Data))
	}()
}

// declare runs a declare frame as its user on a hidden connection, so
// permissions, limits and equivalence are checked as for a local client.
func (l *link) declare(frame []byte) []byte {
	rb := &rbuf{b: frame}
	vhost, user, name := rb.s(), rb.s(), rb.s()
	durable, autoDelete := rb.bool(), rb.bool()
	rawArgs := rb.bs()
	if rb.bad || name == "" {
		return answerError(errorf(KindInternal, "malformed queue declare from another node"))
	}
	args, err := decodeArgs(rawArgs)
	if err != nil {
		return answerError(errorf(KindPreconditionFailed, "queue arguments: %v", err))
	}
	if err := l.r.CheckVHostAccess(user, vhost); err != nil {
		return answerError(err)
	}
	vh, err := l.r.VHost(vhost)
	if err != nil {
		return answerError(err)
	}
	conn := vh.connect(user, ConnInfo{Name: "cluster link", Protocol: "cluster link", Hidden: true})
	defer conn.Close()
	ch := conn.OpenChannel(0, nopSink{})
	if err := ch.allowed(Configure, ResourceQueue, name); err != nil {
		return answerError(err)
	}
	s := QueueSpec{Name: name, Durable: durable, AutoDelete: autoDelete, Args: args}
	var info QueueInfo
	// No barrier on a miss: a queue of that name declared elsewhere a
	// moment ago makes createQueue's claim lose, and it is adopted.
	if q := vh.queue(name); q != nil {
		info, err = ch.redeclare(q, s)
	} else {
		info, err = ch.declareHere(s)
	}
	if err != nil {
		return answerError(err)
	}
	l.counters.declServed.Add(1)
	var b wbuf
	b = append(b, ansOK)
	b.s(info.Name)
	b.u(uint64(info.Messages))
	b.u(uint64(info.Consumers))
	return b
}
