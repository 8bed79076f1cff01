package shovel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/mapping"
)

// Remote brokers are reached with amqp091-go; each URI of a list is tried
// in turn.

func dialAny(uris []string, name string) (*amqp.Connection, error) {
	var errs []error
	for _, u := range uris {
		cfg := amqp.Config{
			Heartbeat:  10 * time.Second,
			Locale:     "en_US",
			Properties: amqp.Table{"connection_name": "Warren shovel " + name, "product": "Warren shovel"},
			Dial:       amqp.DefaultDial(10 * time.Second),
		}
		if len(u) > 5 && u[:5] == "amqps" {
			cfg.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c, err := amqp.DialConfig(u, cfg)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", Redact(u), err))
	}
	return nil, errors.Join(errs...)
}

// declareRemote makes sure queue exists, as declareLocal does. A failed
// passive declare closes the channel, so a new one is opened.
func declareRemote(conn *amqp.Connection, ch *amqp.Channel, queue string) (*amqp.Channel, int, error) {
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err == nil {
		return ch, q.Messages, nil
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		return ch, 0, err
	}
	if ch, err = conn.Channel(); err != nil {
		return nil, 0, err
	}
	q, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	return ch, q.Messages, err
}

// watch turns a connection's close notification into a failure.
type watch struct {
	once sync.Once
	dead chan struct{}
	e    error
}

func newWatch(conn *amqp.Connection, chs ...*amqp.Channel) *watch {
	w := &watch{dead: make(chan struct{})}
	cc := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		if e, ok := <-cc; ok && e != nil {
			w.fail(e)
		} else {
			w.fail(fmt.Errorf("connection closed"))
		}
	}()
	for _, ch := range chs {
		nc := ch.NotifyClose(make(chan *amqp.Error, 1))
		go func() {
			if e, ok := <-nc; ok && e != nil {
				w.fail(e)
			}
		}()
	}
	return w
}

func (w *watch) fail(err error) {
	w.once.Do(func() {
		w.e = err
		close(w.dead)
	})
}

func (w *watch) failed() <-chan struct{} { return w.dead }
func (w *watch) err() error {
	select {
	case <-w.dead:
		return w.e
	default:
		return nil
	}
}

// remoteSource consumes from a remote broker.
type remoteSource struct {
	*watch
	conn *amqp.Connection
	ch   *amqp.Channel
	msgs chan inMsg
	n    int
}

func newRemoteSource(d *Def, name string) (*remoteSource, error) {
	conn, err := dialAny(d.SrcURIs, name)
	if err != nil {
		return nil, err
	}
	s := &remoteSource{conn: conn, msgs: make(chan inMsg)}
	if err := s.setup(d); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *remoteSource) setup(d *Def) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return err
	}
	queue := d.SrcQueue
	if queue != "" {
		if ch, s.n, err = declareRemote(s.conn, ch, queue); err != nil {
			return err
		}
	} else {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		queue = q.Name
		if err := ch.QueueBind(queue, d.SrcExchangeKey, d.SrcExchange, false, nil); err != nil {
			return err
		}
	}
	noAck := d.AckMode == AckNoAck
	if !noAck {
		if err := ch.Qos(d.Prefetch, 0, false); err != nil {
			return err
		}
	}
	ds, err := ch.Consume(queue, "", noAck, false, false, false, nil)
	if err != nil {
		return err
	}
	s.ch = ch
	s.watch = newWatch(s.conn, ch)
	go func() {
		defer close(s.msgs)
		for dv := range ds {
			s.msgs <- inMsg{tag: dv.DeliveryTag, msg: fromDelivery(&dv), attempt: deliveryAttempt(&dv), redeliv: dv.Redelivered}
		}
	}()
	return nil
}

func (s *remoteSource) deliveries() <-chan inMsg { return s.msgs }
func (s *remoteSource) ack(tag uint64) error     { return s.ch.Ack(tag, false) }
func (s *remoteSource) nack(tag uint64, requeue bool) error {
	return s.ch.Nack(tag, false, requeue)
}
func (s *remoteSource) length() int { return s.n }

// close closes the connection; the broker requeues what was not acked.
// The delivery pump ends when amqp091 closes the deliveries channel;
// the runner drains msgs until then.
func (s *remoteSource) close() {
	s.conn.Close()
	go func() {
		for range s.msgs {
		}
	}()
}

// remoteDest publishes to a remote broker with publisher confirms.
type remoteDest struct {
	*watch
	conn *amqp.Connection
	ch   *amqp.Channel

	mandatory bool

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]func(bool)
}

func newRemoteDest(d *Def, name string) (*remoteDest, error) {
	conn, err := dialAny(d.DestURIs, name)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil && d.DestQueue != "" {
		ch, _, err = declareRemote(conn, ch, d.DestQueue)
	}
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	r := &remoteDest{conn: conn, ch: ch, pending: map[uint64]func(bool){}, mandatory: d.DestQueue != ""}
	r.watch = newWatch(conn, ch)
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 256))
	// With dest-queue, messages go out mandatory: a basic.return means
	// the queue is gone. The broker sends the return before the confirm
	// and amqp091 hands it to returns before the confirm to confirms, so
	// a look at returns before each confirm sees it.
	returns := ch.NotifyReturn(make(chan amqp.Return, 256))
	go func() {
		returned := false
		for c := range confirms {
			select {
			case ret := <-returns:
				returned = true
				r.watch.fail(fmt.Errorf("destination queue '%s' does not exist (message returned: %s)", d.DestQueue, ret.ReplyText))
			default:
			}
			r.mu.Lock()
			done := r.pending[c.DeliveryTag]
			delete(r.pending, c.DeliveryTag)
			r.mu.Unlock()
			if done != nil {
				done(c.Ack && !returned)
			}
		}
	}()
	return r, nil
}

// publish sends m; with done the confirm for its sequence number calls
// it. Unconfirmed messages at a failure are never acked at the source:
// the runner closes the source and the source broker requeues them.
func (r *remoteDest) publish(ctx context.Context, _ inMsg, m *mapping.Message, done func(bool)) error {
	r.mu.Lock()
	r.seq++
	if done != nil {
		r.pending[r.seq] = done
	}
	r.mu.Unlock()
	return r.ch.PublishWithContext(ctx, m.Exchange, m.RoutingKey, r.mandatory, false, toPublishing(m))
}

func (r *remoteDest) close() { r.conn.Close() }
