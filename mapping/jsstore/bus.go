package jsstore

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// Bus is a core NATS connection of its own for the node-to-node link
// (mapping/link*.go): publishes, subscriptions and requests between the
// nodes of a cluster, over the embedded server's routes. It is separate
// from the store's connections so that link traffic never queues behind
// log appends (or the reverse).
type Bus struct {
	nc *nats.Conn
}

// BusMsg is one message received on a Bus subscription.
type BusMsg struct {
	Subject string
	Reply   string // "" when the sender expects no answer
	Data    []byte
	// NoResponders: the server answered a request whose subject nobody
	// subscribes (status 503): the addressee is not (or no longer) there.
	NoResponders bool
}

// ErrNoResponders is a request's error when nobody subscribes its subject.
var ErrNoResponders = errors.New("jsstore: no node answers that subject")

// ErrNoAnswer is a request's error when no answer came in time; the
// addressee may still have acted on it.
var ErrNoAnswer = errors.New("jsstore: no answer in time")

// OpenBus opens the link's connection; ErrNotClustered on a single node.
// The caller closes it (before the store).
func (s *Store) OpenBus() (*Bus, error) {
	if s.cluster == nil {
		return nil, ErrNotClustered
	}
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("warren-link"), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			s.log.Error("link: nats client error", "subject", subj, "err", err)
		})}, s.connOpts...)...)
	if err != nil {
		return nil, s.wrap(err)
	}
	return &Bus{nc: nc}, nil
}

// Close drops the connection and its subscriptions.
func (b *Bus) Close() { b.nc.Close() }

// Publish sends data on subject; with reply set, the receiver answers
// there (and the server sends a no-responders status there when nobody
// subscribes subject).
func (b *Bus) Publish(subject, reply string, data []byte) error {
	if reply == "" {
		return b.wrap(b.nc.Publish(subject, data))
	}
	return b.wrap(b.nc.PublishRequest(subject, reply, data))
}

// Flush sends what is buffered now (the connection flushes by itself
// within a millisecond or so; a caller waiting for an answer need not).
func (b *Bus) Flush() error { return b.wrap(b.nc.FlushTimeout(5 * time.Second)) }

// Subscribe calls fn for every message on subject (wildcards allowed), one
// call at a time on a goroutine of nats.go, until stop. Messages wait
// without limit while fn runs: the link bounds what its senders have in
// flight instead, and a dropped frame would be a lost ack or delivery.
func (b *Bus) Subscribe(subject string, fn func(BusMsg)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		bm := BusMsg{Subject: m.Subject, Reply: m.Reply, Data: m.Data}
		if len(m.Data) == 0 && m.Header != nil && m.Header.Get("Status") == "503" {
			bm.NoResponders = true
		}
		fn(bm)
	})
	if err != nil {
		return nil, b.wrap(err)
	}
	sub.SetPendingLimits(-1, -1)
	return func() { sub.Unsubscribe() }, nil
}

// Request sends data on subject and waits up to timeout for one answer.
func (b *Bus) Request(subject string, data []byte, timeout time.Duration) ([]byte, error) {
	m, err := b.nc.Request(subject, data, timeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNoResponders
	case errors.Is(err, nats.ErrTimeout):
		return nil, ErrNoAnswer
	case err != nil:
		return nil, b.wrap(err)
	}
	return m.Data, nil
}

// Respond answers a message received with a reply subject.
func (b *Bus) Respond(m BusMsg, data []byte) error {
	if m.Reply == "" {
		return nil
	}
	return b.wrap(b.nc.Publish(m.Reply, data))
}

func (b *Bus) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
		return ErrClosed
	}
	return err
}
