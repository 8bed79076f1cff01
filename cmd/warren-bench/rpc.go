package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rpcTimeout is how long a client waits for one reply before counting the
// call as lost and moving on.
const rpcTimeout = 5 * time.Second

type rpcClient struct {
	r       *runner
	id      int
	name    string
	conn    *amqp.Connection
	ch      *amqp.Channel
	replyTo string
	replies <-chan amqp.Delivery

	calls, answered, lost, dups, late uint64
	sentWindow, recvWindow            uint64
	hist                              *histogram
}

type rpcWorker struct {
	r    *runner
	name string
	conn *amqp.Connection
	ch   *amqp.Channel
	tag  string
	dels <-chan amqp.Delivery
	done chan struct{}
}

func (r *runner) newRPCClient(id int) (*rpcClient, error) {
	c := &rpcClient{r: r, id: id, name: fmt.Sprintf("rpc client %d", id), hist: newHistogram()}
	var err error
	if c.conn, err = r.dial(c.name); err != nil {
		return nil, err
	}
	if c.ch, err = c.conn.Channel(); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%s: open channel: %w", c.name, err)
	}
	c.replyTo = directReplyTo
	if r.cfg.rpcReply == rpcReplyQueue {
		q, err := c.ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			c.conn.Close()
			return nil, fmt.Errorf("%s: declare callback queue: %w", c.name, err)
		}
		c.replyTo = q.Name
	}
	// Direct reply-to requires no-ack consumption; use it for both modes.
	if c.replies, err = c.ch.Consume(c.replyTo, "", true, true, false, false, nil); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%s: consume replies from %s: %w", c.name, c.replyTo, err)
	}
	return c, nil
}

func (c *rpcClient) run(wg *sync.WaitGroup) {
	defer wg.Done()
	r, cfg := c.r, c.r.cfg
	body := make([]byte, cfg.size)
	for i := headerLen; i < len(body); i++ {
		body[i] = byte('a' + i%26)
	}
	msg := amqp.Publishing{Body: body, ReplyTo: c.replyTo, DeliveryMode: amqp.Transient}
	if cfg.persistent {
		msg.DeliveryMode = amqp.Persistent
	}
	var answered seqSet
	pace := newPacer(cfg.rate/float64(cfg.producers), float64(c.id)/float64(cfg.producers))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	ctx := context.Background()
	for seq := uint64(1); ; seq++ {
		if r.stopped() || !pace.wait(r) {
			return
		}
		ts := r.now()
		encodeHeader(body, r.runID, uint32(c.id), seq, ts)
		corr := strconv.FormatUint(seq, 10)
		msg.CorrelationId = corr
		if err := c.ch.PublishWithContext(ctx, "", cfg.rpcQueue(), false, false, msg); err != nil {
			if !r.closed.Load() {
				r.fail("%s: publish: %v", c.name, err)
			}
			return
		}
		c.calls = seq
		if r.inWindow(ts) {
			c.sentWindow++
		}
		timer.Reset(rpcTimeout)
	wait:
		for {
			select {
			case d, ok := <-c.replies:
				if !ok {
					if !r.closed.Load() {
						r.fail("%s: reply consumer closed", c.name)
					}
					c.lost++
					return
				}
				if d.CorrelationId == corr {
					now := r.now()
					timer.Stop()
					answered.add(seq)
					c.answered++
					if r.inWindow(ts) {
						c.hist.record(now - ts)
					}
					if now >= r.winLo && now < r.winHi {
						c.recvWindow++
					}
					break wait
				}
				old, err := strconv.ParseUint(d.CorrelationId, 10, 64)
				switch {
				case err == nil && answered.has(old):
					c.dups++
				default:
					c.late++
				}
			case <-timer.C:
				c.lost++
				break wait
			}
		}
	}
}

func (r *runner) newRPCWorker(id int) (*rpcWorker, error) {
	cfg := r.cfg
	w := &rpcWorker{r: r, name: fmt.Sprintf("rpc worker %d", id), tag: fmt.Sprintf("warren-bench-w%d", id), done: make(chan struct{})}
	var err error
	if w.conn, err = r.dial(w.name); err != nil {
		return nil, err
	}
	if w.ch, err = w.conn.Channel(); err != nil {
		w.conn.Close()
		return nil, fmt.Errorf("%s: open channel: %w", w.name, err)
	}
	if cfg.manualAck {
		if err := w.ch.Qos(cfg.prefetch, 0, false); err != nil {
			w.conn.Close()
			return nil, fmt.Errorf("%s: basic.qos: %w", w.name, err)
		}
	}
	if w.dels, err = w.ch.Consume(cfg.rpcQueue(), w.tag, !cfg.manualAck, false, false, false, nil); err != nil {
		w.conn.Close()
		return nil, fmt.Errorf("%s: basic.consume on %s: %w", w.name, cfg.rpcQueue(), err)
	}
	return w, nil
}

func (w *rpcWorker) run() {
	defer close(w.done)
	r, cfg := w.r, w.r.cfg
	ctx := context.Background()
	var pending int
	var lastTag uint64
	for d := range w.dels {
		reply := amqp.Publishing{CorrelationId: d.CorrelationId, Body: d.Body, DeliveryMode: amqp.Transient}
		if d.ReplyTo != "" {
			if err := w.ch.PublishWithContext(ctx, "", d.ReplyTo, false, false, reply); err != nil && !r.closed.Load() {
				r.fail("%s: publish reply: %v", w.name, err)
			}
		}
		if cfg.manualAck {
			pending++
			lastTag = d.DeliveryTag
			if pending >= cfg.multiAck {
				if err := w.ch.Ack(d.DeliveryTag, cfg.multiAck > 1); err != nil && !r.closed.Load() {
					r.fail("%s: ack: %v", w.name, err)
				}
				pending = 0
			}
		}
	}
	if pending > 0 && !w.ch.IsClosed() {
		_ = w.ch.Ack(lastTag, true)
	}
}

func (r *runner) runRPC(ctx context.Context) (*result, error) {
	cfg := r.cfg
	var workers []*rpcWorker
	var clients []*rpcClient
	closeAll := func() {
		r.closed.Store(true)
		for _, w := range workers {
			w.conn.Close()
		}
		for _, c := range clients {
			c.conn.Close()
		}
	}
	for i := 0; i < cfg.consumers; i++ {
		w, err := r.newRPCWorker(i)
		if err != nil {
			closeAll()
			return nil, err
		}
		workers = append(workers, w)
	}
	for i := 0; i < cfg.producers; i++ {
		c, err := r.newRPCClient(i)
		if err != nil {
			closeAll()
			return nil, err
		}
		clients = append(clients, c)
	}
	r.startClock(ctx)
	for _, w := range workers {
		go w.run()
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go c.run(&wg)
	}
	wg.Wait()
	for _, w := range workers {
		if err := w.ch.Cancel(w.tag, false); err != nil && !w.ch.IsClosed() {
			r.warn("%s: basic.cancel: %v", w.name, err)
		}
		<-w.done
	}
	closeAll()

	res := r.newResult()
	hist := newHistogram()
	var late uint64
	for _, c := range clients {
		res.Sent += c.calls
		res.Received += c.answered
		res.Lost += c.lost
		res.Duplicated += c.dups
		res.sentWindow += c.sentWindow
		res.recvWindow += c.recvWindow
		late += c.late
		hist.merge(c.hist)
	}
	if late > 0 {
		r.warn("%d replies arrived after their call had timed out (%v)", late, rpcTimeout)
	}
	res.finish(r, hist)
	return res, nil
}
