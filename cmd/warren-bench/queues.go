package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type producer struct {
	r        *runner
	id       int
	name     string
	conn     *amqp.Connection
	ch       *amqp.Channel
	exchange string
	key      string

	log      producerLog
	inWindow uint64 // messages sent inside the measured window

	sem         chan struct{} // one slot per outstanding unconfirmed message
	confirms    chan amqp.Confirmation
	confirmDone chan struct{}
	nacked      atomic.Uint64
}

type consumer struct {
	r     *runner
	id    int
	name  string
	queue int
	conn  *amqp.Connection
	ch    *amqp.Channel
	tag   string
	dels  <-chan amqp.Delivery

	log      *recvLog
	hist     *histogram
	inWindow uint64        // deliveries received inside the measured window
	unique   atomic.Uint64 // progress counter for the drain phase
	foreign  uint64        // deliveries not produced by this run (or corrupted)
	done     chan struct{}
}

func (r *runner) newProducer(id int) (*producer, error) {
	cfg := r.cfg
	p := &producer{r: r, id: id, name: fmt.Sprintf("producer %d", id)}
	if cfg.fanout > 0 {
		p.exchange = cfg.fanoutExchange()
	} else {
		p.key = cfg.queueName(id % cfg.queues)
	}
	var err error
	if p.conn, err = r.dial(p.name); err != nil {
		return nil, err
	}
	if p.ch, err = p.conn.Channel(); err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("%s: open channel: %w", p.name, err)
	}
	if cfg.confirm {
		if err := p.ch.Confirm(false); err != nil {
			p.conn.Close()
			return nil, fmt.Errorf("%s: confirm.select: %w", p.name, err)
		}
		p.log.confirmed = &seqSet{}
		p.sem = make(chan struct{}, cfg.confirmWindow)
		p.confirms = p.ch.NotifyPublish(make(chan amqp.Confirmation, cfg.confirmWindow))
		p.confirmDone = make(chan struct{})
		go p.listenConfirms()
	}
	return p, nil
}

// listenConfirms runs until the channel is closed. The library delivers one
// Confirmation per delivery tag, in order, even for multiple=true acks; the
// delivery tag equals our sequence number because every publish on the
// channel is one of ours and they start at 1.
func (p *producer) listenConfirms() {
	defer close(p.confirmDone)
	for c := range p.confirms {
		if c.Ack {
			p.log.confirmed.add(c.DeliveryTag)
		} else {
			p.nacked.Add(1)
		}
		<-p.sem
	}
}

func (p *producer) run(wg *sync.WaitGroup) {
	defer wg.Done()
	r, cfg := p.r, p.r.cfg
	body := make([]byte, cfg.size)
	for i := headerLen; i < len(body); i++ {
		body[i] = byte('a' + i%26)
	}
	msg := amqp.Publishing{Body: body, DeliveryMode: amqp.Transient}
	if cfg.persistent {
		msg.DeliveryMode = amqp.Persistent
	}
	pace := newPacer(cfg.rate/float64(cfg.producers), float64(p.id)/float64(cfg.producers))
	ctx := context.Background()
	for seq := uint64(1); ; seq++ {
		if r.stopped() || !pace.wait(r) {
			break
		}
		if p.sem != nil {
			select {
			case p.sem <- struct{}{}:
			case <-r.stop:
			}
			if r.stopped() {
				break
			}
		}
		ts := r.now()
		encodeHeader(body, r.runID, uint32(p.id), seq, ts)
		if err := p.ch.PublishWithContext(ctx, p.exchange, p.key, false, false, msg); err != nil {
			if !r.closed.Load() {
				r.fail("%s: publish: %v", p.name, err)
			}
			if p.sem != nil {
				<-p.sem
			}
			break
		}
		p.log.sent = seq
		if r.inWindow(ts) {
			p.inWindow++
		}
	}
	// Wait for outstanding confirms.
	if p.sem != nil {
		deadline := time.Now().Add(drainTimeout)
		for len(p.sem) > 0 && time.Now().Before(deadline) && !p.ch.IsClosed() {
			time.Sleep(time.Millisecond)
		}
		if n := len(p.sem); n > 0 {
			r.warn("%d messages still unconfirmed %v after the end of the run", n, drainTimeout)
		}
	}
}

// close closes the producer's connection and waits for its confirm listener,
// after which p.log is complete.
func (p *producer) close() {
	p.conn.Close()
	if p.confirmDone != nil {
		<-p.confirmDone
		p.log.nacked = p.nacked.Load()
	}
}

func (r *runner) newConsumer(id int, queue string, queueIdx int) (*consumer, error) {
	cfg := r.cfg
	c := &consumer{
		r: r, id: id, name: fmt.Sprintf("consumer %d", id), queue: queueIdx,
		tag: fmt.Sprintf("warren-bench-c%d", id), log: newRecvLog(cfg.producers),
		hist: newHistogram(), done: make(chan struct{}),
	}
	var err error
	if c.conn, err = r.dial(c.name); err != nil {
		return nil, err
	}
	if c.ch, err = c.conn.Channel(); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%s: open channel: %w", c.name, err)
	}
	if cfg.manualAck {
		if err := c.ch.Qos(cfg.prefetch, 0, false); err != nil {
			c.conn.Close()
			return nil, fmt.Errorf("%s: basic.qos: %w", c.name, err)
		}
	}
	if c.dels, err = c.ch.Consume(queue, c.tag, !cfg.manualAck, false, false, false, nil); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%s: basic.consume on %s: %w", c.name, queue, err)
	}
	return c, nil
}

