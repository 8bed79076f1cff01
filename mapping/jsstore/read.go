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
	if err := checkName(name); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+streamName(name), inbox, req); err != nil {
		return nil, s.wrap(err)
	}
	transient := transientSubject(name)
	var out []Record
	deadline := time.Now().Add(readTimeout)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return nil, fmt.Errorf("jsstore: read %s: no answer from JetStream within %v", name, readTimeout)
			}
			return nil, s.wrap(err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204": // end of batch
				return out, nil
			case "404": // nothing at or after the start
				return out, nil
			case "503":
				return nil, ErrNotFound
			}
			return nil, fmt.Errorf("jsstore: read %s: status %s %s", name, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("jsstore: read %s: bad sequence header %q", name, m.Header.Get("Nats-Sequence"))
		}
		subj := m.Header.Get("Nats-Subject")
		if subj != transient && !strings.HasPrefix(subj, subjectPrefix) {
			return nil, fmt.Errorf("jsstore: read %s: record %d on unexpected subject %q", name, seq, subj)
		}
		out = append(out, Record{Seq: seq, Transient: subj == transient, Data: m.Data})
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
	if err := checkName(name); err != nil {
		return 0, err
	}
	if seq == 0 {
		seq = 1
	}
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, s.wrap(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+streamName(name), inbox, fmt.Appendf(nil, `{"seq":%d,"batch":1}`, seq)); err != nil {
		return 0, s.wrap(err)
	}
	var sent uint64
	deadline := time.Now().Add(readTimeout)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return 0, s.wrap(err)
		}
		switch m.Header.Get("Status") {
		case "":
			sent++
		case "204":
			np, err := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("jsstore: count %s: bad pending header %q", name, m.Header.Get("Nats-Num-Pending"))
			}
			return sent + np, nil
		case "404":
			return 0, nil
		case "503":
			return 0, ErrNotFound
		default:
			return 0, fmt.Errorf("jsstore: count %s: status %s %s", name, m.Header.Get("Status"), m.Header.Get("Description"))
		}
	}
}
