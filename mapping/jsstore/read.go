package jsstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Record is one record read back from a log.
type Record struct {
	Seq       uint64
	Transient bool // appended with AppendTransient
	Data      []byte
}

// readTimeout bounds one batch read: the reader (a queue's pager) must
// not wait on a store that stopped answering for longer than a client
// would tolerate a stalled queue.
const readTimeout = 10 * time.Second

// ReadBatch returns up to max records of log name with sequence from or
// later, oldest first, stopping once about maxBytes were read (at least
// one record is returned when there is one). Deleted records are skipped.
// An empty result means there is no record at or after from.
//
// It is one JetStream batched direct get (ADR-31): the server streams the
// records to a private inbox and ends with an end-of-batch status, so a
// batch costs one request however many records it carries, and no
// consumer is created (a consumer per read would be a meta operation in a
// cluster).
func (s *Store) ReadBatch(name string, from uint64, max, maxBytes int) ([]Record, error) {
	if from == 0 {
		from = 1
	}
	return s.readDirect(name, fmt.Appendf(nil, `{"seq":%d,"batch":%d,"max_bytes":%d}`, from, max, maxBytes), max)
}

// ReadSince is ReadBatch starting at the first record stored at or after t.
func (s *Store) ReadSince(name string, t time.Time, max, maxBytes int) ([]Record, error) {
	req, err := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
		Batch     int       `json:"batch"`
		MaxBytes  int       `json:"max_bytes"`
	}{t.UTC(), max, maxBytes})
	if err != nil {
		return nil, err
	}
	return s.readDirect(name, req, max)
}

func (s *Store) readDirect(name string, req []byte, max int) ([]Record, error) {
	if max <= 0 {
		return nil, nil
	}
	transient := transientSubject(name)
	var out []Record
	err := s.direct(name, req, func(m *nats.Msg) error {
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return fmt.Errorf("jsstore: read %s: bad sequence header %q", name, m.Header.Get("Nats-Sequence"))
		}
		subj := m.Header.Get("Nats-Subject")
		if subj != transient && !strings.HasPrefix(subj, subjectPrefix) {
			return fmt.Errorf("jsstore: read %s: record %d on unexpected subject %q", name, seq, subj)
		}
		out = append(out, Record{Seq: seq, Transient: subj == transient, Data: m.Data})
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// direct sends one batched direct get for log name and calls record for
// each record the server sends and end (when not nil) with the
// end-of-batch status. "Nothing at or after the start" (404) ends it
// with no call of end.
func (s *Store) direct(name string, req []byte, record func(*nats.Msg) error, end func(*nats.Msg) error) error {
	if err := checkName(name); err != nil {
		return err
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
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+streamName(name), inbox, req); err != nil {
		return s.wrap(err)
	}
	deadline := time.Now().Add(readTimeout)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("jsstore: read %s: no answer from JetStream within %v", name, readTimeout)
			}
			return s.wrap(err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			if err := record(m); err != nil {
				return err
			}
		case "204": // end of batch
			if end != nil {
				return end(m)
			}
			return nil
		case "404": // nothing at or after the start
			return nil
		case "503":
			return ErrNotFound
		default:
			return fmt.Errorf("jsstore: read %s: status %s %s", name, status, m.Header.Get("Description"))
		}
	}
}

// PurgeTransient removes every record appended with AppendTransient: a
// restart drops transient messages, as RabbitMQ does.
func (s *Store) PurgeTransient(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.api("$JS.API.STREAM.PURGE."+streamName(name), fmt.Appendf(nil, `{"filter":%q}`, transientSubject(name)))
}

// CountFrom returns how many records log name holds with sequence seq or
// later. It asks for a batch of one record: the server's end-of-batch
// status carries how many more are pending.
func (s *Store) CountFrom(name string, seq uint64) (uint64, error) {
	var sent, pending uint64
	err := s.direct(name, fmt.Appendf(nil, `{"seq":%d,"batch":1}`, max(seq, 1)),
		func(*nats.Msg) error { sent++; return nil },
		func(m *nats.Msg) error {
			np, err := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			if err != nil {
				return fmt.Errorf("jsstore: count %s: bad pending header %q", name, m.Header.Get("Nats-Num-Pending"))
			}
			pending = np
			return nil
		})
	if err != nil {
		return 0, err
	}
	if sent == 0 {
		return 0, nil // 404: nothing from seq on
	}
	return sent + pending, nil
}
