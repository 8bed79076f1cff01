package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Every test closes its connections; nothing of the client (or of an
	// in-process server) may outlive the suite.
	ignore := goleak.IgnoreCurrent()
	code := m.Run()
	stopWarren()
	if code == 0 {
		if err := goleak.Find(ignore); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	// waitTimeout bounds every single wait for something from the server.
	waitTimeout = 5 * time.Second
	// quietPeriod is how long a test watches for something that must not arrive.
	quietPeriod = 300 * time.Millisecond
	// testDeadline is the point at which a test's sockets are torn down so
	// that a server that stops answering fails the test instead of hanging it.
	testDeadline = 30 * time.Second
)

// amqpURL returns the broker under test: WARREN_TEST_AMQP_URL if set (for
// instance a real RabbitMQ, to validate the suite), else an in-process Warren.
func amqpURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("WARREN_TEST_AMQP_URL"); u != "" {
		return u
	}
	return startWarren(t)
}

// fixture is one test's view of the broker: it dials connections, names
// resources uniquely, and deletes what the test declared when it ends.
type fixture struct {
	t   *testing.T
	url string

	mu        sync.Mutex
	sockets   []net.Conn
	queues    []string
	exchanges []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, url: amqpURL(t)}
	// Registered first, so it runs last: after every connection is closed.
	t.Cleanup(f.cleanup)
	var done sync.Mutex
	finished := false
	timer := time.AfterFunc(testDeadline, func() {
		done.Lock()
		defer done.Unlock()
		if finished {
			return
		}
		t.Errorf("test still running after %v: closing its sockets", testDeadline)
		f.killSockets()
	})
	t.Cleanup(func() {
		done.Lock()
		finished = true
		done.Unlock()
		timer.Stop()
	})
	return f
}

// urlWith returns the broker URL with user info and/or vhost replaced.
func (f *fixture) urlWith(user, pass *string, vhost *string) string {
	f.t.Helper()
	u, err := url.Parse(f.url)
	if err != nil {
		f.t.Fatalf("parse url: %v", err)
	}
	if user != nil {
		u.User = url.UserPassword(*user, *pass)
	}
	if vhost != nil {
		u.Path = "/" + url.PathEscape(*vhost)
		u.RawPath = ""
	}
	return u.String()
}

func (f *fixture) track(c net.Conn) {
	f.mu.Lock()
	f.sockets = append(f.sockets, c)
	f.mu.Unlock()
}

func (f *fixture) killSockets() {
	f.mu.Lock()
	socks := f.sockets
	f.sockets = nil
	f.mu.Unlock()
	for _, s := range socks {
		_ = s.Close()
	}
}

// dialURL opens a connection with bounded handshake time; the raw socket is
// remembered so that the test deadline can always unblock the client.
func (f *fixture) dialURL(rawurl string, cfg amqp.Config) (*amqp.Connection, error) {
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		c, err := net.DialTimeout(network, addr, waitTimeout)
		if err != nil {
			return nil, err
		}
		// amqp091-go clears the deadline once the handshake is done.
		if err := c.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
			_ = c.Close()
			return nil, err
		}
		f.track(c)
		return c, nil
	}
	conn, err := amqp.DialConfig(rawurl, cfg)
	if err == nil {
		f.t.Cleanup(func() { closeConn(conn) })
	}
	return conn, err
}

func closeConn(conn *amqp.Connection) {
	if !conn.IsClosed() {
		_ = conn.CloseDeadline(time.Now().Add(2 * time.Second))
	}
}

// dialConfig dials the broker under test with cfg, failing the test on error.
func (f *fixture) dialConfig(cfg amqp.Config) *amqp.Connection {
	f.t.Helper()
	conn, err := f.dialURL(f.url, cfg)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	return conn
}

func (f *fixture) dial() *amqp.Connection {
	f.t.Helper()
	return f.dialConfig(amqp.Config{})
}

func (f *fixture) channel(conn *amqp.Connection) *amqp.Channel {
	f.t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		f.t.Fatalf("open channel: %v", err)
	}
	return ch
}

// connChan dials a new connection and opens one channel on it.
func (f *fixture) connChan() (*amqp.Connection, *amqp.Channel) {
	f.t.Helper()
	conn := f.dial()
	return conn, f.channel(conn)
}

