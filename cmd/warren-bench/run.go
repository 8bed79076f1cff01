package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	exitOK      = 0
	exitLost    = 1
	exitFailure = 2
)

// runner holds the state shared by all producers and consumers of one run.
// All timestamps are nanoseconds since base on the monotonic clock.
type runner struct {
	cfg    config
	runID  uint32 // random; tells this run's messages from another run's
	base   time.Time
	winLo  int64 // start of the measured window (end of warm-up)
	winHi  int64 // end of the measured window (producers stop)
	stop   chan struct{}
	stopAt int64       // when stop was closed
	closed atomic.Bool // set once teardown starts; connection closes after that are expected

	errMu sync.Mutex
	errs  []string
	warns []string
}

func (r *runner) now() int64 { return int64(time.Since(r.base)) }

func (r *runner) inWindow(t int64) bool { return t >= r.winLo && t < r.winHi }

func (r *runner) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *runner) fail(format string, a ...any) {
	r.errMu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
	r.errMu.Unlock()
}

func (r *runner) warn(format string, a ...any) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	msg := fmt.Sprintf(format, a...)
	for _, w := range r.warns {
		if w == msg {
			return
		}
	}
	r.warns = append(r.warns, msg)
}

func (r *runner) dial(name string) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(r.cfg.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": "warren-bench " + name},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() {
		for {
			select {
			case err, ok := <-closes:
				if ok && err != nil && !r.closed.Load() {
					r.fail("%s: connection closed by broker: %v", name, err)
				}
				return
			case b := <-blocks:
				if b.Active {
					r.warn("broker blocked publishing connections (connection.blocked: %s)", b.Reason)
				}
			}
		}
	}()
	return conn, nil
}

func encodeHeader(body []byte, run, producer uint32, seq uint64, ts int64) {
	binary.BigEndian.PutUint32(body[0:4], run)
	binary.BigEndian.PutUint32(body[4:8], producer)
	binary.BigEndian.PutUint64(body[8:16], seq)
	binary.BigEndian.PutUint64(body[16:24], uint64(ts))
}

func decodeHeader(body []byte) (run, producer uint32, seq uint64, ts int64, ok bool) {
	if len(body) < headerLen {
		return 0, 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(body[0:4]), binary.BigEndian.Uint32(body[4:8]),
		binary.BigEndian.Uint64(body[8:16]), int64(binary.BigEndian.Uint64(body[16:24])), true
}

// pacer spaces sends evenly at a fixed per-producer rate. Unlike time.Ticker
// it does not drop ticks: when the sender oversleeps it sends the messages
// that are due immediately, so the average rate is exact; after falling more
// than 100 ms behind it resets rather than bursting.
type pacer struct {
	interval float64 // ns
	next     float64 // ns since base
	timer    *time.Timer
}

func newPacer(rate float64, phase float64) *pacer {
	if rate <= 0 {
		return nil
	}
	iv := float64(time.Second) / rate
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{interval: iv, next: phase * iv, timer: t}
}

// wait blocks until the next send is due; false means the run was stopped.
func (p *pacer) wait(r *runner) bool {
	if p == nil {
		return true
	}
	now := float64(r.now())
	if p.next > now {
		p.timer.Reset(time.Duration(p.next - now))
		select {
		case <-p.timer.C:
		case <-r.stop:
			p.timer.Stop()
			return false
		}
	} else if now-p.next > float64(100*time.Millisecond) {
		p.next = now
	}
	p.next += p.interval
	return true
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "warren-bench: %v\n", err)
		return exitFailure
	}
	res, err := execute(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "warren-bench: %v\n", err)
		return exitFailure
	}
	if err := res.write(stdout, cfg.json); err != nil {
		fmt.Fprintf(stderr, "warren-bench: %v\n", err)
		return exitFailure
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "warren-bench: error: %s\n", e)
	}
	switch {
	case cfg.confirm && res.Lost > 0:
		fmt.Fprintf(stderr, "warren-bench: %d confirmed messages were never received\n", res.Lost)
		return exitLost
	case cfg.rpc && res.Lost > 0:
		fmt.Fprintf(stderr, "warren-bench: %d RPC calls got no reply\n", res.Lost)
		return exitLost
	case len(res.Errors) > 0:
		return exitFailure
	}
	return exitOK
}

