package jsstore

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

const (
	replayBatch    = 4096
	replayMaxBytes = 8 << 20
)

// Replay calls fn for every record currently in the log, in sequence order.
// Records appended after Replay started are not included. rec belongs to fn.
// An error from fn stops the replay and is returned.
//
// It reads with batched direct gets ($JS.API.DIRECT.GET.<stream> with
// "batch"), on a private inbox, one batch in flight at a time.
func (s *Store) Replay(name string, fn func(seq uint64, rec []byte) error) error {
	first, last, count, err := s.LogState(name)
	if err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return s.wrap(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	apiSubj := "$JS.API.DIRECT.GET." + streamName(name)

	next := first
	reqBuf := make([]byte, 0, 96)
	for next <= last {
		reqBuf = reqBuf[:0]
		reqBuf = append(reqBuf, `{"seq":`...)
		reqBuf = strconv.AppendUint(reqBuf, next, 10)
		reqBuf = append(reqBuf, `,"batch":`...)
		batch := uint64(replayBatch)
		if rem := last - next + 1; rem < batch {
			batch = rem
		}
		reqBuf = strconv.AppendUint(reqBuf, batch, 10)
		reqBuf = append(reqBuf, `,"max_bytes":`...)
		reqBuf = strconv.AppendInt(reqBuf, replayMaxBytes, 10)
		reqBuf = append(reqBuf, '}')
		if err := s.nc.PublishRequest(apiSubj, inbox, reqBuf); err != nil {
			return s.wrap(err)
		}
		got := false
		for {
			m, err := sub.NextMsg(apiTimeout)
			if err != nil {
				if errors.Is(err, nats.ErrTimeout) {
					return fmt.Errorf("jsstore: replay %s: no answer from JetStream", name)
				}
				return s.wrap(err)
			}
			if len(m.Data) == 0 && m.Header.Get("Status") != "" {
				st := m.Header.Get("Status")
				switch st {
				case "204": // end of batch
				case "404": // nothing at or after next
					return nil
				case "503":
					return ErrNotFound
				default:
					return fmt.Errorf("jsstore: replay %s: status %s %s", name, st, m.Header.Get("Description"))
				}
				break
			}
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return fmt.Errorf("jsstore: replay %s: bad sequence header", name)
			}
			got = true
			if seq > last {
				return nil
			}
			next = seq + 1
			if err := fn(seq, m.Data); err != nil {
				return err
			}
		}
		if !got {
			return nil
		}
	}
	return nil
}
