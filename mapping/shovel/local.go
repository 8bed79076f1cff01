package shovel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/mapping"
)

// The local broker ("amqp://" with no host) is reached through the core
// directly, as a hidden connection of the shovel's owner: the core checks
// that user's permissions on every consume and publish exactly as for an
// AMQP client, and no password is needed (the core keeps only hashes).

// openLocal connects to vhost of r as user.
func openLocal(r *mapping.Router, vhost, user, shovel string) (*mapping.Conn, error) {
	return r.Connect(user, vhost, mapping.ConnInfo{
		Name:     "shovel " + shovel + " (" + vhost + ")",
		Protocol: "Shovel",
		Hidden:   true,
	})
}

// localSource consumes from a queue of this broker. The core hands
// deliveries to Deliver with its locks held, so Deliver only appends to
// pending; a pump goroutine (stopped by close) passes them on to the
// runner. In no-ack mode the prefetch does not bound deliveries: Deliver
// then reports the buffer full at the prefetch count, the core pauses the
// channel, and the pump resumes it once the runner has taken one.
type localSource struct {
	conn  *mapping.Conn
	ch    *mapping.Channel
	limit int
	n     int

	mu      sync.Mutex
	pending []inMsg
	wake    chan struct{}
	out     chan inMsg
	stop    chan struct{}
	blocked atomic.Bool

	once    sync.Once
	dead    chan struct{}
	failErr atomic.Value
}

func (s *localSource) Deliver(d mapping.Delivery) bool {
	s.mu.Lock()
	s.pending = append(s.pending, inMsg{tag: d.Tag, msg: d.Message, attempt: d.Attempt, redeliv: d.Redelivered})
	full := len(s.pending) >= s.limit
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if full {
		s.blocked.Store(true)
	}
	return !full
}

func (s *localSource) pump() {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		m := s.pending[0]
		s.pending[0] = inMsg{}
		s.pending = s.pending[1:]
		s.mu.Unlock()
		select {
		case s.out <- m:
			if s.blocked.Swap(false) {
				s.ch.Resume()
			}
		case <-s.stop:
			return
		}
	}
}

func (s *localSource) Cancelled(_ string, reason error) {
	s.fail(fmt.Errorf("the source queue's consumer was cancelled: %w", reason))
}

func (s *localSource) fail(err error) {
	s.once.Do(func() {
		s.failErr.Store(err)
		close(s.dead)
	})
}

func newLocalSource(r *mapping.Router, vhost, user, name string, d *Def) (*localSource, error) {
	conn, err := openLocal(r, vhost, user, name)
	if err != nil {
		return nil, err
	}
	s := &localSource{conn: conn, limit: d.Prefetch, wake: make(chan struct{}, 1), out: make(chan inMsg), stop: make(chan struct{}), dead: make(chan struct{})}
	s.ch = conn.OpenChannel(1, s)
	go s.pump()
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	queue := d.SrcQueue
	if queue != "" {
		info, err := declareLocal(s.ch, queue)
		if err != nil {
			return nil, err
		}
		s.n = info.Messages
	} else {
		info, err := s.ch.DeclareQueue(mapping.QueueSpec{Exclusive: true, AutoDelete: true}, false)
		if err != nil {
			return nil, err
		}
		queue = info.Name
		if err := s.ch.BindQueue(queue, d.SrcExchange, d.SrcExchangeKey, nil); err != nil {
			return nil, err
		}
	}
	noAck := d.AckMode == AckNoAck
	if !noAck {
		s.ch.SetPrefetch(d.Prefetch, false)
	}
	if err := s.ch.Consume(queue, "", noAck, false, nil, func(string) {}); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// declareLocal makes sure queue exists: a missing queue is declared
// durable without arguments (as RabbitMQ's shovel does), an existing one
// is used as it is.
func declareLocal(ch *mapping.Channel, queue string) (mapping.QueueInfo, error) {
	info, err := ch.DeclareQueue(mapping.QueueSpec{Name: queue}, true)
	if err == nil {
		return info, nil
	}
	if mapping.KindOf(err) != mapping.KindNotFound {
		return info, err
	}
	return ch.DeclareQueue(mapping.QueueSpec{Name: queue, Durable: true}, false)
}

func (s *localSource) deliveries() <-chan inMsg { return s.out }

func (s *localSource) failed() <-chan struct{} { return s.dead }
func (s *localSource) err() error {
	e, _ := s.failErr.Load().(error)
	return e
}
func (s *localSource) ack(tag uint64) error { return s.ch.Ack(tag, false) }
func (s *localSource) nack(tag uint64, requeue bool) error {
	return s.ch.Nack(tag, false, requeue)
}
func (s *localSource) length() int { return s.n }

// close requeues what was not acked (the core does on channel close) and
// stops the pump; messages still pending were not acked either.
func (s *localSource) close() {
	s.conn.Close()
	close(s.stop)
}

// localDest publishes into this broker.
type localDest struct {
	user  string
	queue string // dest-queue, when set
	conn  *mapping.Conn
	ch    *mapping.Channel
	dead  chan struct{}
}

type nopSink struct{}

func (nopSink) Deliver(mapping.Delivery) bool { return true }
func (nopSink) Cancelled(string, error)       {}

func newLocalDest(r *mapping.Router, vhost, user, name string, d *Def) (*localDest, error) {
	conn, err := openLocal(r, vhost, user, name)
	if err != nil {
		return nil, err
	}
	ch := conn.OpenChannel(1, nopSink{})
	if d.DestQueue != "" {
		if _, err := declareLocal(ch, d.DestQueue); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return &localDest{user: user, queue: d.DestQueue, conn: conn, ch: ch, dead: make(chan struct{})}, nil
}

func (l *localDest) publish(_ context.Context, _ inMsg, m *mapping.Message, done func(ok bool)) error {
	// The core refuses a user_id that is not the publishing user's; a
	// message shovelled from elsewhere was validated by its own broker,
	// so the property is dropped rather than the message.
	if p := &m.Properties; p.UserID != "" && p.UserID != l.user {
		p.UserID, p.Flags = "", p.Flags&^mapping.FlagUserID
	}
	var stored func(mapping.Outcome)
	if done != nil {
		stored = func(o mapping.Outcome) { done(o.Refused == mapping.NotRefused) }
	}
	out := l.ch.Publish(m, stored)
	if err := out.Err(); err != nil {
		return err
	}
	if !out.Routed && l.queue != "" {
		// The destination queue was deleted: end the run (the message
		// stays unacked at the source) rather than publish into nothing;
		// the reconnect declares the queue again.
		return fmt.Errorf("destination queue '%s' does not exist", l.queue)
	}
	return nil
}
func (l *localDest) failed() <-chan struct{} { return l.dead }
func (l *localDest) err() error              { return nil }
func (l *localDest) close()                  { l.conn.Close() }