func (c *consumer) run() {
	defer close(c.done)
	r, cfg := c.r, c.r.cfg
	var pending int
	var lastTag uint64
	for d := range c.dels {
		now := r.now()
		if now >= r.winLo && now < r.winHi {
			c.inWindow++
		}
		run, pid, seq, ts, ok := decodeHeader(d.Body)
		if !ok || run != r.runID || int(pid) >= cfg.producers || seq == 0 || len(d.Body) != cfg.size {
			c.foreign++
		} else if c.log.record(pid, seq) {
			c.unique.Add(1)
			if r.inWindow(ts) {
				c.hist.record(now - ts)
			}
		}
		if cfg.manualAck {
			pending++
			lastTag = d.DeliveryTag
			if pending >= cfg.multiAck {
				if err := c.ch.Ack(d.DeliveryTag, cfg.multiAck > 1); err != nil && !r.closed.Load() {
					r.fail("%s: ack: %v", c.name, err)
				}
				pending = 0
			}
		}
	}
	if pending > 0 && !c.ch.IsClosed() {
		_ = c.ch.Ack(lastTag, true)
	}
}

// cancel stops the subscription; deliveries already buffered are still
// processed before run returns.
func (c *consumer) cancel() {
	if err := c.ch.Cancel(c.tag, false); err != nil && !c.ch.IsClosed() {
		c.r.warn("%s: basic.cancel: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(drainTimeout):
		c.r.warn("%s: deliveries did not stop after basic.cancel", c.name)
		c.conn.Close()
		<-c.done
	}
}

func (r *runner) runQueues(ctx context.Context) (*result, error) {
	cfg := r.cfg
	var consumers []*consumer
	var producers []*producer
	closeAll := func() {
		r.closed.Store(true)
		for _, c := range consumers {
			c.conn.Close()
		}
		for _, p := range producers {
			p.conn.Close()
		}
	}
	for i := 0; i < cfg.consumers; i++ {
		q := i % cfg.queues
		c, err := r.newConsumer(i, cfg.queueName(q), q)
		if err != nil {
			closeAll()
			return nil, err
		}
		consumers = append(consumers, c)
	}
	for i := 0; i < cfg.producers; i++ {
		p, err := r.newProducer(i)
		if err != nil {
			closeAll()
			return nil, err
		}
		producers = append(producers, p)
	}

	r.startClock(ctx)
	for _, c := range consumers {
		go c.run()
	}
	var wg sync.WaitGroup
	for _, p := range producers {
		wg.Add(1)
		go p.run(&wg)
	}
	wg.Wait()

	// feeding[q] lists the producers publishing into queue q.
	feeding := make([][]int, cfg.queues)
	for q := range feeding {
		for p := 0; p < cfg.producers; p++ {
			if cfg.fanout > 0 || p%cfg.queues == q {
				feeding[q] = append(feeding[q], p)
			}
		}
	}
	// Drain: wait until every queue's consumers have seen everything that
	// should arrive (confirmed, or sent without confirms). Give up once no new
	// message arrived for drainTimeout (or after drainMax in total): whatever
	// is missing then counts as lost.
	expected := make([]uint64, cfg.queues)
	for q := range feeding {
		for _, p := range feeding[q] {
			if cfg.confirm {
				expected[q] += producers[p].confirmedCount()
			} else {
				expected[q] += producers[p].log.sent
			}
		}
	}
	drainStart := time.Now()
	lastProgress, lastTotal := drainStart, uint64(0)
	for {
		got := make([]uint64, cfg.queues)
		var total uint64
		for _, c := range consumers {
			n := c.unique.Load()
			got[c.queue] += n
			total += n
		}
		done := true
		for q := range got {
			if got[q] < expected[q] {
				done = false
			}
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, lastProgress = total, now
		}
		if done || now.Sub(lastProgress) > drainTimeout || now.Sub(drainStart) > drainMax {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	if drained > time.Second {
		r.warn("consumers were %.1fs behind producers at the end of the run: queues built a backlog, so latency includes queueing time (use --rate for latency at a sustainable load)", drained.Seconds())
	}

	for _, c := range consumers {
		c.cancel()
	}
	r.closed.Store(true)
	for _, p := range producers {
		p.close()
	}
	for _, c := range consumers {
		c.conn.Close()
	}

	res := r.newResult()
	plogs := make([]producerLog, len(producers))
	for i, p := range producers {
		plogs[i] = p.log
		res.Sent += p.log.sent
		res.Nacked += p.log.nacked
		if p.log.confirmed != nil {
			res.Confirmed += p.log.confirmed.count()
		}
		res.sentWindow += p.inWindow
	}
	hist := newHistogram()
	for q := range feeding {
		var logs []*recvLog
		for _, c := range consumers {
			if c.queue == q {
				logs = append(logs, c.log)
			}
		}
		a := account(plogs, feeding[q], logs)
		res.Received += a.received
		res.Duplicated += a.duplicated
		res.Lost += a.lost
	}
	for _, c := range consumers {
		res.recvWindow += c.inWindow
		res.Foreign += c.foreign
		hist.merge(c.hist)
	}
	res.finish(r, hist)
	return res, nil
}

// confirmedCount may be called while the confirm listener runs.
func (p *producer) confirmedCount() uint64 {
	// sent - outstanding - nacked is exact once the producer stopped waiting;
	// reading the bitset concurrently would race with the listener.
	out := uint64(len(p.sem))
	n := p.nacked.Load()
	if p.log.sent < out+n {
		return 0
	}
	return p.log.sent - out - n
}