// name returns a name unique to this run, so that the suite can be run
// repeatedly against a long-lived broker.
func (f *fixture) name(prefix string) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		f.t.Fatal(err)
	}
	test := f.t.Name()
	if i := strings.LastIndexByte(test, '/'); i >= 0 {
		test = test[i+1:]
	}
	test = strings.TrimPrefix(test, "Test")
	return "conf." + test + "." + prefix + "." + hex.EncodeToString(b[:])
}

func (f *fixture) trackQueue(name string) {
	f.mu.Lock()
	f.queues = append(f.queues, name)
	f.mu.Unlock()
}

func (f *fixture) trackExchange(name string) {
	f.mu.Lock()
	f.exchanges = append(f.exchanges, name)
	f.mu.Unlock()
}

// queue declares a plain (non-durable, non-exclusive, non-auto-delete) queue
// with a fresh name, which is deleted when the test ends.
func (f *fixture) queue(ch *amqp.Channel) string {
	f.t.Helper()
	name := f.name("q")
	f.declareQueue(ch, name, false, false, false, nil)
	return name
}

func (f *fixture) declareQueue(ch *amqp.Channel, name string, durable, autoDelete, exclusive bool, args amqp.Table) amqp.Queue {
	f.t.Helper()
	q, err := ch.QueueDeclare(name, durable, autoDelete, exclusive, false, args)
	if err != nil {
		f.t.Fatalf("queue.declare %q: %v", name, err)
	}
	f.trackQueue(q.Name)
	return q
}

// exchange declares a non-durable exchange of the given kind with a fresh
// name, which is deleted when the test ends.
func (f *fixture) exchange(ch *amqp.Channel, kind string) string {
	f.t.Helper()
	name := f.name("x")
	if err := ch.ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		f.t.Fatalf("exchange.declare %q %s: %v", name, kind, err)
	}
	f.trackExchange(name)
	return name
}

func (f *fixture) bind(ch *amqp.Channel, queue, key, exchange string, args amqp.Table) {
	f.t.Helper()
	if err := ch.QueueBind(queue, key, exchange, false, args); err != nil {
		f.t.Fatalf("queue.bind %q -[%s]-> %q: %v", exchange, key, queue, err)
	}
}

// cleanup deletes everything the test declared, over a fresh connection
// (the test's own channels may have been closed by the errors it provoked).
func (f *fixture) cleanup() {
	defer f.killSockets()
	f.mu.Lock()
	queues, exchanges := f.queues, f.exchanges
	f.mu.Unlock()
	if len(queues)+len(exchanges) == 0 {
		return
	}
	conn, err := f.dialURL(f.url, amqp.Config{})
	if err != nil {
		f.t.Logf("cleanup: dial: %v", err)
		return
	}
	defer closeConn(conn)
	var ch *amqp.Channel
	do := func(op func(*amqp.Channel) error) {
		if ch == nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				return
			}
		}
		_ = op(ch)
	}
	for _, q := range queues {
		do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range exchanges {
		do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
}

// publish publishes a text message, failing the test if the client refuses.
func publish(t *testing.T, ch *amqp.Channel, exchange, key, body string) {
	t.Helper()
	publishMsg(t, ch, exchange, key, false, amqp.Publishing{Body: []byte(body)})
}

func publishMsg(t *testing.T, ch *amqp.Channel, exchange, key string, mandatory bool, msg amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ch.PublishWithContext(ctx, exchange, key, mandatory, false, msg); err != nil {
		t.Fatalf("publish to %q/%q: %v", exchange, key, err)
	}
}

// consume starts a consumer with a fresh tag and returns its deliveries.
func consume(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) <-chan amqp.Delivery {
	t.Helper()
	d, err := ch.Consume(queue, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("basic.consume %q: %v", queue, err)
	}
	return d
}

// recv waits (bounded) for the next delivery.
func recv(t *testing.T, d <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case m, ok := <-d:
		if !ok {
			t.Fatalf("delivery channel closed while waiting for a message")
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no delivery within %v", waitTimeout)
	}
	return amqp.Delivery{}
}

func recvN(t *testing.T, d <-chan amqp.Delivery, n int) []amqp.Delivery {
	t.Helper()
	out := make([]amqp.Delivery, 0, n)
	for range n {
		out = append(out, recv(t, d))
	}
	return out
}

// expectNoDelivery asserts that nothing arrives for a short while.
func expectNoDelivery(t *testing.T, d <-chan amqp.Delivery) {
	t.Helper()
	select {
	case m, ok := <-d:
		if ok {
			t.Fatalf("unexpected delivery: body=%q key=%q redelivered=%v", m.Body, m.RoutingKey, m.Redelivered)
		}
	case <-time.After(quietPeriod):
	}
}

// bodies returns the bodies of deliveries as strings.
func bodies(ds []amqp.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}

// get does a basic.get and fails on error.
func get(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) (amqp.Delivery, bool) {
	t.Helper()
	m, ok, err := ch.Get(queue, autoAck)
	if err != nil {
		t.Fatalf("basic.get %q: %v", queue, err)
	}
	return m, ok
}

// drainGet fetches every message currently in queue with basic.get
// (auto-ack) and returns their bodies.
func drainGet(t *testing.T, ch *amqp.Channel, queue string) []string {
	t.Helper()
	var out []string
	for i := 0; i < 10000; i++ {
		m, ok := get(t, ch, queue, true)
		if !ok {
			return out
		}
		out = append(out, string(m.Body))
	}
	t.Fatalf("queue %q never became empty", queue)
	return nil
}

// queueCounts returns the message and consumer counts of queue as reported
// by a passive declare on a fresh channel of conn.
func (f *fixture) queueCounts(conn *amqp.Connection, queue string) (messages, consumers int) {
	f.t.Helper()
	ch := f.channel(conn)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		f.t.Fatalf("passive queue.declare %q: %v", queue, err)
	}
	return q.Messages, q.Consumers
}

