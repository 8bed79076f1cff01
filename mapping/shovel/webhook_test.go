package shovel_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/shovel"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// broker is a core with its shovel manager, reopenable on the same store.
type broker struct {
	t   *testing.T
	dir string
	r   *mapping.Router
	m   *shovel.Manager
}

func openBroker(t *testing.T, dir string) *broker {
	t.Helper()
	r, err := mapping.Open(mapping.Config{DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	m := shovel.New(r, quietLogger())
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, dir: dir, r: r, m: m}
	t.Cleanup(b.close)
	return b
}

func (b *broker) close() {
	b.m.Close()
	b.r.Close()
}

type nopSink struct{}

func (nopSink) Deliver(mapping.Delivery) bool { return true }
func (nopSink) Cancelled(string, error)       {}

// channel opens a core channel as guest on "/".
func (b *broker) channel() *mapping.Channel {
	conn, err := b.r.Connect("guest", "/", mapping.ConnInfo{Name: "test", Hidden: true})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(conn.Close)
	return conn.OpenChannel(1, nopSink{})
}

func (b *broker) publish(queue string, ids ...string) {
	ch := b.channel()
	for _, id := range ids {
		done := make(chan bool, 1)
		m := &mapping.Message{RoutingKey: queue, Body: []byte(`{"id":"` + id + `"}`), Properties: mapping.Properties{
			Flags:        mapping.FlagDeliveryMode | mapping.FlagContentType | mapping.FlagMessageID | mapping.FlagHeaders,
			DeliveryMode: 2, ContentType: "application/json", MessageID: id, Headers: mapping.Table{"tenant": "t1"},
		}}
		if err := ch.Publish(m, func(o mapping.Outcome) { done <- o.Refused == mapping.NotRefused }).Err(); err != nil {
			b.t.Fatal(err)
		}
		if !<-done {
			b.t.Fatalf("publish %s not stored", id)
		}
	}
}

func (b *broker) queueLen(name string) int {
	info, err := b.channel().DeclareQueue(mapping.QueueSpec{Name: name}, true)
	if err != nil {
		b.t.Fatal(err)
	}
	return info.Messages
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is the webhook endpoint under test: it checks every request
// and fails the deliveries the test asks it to.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	acked  []string       // IDs answered 2xx, in order
	counts map[string]int // requests per ID
	maxDC  map[string]int // highest X-Amqp-Delivery-Count per ID
	fail   func(id string, n int) int
	bad    []string // problems seen in requests
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("X-Amqp-Message-Id")
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	user, pass, _ := req.BasicAuth()
	var parsed map[string]string
	json.Unmarshal(body, &parsed)
	rc.mu.Lock()
	if req.Method != http.MethodPost || req.URL.Path != "/in" || req.Header.Get("X-Hook-Signature") != want || user != "hook" || pass != "s3cret" || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("X-Amqp-Header-Tenant") != "t1" || req.Header.Get("X-Amqp-Delivery-Mode") != "2" || parsed["id"] != id {
		rc.bad = append(rc.bad, fmt.Sprintf("%s: %v body %s", id, req.Header, body))
	}
	rc.counts[id]++
	n := rc.counts[id]
	dc, _ := strconv.Atoi(req.Header.Get("X-Amqp-Delivery-Count"))
	rc.maxDC[id] = max(rc.maxDC[id], dc)
	rc.mu.Unlock()
	code := rc.fail(id, n)
	if code == http.StatusFound {
		// Where a client following redirects would GET a 200.
		w.Header().Set("Location", "/elsewhere")
	}
	switch code {
	case 0: // hang past the client's timeout
		time.Sleep(400 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	case http.StatusOK:
		rc.mu.Lock()
		rc.acked = append(rc.acked, id)
		rc.mu.Unlock()
		w.WriteHeader(code)
	default:
		w.WriteHeader(code)
	}
}

func (rc *receiver) snapshot() (acked []string, counts, maxDC map[string]int, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	counts, maxDC = map[string]int{}, map[string]int{}
	for k, v := range rc.counts {
		counts[k] = v
	}
	for k, v := range rc.maxDC {
		maxDC[k] = v
	}
	return append([]string(nil), rc.acked...), counts, maxDC, append([]string(nil), rc.bad...)
}

// TestWebhookRetriesInOrder: a webhook whose endpoint refuses connections
// at first, then answers 500 or hangs past the timeout for some
// deliveries, receives every message at least once, signed and with its
// properties, in queue order (prefetch 1); a message that always fails
// is dead-lettered after the queue's delivery limit; a restart of the
// broker in the middle loses nothing.
func TestWebhookRetriesInOrder(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	ch := b.channel()
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "hooks-dlq", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "hooks", Durable: true, Args: mapping.Table{
		"x-delivery-limit": int64(5), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "hooks-dlq",
	}}, false); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprint("m", i))
		if i == 7 {
			ids = append(ids, "poison")
		}
	}
	b.publish("hooks", ids...)

	// Nothing listens on addr until the test starts the endpoint there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rc := &receiver{t: t, secret: "k3y", counts: map[string]int{}, maxDC: map[string]int{}, fail: func(id string, n int) int {
		switch {
		case id == "poison":
			return http.StatusInternalServerError
		case id == "m3" && n == 1:
			return http.StatusServiceUnavailable
		case id == "m4" && n == 1:
			return http.StatusFound // a redirect is not followed: retried
		case id == "m5" && n == 1:
			return 0
		}
		return http.StatusOK
	}}
	value := fmt.Sprintf(`{"src-uri":"amqp://","src-queue":"hooks","dest-uri":"http://hook:s3cret@%s/in","src-prefetch-count":1,
		"dest-http-timeout":0.2,"dest-http-retry-delay":0.2,"dest-http-retry-max-delay":0.4,
		"dest-http-signature-secret":"k3y","dest-http-signature-header":"X-Hook-Signature"}`, addr)
	if created, err := b.m.Put("/", "hook", "guest", []byte(value)); err != nil || !created {
		t.Fatalf("Put: %v %v", created, err)
	}
	// Let a few connection attempts be refused before the endpoint starts.
	// Two refused attempts (the back-off leaves 0.4 s before a third): m0
	// stays within the queue's delivery limit of 5.
	eventually(t, 10*time.Second, "a refused attempt to requeue m0", func() bool { return b.r.Stats().Redelivered.Load() >= 1 })
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Close()

	eventually(t, 30*time.Second, "half the messages", func() bool { acked, _, _, _ := rc.snapshot(); return len(acked) >= n/2 })
	b.close()
	b = openBroker(t, dir)
	eventually(t, 30*time.Second, "every message and the poison in the DLQ", func() bool {
		acked, _, _, _ := rc.snapshot()
		seen := map[string]bool{}
		for _, id := range acked {
			seen[id] = true
		}
		return len(seen) == n && b.queueLen("hooks-dlq") == 1 && b.queueLen("hooks") == 0
	})
	acked, counts, maxDC, bad := rc.snapshot()
	if len(bad) > 0 {
		t.Fatalf("requests without the right headers, signature or body: %v", bad)
	}
	next := 0 // IDs first acked in queue order
	seen := map[string]bool{}
	for _, id := range acked {
		if seen[id] {
			continue // a redelivery after the restart: allowed, at least once
		}
		seen[id] = true
		if id != fmt.Sprint("m", next) {
			t.Fatalf("first deliveries out of order: got %s, want m%d (all: %v)", id, next, acked)
		}
		next++
	}
	if maxDC["m0"] < 2 {
		t.Fatalf("m0 reached the endpoint with delivery count %d; the refused attempts before should count", maxDC["m0"])
	}
	if counts["m3"] < 2 || counts["m4"] < 2 || counts["m5"] < 2 || maxDC["m3"] < 2 || maxDC["m5"] < 2 {
		t.Fatalf("m3/m5 not retried with a growing delivery count: counts %v, delivery counts %v", counts, maxDC)
	}
	if counts["poison"] < 2 {
		t.Fatalf("poison tried %d times", counts["poison"])
	}
	eventually(t, 10*time.Second, "the shovel to run again after the restart", func() bool {
		st := b.m.Statuses("/")
		return len(st) == 1 && st[0].State == shovel.StateRunning
	})
	// The API never shows the credentials or the secret.
	p, _ := b.r.Parameter("shovel", "/", "hook")
	shown := string(shovel.RedactValue(p.Value))
	if strings.Contains(shown, "s3cret") || strings.Contains(shown, "k3y") {
		t.Fatalf("redacted value shows a secret: %s", shown)
	}
}

