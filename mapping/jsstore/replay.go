package jsstore

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Replay calls fn for every record currently in the log, in sequence order.
// Records appended after Replay started are not included. rec belongs to fn.
// An error from fn stops the replay and is returned.
//
// It reads through an ephemeral ordered push consumer (flow-controlled, no
// acks, gone when Replay returns); in measurements it was about three times
// faster than batched direct gets, whose per-message headers dominate.
func (s *Store) Replay(name string, fn func(seq uint64, rec []byte) error) error {
	_, last, count, err := s.LogState(name)
	if err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	js, err := s.nc.JetStream()
	if err != nil {
		return s.wrap(err)
	}
	sub, err := js.SubscribeSync(subjectName(name),
		nats.OrderedConsumer(), nats.BindStream(streamName(name)), nats.DeliverAll())
	if err != nil {
		if errors.Is(err, nats.ErrStreamNotFound) {
			return ErrNotFound
		}
		return s.wrap(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(-1, 256<<20); err != nil {
		return err
	}
	if n, err := sub.InitialConsumerPending(); err == nil && n == 0 {
		return nil // purged since LogState
	}
	for {
		m, err := sub.NextMsg(apiTimeout)
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("jsstore: replay %s: no message from JetStream within %v", name, apiTimeout)
			}
			return s.wrap(err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("jsstore: replay %s: %w", name, err)
		}
		seq := md.Sequence.Stream
		if seq > last {
			return nil
		}
		if err := fn(seq, m.Data); err != nil {
			return err
		}
		if seq == last || md.NumPending == 0 {
			return nil
		}
	}
}