// waitQueueCounts polls until queue has the given message count, for state
// that the broker updates asynchronously (requeue after close, ...).
func (f *fixture) waitMessages(conn *amqp.Connection, queue string, want int) {
	f.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, _ := f.queueCounts(conn, queue)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("queue %q has %d messages, want %d", queue, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectError asserts that err is an *amqp.Error sent by the server with the
// given reply code and whose reply text contains every one of words.
func expectError(t *testing.T, err error, code int, words ...string) *amqp.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("expected error %d %v, got success", code, words)
	}
	var e *amqp.Error
	if !errors.As(err, &e) {
		t.Fatalf("expected *amqp.Error %d %v, got %T: %v", code, words, err, err)
	}
	t.Logf("reply %d %q", e.Code, e.Reason)
	if e.Code != code {
		t.Fatalf("expected reply code %d, got %d (%q)", code, e.Code, e.Reason)
	}
	for _, w := range words {
		if !strings.Contains(e.Reason, w) {
			t.Errorf("reply text %q does not contain %q", e.Reason, w)
		}
	}
	return e
}

// expectChannelClose is expectError for errors that closed a channel.
func expectChannelClose(t *testing.T, err error, code int, words ...string) *amqp.Error {
	t.Helper()
	e := expectError(t, err, code, words...)
	if !e.Server {
		t.Errorf("error %d %q did not come from the server", e.Code, e.Reason)
	}
	return e
}

// watchClose returns a channel that receives the channel's close reason.
func watchClose(ch *amqp.Channel) <-chan *amqp.Error {
	return ch.NotifyClose(make(chan *amqp.Error, 1))
}

// watchConnClose returns a channel that receives the connection's close reason.
func watchConnClose(conn *amqp.Connection) <-chan *amqp.Error {
	return conn.NotifyClose(make(chan *amqp.Error, 1))
}

// awaitClose waits (bounded) for an asynchronous close and checks its code
// and reply text.
func awaitClose(t *testing.T, c <-chan *amqp.Error, code int, words ...string) *amqp.Error {
	t.Helper()
	select {
	case e, ok := <-c:
		if !ok || e == nil {
			t.Fatalf("closed without an error, expected %d %v", code, words)
		}
		return expectChannelClose(t, e, code, words...)
	case <-time.After(waitTimeout):
		t.Fatalf("not closed within %v, expected %d %v", waitTimeout, code, words)
	}
	return nil
}

// expectOpen asserts that a channel is still usable (a synchronous round
// trip succeeds), i.e. that no asynchronous error closed it.
func expectOpen(t *testing.T, ch *amqp.Channel) {
	t.Helper()
	if err := ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("channel unexpectedly closed: %v", err)
	}
}

func strs(s ...string) []string { return s }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sp(s string) *string { return &s }