// TestWebhookConcurrency: with src-prefetch-count 3 the endpoint sees
// three requests at once (it holds each until three are there) and never
// a fourth.
func TestWebhookConcurrency(t *testing.T) {
	b := openBroker(t, t.TempDir())
	if _, err := b.channel().DeclareQueue(mapping.QueueSpec{Name: "par", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprint("p", i))
	}
	b.publish("par", ids...)
	var mu sync.Mutex
	inFlight, most, served := 0, 0, 0
	three := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == 3 && served == 0 {
			close(three)
		}
		mu.Unlock()
		select {
		case <-three: // the first requests wait until three are in flight
		case <-time.After(10 * time.Second):
			w.WriteHeader(http.StatusGatewayTimeout)
		}
		mu.Lock()
		inFlight--
		served++
		mu.Unlock()
	}))
	defer srv.Close()
	value := fmt.Sprintf(`{"src-uri":"amqp://","src-queue":"par","dest-uri":%q,"src-prefetch-count":3}`, srv.URL+"/p")
	if _, err := b.m.Put("/", "par", "guest", []byte(value)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "30 answers", func() bool { mu.Lock(); defer mu.Unlock(); return served >= 30 })
	mu.Lock()
	defer mu.Unlock()
	if most != 3 {
		t.Fatalf("at most %d requests were in flight at once, want 3", most)
	}
}
