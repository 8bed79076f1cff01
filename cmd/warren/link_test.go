package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// linkCluster starts n in-process nodes n1..nN of one cluster.
func linkCluster(t testing.TB, n int) []*instance {
	t.Helper()
	return startInProcessCluster(t, loopbackClusterConfigs(t, n), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// homeQueue declares a durable queue on insts[home] with a real client
// (the replicated metadata makes its copy on every other node).
func homeQueue(t testing.TB, insts []*instance, home int, name string) {
	t.Helper()
	declareDurable(t, amqpURL(insts[home]), name)
}

// TestLinkClientsOnAnyNode: amqp091-go clients on n2 use a queue homed on
// n1 as if it were there: confirmed publishes, prefetch, ack, nack with
// requeue (redelivered), basic.get and declare-ok counts; a consumer on
// n1 gets what is published on n2; REST publishes on n2 arrive; and RPC
// with direct reply-to works with the caller on n2 and the worker on n1.
func TestLinkClientsOnAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	insts := linkCluster(t, 2)
	homeQueue(t, insts, 0, "link-work")
	conn2, ch2 := dialURL(t, amqpURL(insts[1]))
	defer conn2.Close()
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch2.NotifyPublish(make(chan amqp.Confirmation, 16))
	for i := range 5 {
		if err := ch2.Publish("", "link-work", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d nacked", i)
		}
	}
	if q, err := ch2.QueueDeclarePassive("link-work", true, false, false, false, nil); err != nil || q.Messages != 5 {
		t.Fatalf("passive declare on n2: %+v %v", q, err)
	}
	g, ok, err := ch2.Get("link-work", false)
	if err != nil || !ok || string(g.Body) != "m0" || g.MessageCount != 4 {
		t.Fatalf("get on n2: %q %v %v count %d", g.Body, ok, err, g.MessageCount)
	}
	if err := g.Nack(false, true); err != nil {
		t.Fatal(err)
	}

	// A consumer on n2 with prefetch 2.
	_, cch := dialURL(t, amqpURL(insts[1]))
	if err := cch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("link-work", "c2", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := nextDelivery(t, ds), nextDelivery(t, ds)
	if string(d1.Body) != "m0" || !d1.Redelivered || string(d2.Body) != "m1" {
		t.Fatalf("first deliveries %q (redelivered %v) %q", d1.Body, d1.Redelivered, d2.Body)
	}
	select {
	case d := <-ds:
		t.Fatalf("a third delivery beyond prefetch 2: %q", d.Body)
	case <-time.After(200 * time.Millisecond):
	}
	if err := d2.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	if d := nextDelivery(t, ds); string(d.Body) != "m1" || !d.Redelivered {
		t.Fatalf("after nack: %q redelivered %v", d.Body, d.Redelivered)
	} else if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := d1.Ack(false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m2", "m3", "m4"} {
		d := nextDelivery(t, ds)
		if string(d.Body) != want {
			t.Fatalf("got %q, want %q", d.Body, want)
		}
		d.Ack(false)
	}
	cch.Cancel("c2", false)

	// Publish on n2 reaches a consumer on n1; REST on n2 too.
	_, ch1 := dialURL(t, amqpURL(insts[0]))
	ds1, err := ch1.Consume("link-work", "c1", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2.Publish("", "link-work", false, false, amqp.Publishing{Body: []byte("amqp-n2")}); err != nil {
		t.Fatal(err)
	}
	<-confirms
	if d := nextDelivery(t, ds1); string(d.Body) != "amqp-n2" {
		t.Fatalf("n1 consumer got %q", d.Body)
	}
	var res struct{ Routed bool }
	newREST(t, insts[1]).expect(http.StatusOK, &res, "POST", "/v1/publish/amq.default/link-work", []byte("rest-n2"))
	if d := nextDelivery(t, ds1); !res.Routed || string(d.Body) != "rest-n2" {
		t.Fatalf("REST publish on n2: routed %v, n1 consumer got %q", res.Routed, d.Body)
	}

	// RPC: worker on n1 consumes link-rpc, caller on n2 uses direct reply-to.
	homeQueue(t, insts, 0, "link-rpc")
	work, err := ch1.Consume("link-rpc", "worker", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range work {
			ch1.Publish("", d.ReplyTo, false, false, amqp.Publishing{CorrelationId: d.CorrelationId, Body: append([]byte("re: "), d.Body...)})
		}
	}()
	_, caller := dialURL(t, amqpURL(insts[1]))
	replies, err := caller.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := caller.PublishWithContext(ctx, "", "link-rpc", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "42", Body: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	if r := nextDelivery(t, replies); string(r.Body) != "re: ping" || r.CorrelationId != "42" {
		t.Fatalf("reply %q corr %q", r.Body, r.CorrelationId)
	}

	// RPC with an exclusive server-named callback queue: the caller on
	// n1 declares it (homed on n1), the worker on n2 replies into it.
	cb, err := ch1.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cbs, err := ch1.Consume(cb.Name, "cb", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2.Publish("", cb.Name, false, false, amqp.Publishing{CorrelationId: "7", Body: []byte("callback")}); err != nil {
		t.Fatal(err)
	}
	if c := <-confirms; !c.Ack {
		t.Fatal("publish into the callback queue nacked")
	}
	if r := nextDelivery(t, cbs); string(r.Body) != "callback" || r.CorrelationId != "7" {
		t.Fatalf("callback %q corr %q", r.Body, r.CorrelationId)
	}
	// Another connection cannot consume it, from any node.
	_, other := dialURL(t, amqpURL(insts[1]))
	if _, err := other.Consume(cb.Name, "", true, false, false, false, nil); err == nil || !strings.Contains(err.Error(), "405") {
		t.Fatalf("consume of another connection's exclusive queue on n2: %v", err)
	}
}

// BenchmarkLinkPublishConsume: 1 KiB transient messages published with
// confirms (256 in flight) and consumed (auto-ack) by clients on the
// queue's home node, and by clients on another node (every message
// forwarded to the home and delivered back). The two alternate in rounds
// of 5,000 messages in the same run, so load on the machine hits both
// alike; it reports each rate and other/home.
func BenchmarkLinkPublishConsume(b *testing.B) {
	insts := linkCluster(b, 2)
	homeQueue(b, insts, 0, "bench-link")
	type side struct {
		inst *instance
		ch   *amqp.Channel
		took time.Duration
		n    int
	}
	sides := []*side{{inst: insts[0]}, {inst: insts[1]}}
	for _, s := range sides {
		_, s.ch = dialURL(b, amqpURL(s.inst))
	}
	// One side's consumer at a time, so that it gets every message.
	round := func(s *side, n int) {
		start := time.Now()
		ds, err := s.ch.Consume("bench-link", "bench", true, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		got := make(chan struct{})
		go func() {
			for range n {
				<-ds
			}
			close(got)
		}()
		fill := seqFill{url: amqpURL(s.inst), queue: "bench-link", mode: amqp.Transient, size: 1024, publishers: 1, window: 256}
		if err := fill.run(n); err != nil {
			b.Fatal(err)
		}
		<-got
		if err := s.ch.Cancel("bench", false); err != nil {
			b.Fatal(err)
		}
		s.took += time.Since(start)
		s.n += n
	}
	b.SetBytes(2 * 1024)
	b.ResetTimer()
	for left := b.N; left > 0; left -= 5000 {
		n := min(left, 5000)
		for _, s := range sides {
			round(s, n)
		}
	}
	b.StopTimer()
	home, other := float64(sides[0].n)/sides[0].took.Seconds(), float64(sides[1].n)/sides[1].took.Seconds()
	b.ReportMetric(home, "home-msg/s")
	b.ReportMetric(other, "other-msg/s")
	b.ReportMetric(other/home, "other/home")
}

// TestLinkSTOMPAndPrioritiesAcrossNodes: a STOMP client on n2 subscribes
// to and sends into a queue a STOMP client created on n1 (receipt after
// the home stored it, client acks settled at the home), and a priority
// queue homed on n1 hands a consumer on n2 the messages published on n2
// highest priority first.
func TestLinkSTOMPAndPrioritiesAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	insts := linkCluster(t, 2)
	waitAllRunning(t, insts)

	s1 := stompDial(t, insts[0], "")
	s1.connect()
	s1.send("SUBSCRIBE", "", "id", "a", "destination", "/queue/stomp-x", "receipt", "r0")
	s1.expect("RECEIPT")
	s1.send("DISCONNECT", "", "receipt", "bye")
	s1.expect("RECEIPT")
	vh, err := insts[1].router.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := vh.Queue("stomp-x"); err != nil || st.Node != "n1" {
		t.Fatalf("stomp-x on n2: %+v %v, want homed on n1", st, err)
	}
	s2 := stompDial(t, insts[1], "")
	s2.connect()
	s2.send("SUBSCRIBE", "", "id", "b", "destination", "/queue/stomp-x", "ack", "client-individual", "receipt", "r1")
	s2.expect("RECEIPT")
	s2.send("SEND", "via-n2", "destination", "/queue/stomp-x", "persistent", "true", "receipt", "s1")
	var msg *stompTestFrame
	receipted := false
	for msg == nil || !receipted {
		f, err := s2.next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.cmd == "RECEIPT" && f.headers["receipt-id"] == "s1":
			receipted = true
		case f.cmd == "MESSAGE":
			msg = f
		default:
			t.Fatalf("unexpected %s %v %q", f.cmd, f.headers, f.body)
		}
	}
	if msg.body != "via-n2" {
		t.Fatalf("MESSAGE on n2 %q", msg.body)
	}
	home, err := insts[0].router.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := home.Queue("stomp-x"); st.Unacked != 1 {
		t.Fatalf("n1 books %d unacked, want 1", st.Unacked)
	}
	s2.send("ACK", "", "id", msg.headers["ack"], "receipt", "a1")
	s2.expect("RECEIPT")
	deadline := time.Now().Add(5 * time.Second)
	for st, _ := home.Queue("stomp-x"); st.Unacked != 0 || st.Ready != 0; st, _ = home.Queue("stomp-x") {
		if time.Now().After(deadline) {
			t.Fatalf("after the ACK on n2, n1 holds %d ready, %d unacked", st.Ready, st.Unacked)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Priorities are the home's: published on n2, consumed on n2.
	conn1, ch1 := dialURL(t, amqpURL(insts[0]))
	defer conn1.Close()
	if _, err := ch1.QueueDeclare("prio-x", true, false, false, false, amqp.Table{"x-max-priority": int32(9)}); err != nil {
		t.Fatal(err)
	}
	conn2, ch2 := dialURL(t, amqpURL(insts[1]))
	defer conn2.Close()
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch2.NotifyPublish(make(chan amqp.Confirmation, 8))
	for _, p := range []uint8{1, 5, 9, 0} {
		if err := ch2.Publish("", "prio-x", false, false, amqp.Publishing{Priority: p, Body: fmt.Appendf(nil, "p%d", p)}); err != nil {
			t.Fatal(err)
		}
		if c := <-confirms; !c.Ack {
			t.Fatalf("priority %d publish nacked", p)
		}
	}
	ds := consume(t, ch2, "prio-x", true)
	for _, want := range []string{"p9", "p5", "p1", "p0"} {
		if d := recv(t, "priority consumer on n2", ds); string(d.Body) != want {
			t.Fatalf("got %q, want %q (highest priority first)", d.Body, want)
		}
	}
}
