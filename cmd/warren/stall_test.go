package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestLargePersistentPublishesDoNotStallTheBroker is issue 12's scenario:
// three channels publish 15 MiB persistent messages into one durable
// queue, more than the store lets be in flight at once. Meanwhile a 2-byte
// confirmed publish from another connection to another durable queue must
// get its confirm, GET /api/queues must answer and SIGTERM must stop the
// process. Before the store seam was fixed, the publisher appending under
// the queue lock waited for store capacity that only that queue's own
// completions (which needed the same lock) could free: every queue, the
// management API and shutdown hung. The timeouts below only detect a hang;
// they are far above what the operations take.
func TestLargePersistentPublishesDoNotStallTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and pushes a few hundred MiB through it")
	}
	const (
		big        = 15 << 20
		publishers = 3
		perChannel = 8 // 3 × 8 × 15 MiB: well past the store's 64 MiB in flight
	)
	var logs lockedBuffer
	cmd, url, httpBase := startProcessHTTP(t, t.TempDir(), &logs)
	defer func() {
		if t.Failed() {
			t.Logf("warren's log:\n%s", logs.String())
		}
	}()

	declareDurable(t, url, "stall-big", "stall-small")
	// The management API without the load, as the baseline of the
	// figures logged below.
	idle := newAPITimer(t, httpBase)
	for k := range 2 * apiReportSamples {
		idle.get(apiPaths[k%len(apiPaths)])
	}

	body := make([]byte, big)
	var published sync.WaitGroup // each publisher's first two messages are out
	published.Add(publishers)
	var publishing sync.WaitGroup // the publishers still publish
	publishing.Add(publishers)
	var pubConns []*amqp.Connection
	for p := range publishers {
		conn, ch := dialURL(t, url)
		pubConns = append(pubConns, conn)
		go func() {
			defer publishing.Done()
			for i := range perChannel {
				err := ch.PublishWithContext(context.Background(), "", "stall-big", false, false,
					amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: fmt.Sprintf("%d-%d", p, i), Body: body})
				if i == 1 {
					published.Done()
				}
				if err != nil {
					return
				}
			}
		}()
	}
	published.Wait()

	// The small confirmed publish, on its own connection, to another queue.
	conn, ch := dialURL(t, url)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	smallAt := time.Now()
	if err := ch.PublishWithContext(context.Background(), "", "stall-small", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-confirms:
		if !c.Ack {
			t.Fatalf("small publish nacked: %+v", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no confirm for a 2-byte publish to another queue within 20 s while large messages are published")
	}
	t.Logf("small confirmed publish under the 15 MiB load: confirm after %v", time.Since(smallAt).Round(10*time.Microsecond))

	// Issue 12's figure for "the management API answers at once": both
	// endpoints, alternately, while the publishers still publish (a
	// report, not an assertion: get fails the test only on an error or a
	// 30 s hang).
	loaded := newAPITimer(t, httpBase)
	allPublished := make(chan struct{})
	go func() { publishing.Wait(); close(allPublished) }()
	for k := 0; loaded.least() < apiReportSamples; k++ {
		select {
		case <-allPublished:
		case <-time.After(10 * time.Millisecond): // spread over the load
			if loaded.get(apiPaths[k%len(apiPaths)]) {
				continue
			}
		}
		break
	}
	loaded.report(idle)

	// The management API answers, with the small message counted.
	hc := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", httpBase+"/api/queues", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET /api/queues while large messages are published: %v", err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`"name":"stall-small"`).Match(data) {
		t.Fatalf("GET /api/queues: status %d, body %.300s", resp.StatusCode, data)
	}

	// SIGTERM stops the process while the publishers are still connected.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("warren exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("warren did not stop within 60 s of SIGTERM")
	}
	conn.Close()
	for _, c := range pubConns {
		c.Close()
	}
}

// apiReportSamples is how many times the stall test and benchmark ask
// each management API endpoint for the latency figures they log.
const apiReportSamples = 20

// declareDurable declares durable queues on a connection of its own.
func declareDurable(t testing.TB, url string, queues ...string) {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
}
