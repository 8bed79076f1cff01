package mapping_test

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// fakeSink is an in-memory mapping.Sink in the style of centrifuge's
// testTransport: it records every delivery and cancellation, and can be
// told that its buffer is full, in which case Deliver still takes the
// delivery (as the AMQP front does) but reports false.
type fakeSink struct {
	mu         sync.Mutex
	deliveries []mapping.Delivery
	cancelled  []string
	reasons    []string // why, by cancellation
	full       bool
	fullAfter  int // >0: report full once this many deliveries are held
	refused    int // how many times Deliver returned false
}

func newFakeSink() *fakeSink { return &fakeSink{} }

func (s *fakeSink) Deliver(d mapping.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	if s.full || (s.fullAfter > 0 && len(s.deliveries) >= s.fullAfter) {
		s.refused++
		return false
	}
	return true
}

func (s *fakeSink) Cancelled(tag string, reason error) {
	s.mu.Lock()
	s.cancelled = append(s.cancelled, tag)
	s.reasons = append(s.reasons, reason.Error())
	s.mu.Unlock()
}

func (s *fakeSink) setFull(full bool) {
	s.mu.Lock()
	s.full = full
	s.fullAfter = 0
	s.mu.Unlock()
}

func (s *fakeSink) all() []mapping.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

func (s *fakeSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.deliveries)
}

// take returns and forgets what was delivered so far.
func (s *fakeSink) take() []mapping.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deliveries
	s.deliveries = nil
	return d
}

func (s *fakeSink) cancels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cancelled)
}

// cancelReasons are the reasons given with cancels(), in order.
func (s *fakeSink) cancelReasons() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reasons)
}

// waitLen waits until the sink holds at least n deliveries.
func (s *fakeSink) waitLen(t *testing.T, n int) []mapping.Delivery {
	t.Helper()
	eventually(t, 5*time.Second, func() bool { return s.len() >= n })
	return s.all()
}

// quiet asserts the sink receives nothing more than it has for a while.
func (s *fakeSink) quiet(t *testing.T, n int) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if got := s.len(); got != n {
		t.Fatalf("sink holds %d deliveries, want %d: %v", got, n, bodies(s.all()))
	}
}

func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- router helpers ----

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openRouterAt opens a router on dir; it is closed at the end of the test
// (Close is idempotent, so tests may close it earlier).
func openRouterAt(t *testing.T, dir string) *mapping.Router {
	t.Helper()
	r, err := mapping.Open(mapping.Config{DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openRouter(t *testing.T) *mapping.Router { return openRouterAt(t, t.TempDir()) }

type client struct {
	conn *mapping.Conn
	ch   *mapping.Channel
	sink *fakeSink
}

// connect opens a connection to vhost "/" with one channel.
func connect(t *testing.T, r *mapping.Router) *client {
	t.Helper()
	conn, err := r.Connect("guest", "/", mapping.ConnInfo{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	sink := newFakeSink()
	return &client{conn: conn, ch: conn.OpenChannel(1, sink), sink: sink}
}

// channel opens another channel on c's connection.
func (c *client) channel() *client {
	sink := newFakeSink()
	return &client{conn: c.conn, ch: c.conn.OpenChannel(2, sink), sink: sink}
}

func (c *client) declareQueue(t *testing.T, s mapping.QueueSpec) mapping.QueueInfo {
	t.Helper()
	info, err := c.ch.DeclareQueue(s, false)
	if err != nil {
		t.Fatalf("DeclareQueue(%s): %v", s.Name, err)
	}
	return info
}

func (c *client) declareExchange(t *testing.T, s mapping.ExchangeSpec) {
	t.Helper()
	if err := c.ch.DeclareExchange(s, false); err != nil {
		t.Fatalf("DeclareExchange(%s): %v", s.Name, err)
	}
}

func (c *client) bind(t *testing.T, queue, exchange, key string) {
	t.Helper()
	if err := c.ch.BindQueue(queue, exchange, key, nil); err != nil {
		t.Fatalf("BindQueue(%s, %s, %s): %v", queue, exchange, key, err)
	}
}

// count is the queue's ready count from a passive declare.
func (c *client) count(t *testing.T, queue string) int {
	t.Helper()
	info, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: queue}, true)
	if err != nil {
		t.Fatalf("passive DeclareQueue(%s): %v", queue, err)
	}
	return info.Messages
}

func (c *client) consume(t *testing.T, queue, tag string, noAck bool) string {
	t.Helper()
	var got string
	if err := c.ch.Consume(queue, tag, noAck, false, nil, func(tag string) { got = tag }); err != nil {
		t.Fatalf("Consume(%s, %s): %v", queue, tag, err)
	}
	return got
}

// publish publishes and returns whether it was routed.
func (c *client) publish(t *testing.T, exchange, key, body string, p mapping.Properties) bool {
	t.Helper()
	pubOut := c.ch.Publish(&mapping.Message{Exchange: exchange, RoutingKey: key, Body: []byte(body), Properties: p}, nil)
	ok, err := pubOut.Routed, pubOut.Err()
	if err != nil {
		t.Fatalf("Publish(%s, %s, %s): %v", exchange, key, body, err)
	}
	return ok
}

// publishConfirmed publishes and waits for the done callback; it returns
// the callback's ok.
func (c *client) publishConfirmed(t *testing.T, exchange, key, body string, p mapping.Properties) bool {
	t.Helper()
	done := make(chan bool, 2)
	err := c.ch.Publish(&mapping.Message{Exchange: exchange, RoutingKey: key, Body: []byte(body), Properties: p}, func(o mapping.Outcome) { done <- o.Refused == mapping.NotRefused }).Err()
	if err != nil {
		t.Fatalf("Publish(%s, %s, %s): %v", exchange, key, body, err)
	}
	select {
	case ok := <-done:
		select {
		case <-done:
			t.Fatalf("done called twice for %s", body)
		case <-time.After(10 * time.Millisecond):
		}
		return ok
	case <-time.After(10 * time.Second):
		t.Fatalf("done not called for %s", body)
	}
	return false
}

func (c *client) get(t *testing.T, queue string, noAck bool) (mapping.Delivery, int, bool) {
	t.Helper()
	d, rem, ok, err := c.ch.Get(queue, noAck)
	if err != nil {
		t.Fatalf("Get(%s): %v", queue, err)
	}
	return d, rem, ok
}

// drain gets every ready message of queue with noAck and returns bodies.
func (c *client) drain(t *testing.T, queue string) []string {
	t.Helper()
	var out []string
	for {
		d, _, ok := c.get(t, queue, true)
		if !ok {
			return out
		}
		out = append(out, string(d.Message.Body))
	}
}

func bodies(ds []mapping.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Message.Body)
	}
	return out
}

func tags(ds []mapping.Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Tag
	}
	return out
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v (kind %v), want errors.Is %v (kind %v)", what, err, mapping.KindOf(err), target, mapping.KindOf(target))
	}
}

var persistent = mapping.Properties{Flags: mapping.FlagDeliveryMode, DeliveryMode: 2}
