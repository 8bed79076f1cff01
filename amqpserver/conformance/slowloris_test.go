package conformance

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Slowloris: many sockets each trickle the protocol header, one byte every
// 2 s, so that none ever completes the handshake. Each must be closed at
// the handshake timeout (Warren's default 10 s; RabbitMQ's handshake_timeout
// is 10 s too) while well-behaved clients still connect and get a
// publish/consume round trip done quickly.
func TestSlowlorisHandshakeTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 12 s")
	}
	const (
		sockets          = 200
		byteEvery        = 2 * time.Second
		handshakeTimeout = 10 * time.Second
	)
	f := newFixture(t)
	host := hostOf(t, f.url)

	type result struct {
		closedAfter time.Duration // 0: never closed
		bytesSent   int
		err         error
	}
	results := make([]result, sockets)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	dialed := 0
	for i := range sockets {
		c, err := net.DialTimeout("tcp", host, waitTimeout)
		if err != nil {
			t.Logf("dial %d: %v (stopping at %d sockets)", i, err, i)
			break
		}
		dialed++
		f.track(c)
		start := time.Now()
		closed := make(chan struct{})
		wg.Add(2)
		go func() { // reader: notices the server closing the socket
			defer wg.Done()
			defer close(closed)
			buf := make([]byte, 512)
			for {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					if !(errors.As(err, &ne) && ne.Timeout()) {
						results[i].closedAfter = time.Since(start)
					}
					results[i].err = err
					return
				}
			}
		}()
		go func() { // writer: one byte of the header every byteEvery
			defer wg.Done()
			hdr := []byte("AMQP\x00\x00\x09\x01")
			for n := range hdr {
				_ = c.SetWriteDeadline(time.Now().Add(waitTimeout))
				if _, err := c.Write(hdr[n : n+1]); err != nil {
					return
				}
				results[i].bytesSent = n + 1
				select {
				case <-closed:
					return
				case <-stop:
					return
				case <-time.After(byteEvery):
				}
			}
		}()
	}
	attackStart := time.Now()
	t.Logf("%d slow sockets open", dialed)

	// Meanwhile, normal clients: one full round trip every second.
	var worst time.Duration
	rounds := 0
	for time.Since(attackStart) < handshakeTimeout-time.Second {
		d := roundTrip(t, f)
		rounds++
		worst = max(worst, d)
		time.Sleep(time.Second - min(d, time.Second))
	}
	t.Logf("%d normal round trips during the attack, slowest %v", rounds, worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("a normal connect+publish+consume took %v during the attack, want < 1 s", worst)
	}

	// Wait until every slow socket has been closed or the timeout is well
	// past.
	done := make(chan struct{})
	go func() {
		// Readers end when the server closes the socket; writers with them.
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(handshakeTimeout + 5*time.Second - time.Since(attackStart)):
	}
	close(stop)
	f.killSockets()
	<-done

	var early, late, never int
	var first, last time.Duration
	for i, r := range results[:dialed] {
		switch {
		case r.closedAfter == 0:
			never++
			if never <= 3 {
				t.Logf("socket %d not closed (sent %d bytes, %v)", i, r.bytesSent, r.err)
			}
			continue
		case r.closedAfter < handshakeTimeout-time.Second:
			early++
		case r.closedAfter > handshakeTimeout+3*time.Second:
			late++
		}
		if first == 0 || r.closedAfter < first {
			first = r.closedAfter
		}
		last = max(last, r.closedAfter)
	}
	t.Logf("slow sockets closed between %v and %v after connecting (early %d, late %d, never %d)",
		first.Round(time.Millisecond), last.Round(time.Millisecond), early, late, never)
	if never > 0 || late > 0 {
		t.Errorf("%d slow sockets never closed and %d closed late (handshake timeout %v)", never, late, handshakeTimeout)
	}
	if early > 0 {
		t.Errorf("%d slow sockets closed before the handshake timeout", early)
	}
	// And the broker still takes new connections afterwards.
	if d := roundTrip(t, f); d > time.Second {
		t.Errorf("round trip after the attack took %v", d)
	}
}

// roundTrip connects, declares a server-named queue, consumes, publishes
// one message, receives it and closes; it returns how long that took.
func roundTrip(t *testing.T, f *fixture) time.Duration {
	t.Helper()
	start := time.Now()
	conn, err := f.dialURL(f.url, amqp.Config{})
	if err != nil {
		t.Fatalf("dial during the attack: %v", err)
	}
	defer closeConn(conn)
	ch := f.channel(conn)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("queue.declare: %v", err)
	}
	d := consume(t, ch, q.Name, true)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte("ping")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if m := recv(t, d); string(m.Body) != "ping" {
		t.Fatalf("got %q", m.Body)
	}
	_ = conn.Close()
	return time.Since(start)
}