// execute sets up the topology, runs the workload and tears everything down.
// It returns an error only for setup failures; problems during the run are
// reported in result.Errors.
func execute(ctx context.Context, cfg config) (*result, error) {
	r := &runner{cfg: cfg, stop: make(chan struct{}), runID: rand.Uint32()}
	admin, err := r.dial("admin")
	if err != nil {
		return nil, err
	}
	defer func() {
		r.closed.Store(true)
		admin.Close()
	}()
	queues, err := r.setupTopology(admin)
	if err != nil {
		return nil, err
	}
	defer r.teardownTopology(admin, queues)

	if cfg.rpc {
		return r.runRPC(ctx)
	}
	return r.runQueues(ctx)
}

func (r *runner) setupTopology(admin *amqp.Connection) ([]string, error) {
	cfg := r.cfg
	var names []string
	if cfg.rpc {
		names = []string{cfg.rpcQueue()}
	} else {
		for i := 0; i < cfg.queues; i++ {
			names = append(names, cfg.queueName(i))
		}
	}
	ch, err := admin.Channel()
	if err != nil {
		return nil, fmt.Errorf("admin: open channel: %w", err)
	}
	defer func() { ch.Close() }()
	for _, q := range names {
		if _, err := ch.QueueDeclare(q, cfg.persistent, false, false, false, nil); err != nil {
			// Most likely left over from an earlier run with different
			// durability (PRECONDITION_FAILED closes the channel): replace it.
			if ch, err = admin.Channel(); err != nil {
				return nil, fmt.Errorf("admin: open channel: %w", err)
			}
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				return nil, fmt.Errorf("delete stale queue %s: %w", q, err)
			}
			if _, err := ch.QueueDeclare(q, cfg.persistent, false, false, false, nil); err != nil {
				return nil, fmt.Errorf("declare queue %s: %w", q, err)
			}
		}
		if _, err := ch.QueuePurge(q, false); err != nil {
			return nil, fmt.Errorf("purge queue %s: %w", q, err)
		}
	}
	if cfg.fanout > 0 {
		if err := ch.ExchangeDeclare(cfg.fanoutExchange(), amqp.ExchangeFanout, cfg.persistent, false, false, false, nil); err != nil {
			if ch, err = admin.Channel(); err != nil {
				return nil, fmt.Errorf("admin: open channel: %w", err)
			}
			if err := ch.ExchangeDelete(cfg.fanoutExchange(), false, false); err != nil {
				return nil, fmt.Errorf("delete stale exchange %s: %w", cfg.fanoutExchange(), err)
			}
			if err := ch.ExchangeDeclare(cfg.fanoutExchange(), amqp.ExchangeFanout, cfg.persistent, false, false, false, nil); err != nil {
				return nil, fmt.Errorf("declare exchange %s: %w", cfg.fanoutExchange(), err)
			}
		}
		for _, q := range names {
			if err := ch.QueueBind(q, "", cfg.fanoutExchange(), false, nil); err != nil {
				return nil, fmt.Errorf("bind %s to %s: %w", q, cfg.fanoutExchange(), err)
			}
		}
	}
	return names, nil
}

func (r *runner) teardownTopology(admin *amqp.Connection, queues []string) {
	ch, err := admin.Channel()
	if err != nil {
		r.warn("cleanup: open channel: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			r.warn("cleanup: delete queue %s: %v", q, err)
			return
		}
	}
	if r.cfg.fanout > 0 {
		if err := ch.ExchangeDelete(r.cfg.fanoutExchange(), false, false); err != nil {
			r.warn("cleanup: delete exchange %s: %v", r.cfg.fanoutExchange(), err)
		}
	}
}

// startClock fixes the time base and the measured window, and arranges for
// r.stop to be closed at the end of the window or when ctx is cancelled.
func (r *runner) startClock(ctx context.Context) {
	r.base = time.Now()
	r.winLo = int64(r.cfg.warmup)
	r.winHi = int64(r.cfg.warmup + r.cfg.duration)
	go func() {
		t := time.NewTimer(r.cfg.warmup + r.cfg.duration)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		r.stopAt = r.now() // published to readers by close(r.stop)
		close(r.stop)
	}()
}

// measured returns the length of the measured window in seconds.
// Only valid after r.stop is closed; an interrupted run is shorter.
func (r *runner) measured() float64 {
	hi := min(r.winHi, r.stopAt)
	if hi <= r.winLo {
		return 0
	}
	return time.Duration(hi - r.winLo).Seconds()
}
