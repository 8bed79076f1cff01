package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// startThree starts a three-node cluster of Warren processes and logs
// every node's output when the test fails. It returns the nodes and
// their route addresses (to restart one).
func startThree(t *testing.T) ([]*clusterNode, []string) {
	t.Helper()
	addrs := loopbackAddrs(t, 3)
	var nodes []*clusterNode
	for i := range 3 {
		nodes = append(nodes, &clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), logs: &lockedBuffer{}})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's log:\n%s", n.name, n.logs.String())
			}
		}
	})
	startCluster(t, nodes, addrs, strings.Join(addrs, ","))
	return nodes, addrs
}

// recv waits for one delivery, failing the test after a generous
// deadline (the deadline only stops a hung test).
func recv(t *testing.T, what string, c <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-c:
		if !ok {
			t.Fatalf("%s: consumer closed", what)
		}
		return d
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no delivery within 20 s", what)
	}
	return amqp.Delivery{}
}

// none checks that nothing more arrives on c for a short while.
func none(t *testing.T, what string, c <-chan amqp.Delivery) {
	t.Helper()
	select {
	case d := <-c:
		t.Errorf("%s: unexpected delivery %q", what, d.Body)
	case <-time.After(300 * time.Millisecond):
	}
}

func consume(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) <-chan amqp.Delivery {
	t.Helper()
	c, err := ch.Consume(queue, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	return c
}

func confirmed(t *testing.T, ch *amqp.Channel, exchange, key string, p amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish to %q/%q: confirmed %v, %v", exchange, key, ok, err)
	}
}

// TestClusterTutorials runs RabbitMQ's six tutorials on a three-node
// cluster of processes with the publisher, the consumers and the queue's
// declarer on different nodes: one broker, whichever node a client
// connects to.
func TestClusterTutorials(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	nodes, _ := startThree(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	t.Run("hello world", func(t *testing.T) {
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		if _, err := ch1.QueueDeclare("hello", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		c2, ch2 := dialURL(t, n2.amqp)
		defer c2.Close()
		// Declared on n1, declared again (same arguments) on n2.
		if _, err := ch2.QueueDeclare("hello", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch2.Publish("", "hello", false, false, amqp.Publishing{Body: []byte("Hello World!")}); err != nil {
			t.Fatal(err)
		}
		c3, ch3 := dialURL(t, n3.amqp)
		defer c3.Close()
		d := recv(t, "hello on n3", consume(t, ch3, "hello", true))
		if string(d.Body) != "Hello World!" {
			t.Errorf("n3 received %q", d.Body)
		}
	})

	t.Run("work queues", func(t *testing.T) {
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		if _, err := ch1.QueueDeclare("task_queue", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch1.Confirm(false); err != nil {
			t.Fatal(err)
		}
		// Two workers with prefetch 1 on n2 and n3.
		var workers []<-chan amqp.Delivery
		var chans []*amqp.Channel
		for _, n := range []*clusterNode{n2, n3} {
			c, ch := dialURL(t, n.amqp)
			defer c.Close()
			if err := ch.Qos(1, 0, false); err != nil {
				t.Fatal(err)
			}
			workers = append(workers, consume(t, ch, "task_queue", false))
			chans = append(chans, ch)
		}
		for i := range 4 {
			confirmed(t, ch1, "", "task_queue", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("task %d", i))})
		}
		// Fair dispatch: each worker holds one unacked task, no more.
		a := recv(t, "worker on n2", workers[0])
		b := recv(t, "worker on n3", workers[1])
		none(t, "worker on n2 at its prefetch", workers[0])
		none(t, "worker on n3 at its prefetch", workers[1])
		if a.Redelivered || b.Redelivered {
			t.Errorf("first deliveries flagged redelivered")
		}
		// The n3 worker dies without acking: its task comes back,
		// redelivered, to the worker on n2.
		chans[1].Close()
		if err := a.Ack(false); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{string(a.Body): true}
		redelivered := false
		for len(got) < 4 {
			d := recv(t, "worker on n2", workers[0])
			if string(d.Body) == string(b.Body) {
				redelivered = d.Redelivered
			} else if d.Redelivered {
				t.Errorf("%q flagged redelivered", d.Body)
			}
			got[string(d.Body)] = true
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
		if !redelivered {
			t.Errorf("the task the n3 worker held (%q) was not redelivered with the flag", b.Body)
		}
	})

	t.Run("publish subscribe", func(t *testing.T) {
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		if err := ch1.ExchangeDeclare("logs", "fanout", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		var subs []<-chan amqp.Delivery
		for _, n := range []*clusterNode{n2, n3} {
			c, ch := dialURL(t, n.amqp)
			defer c.Close()
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.QueueBind(q.Name, "", "logs", false, nil); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, consume(t, ch, q.Name, true))
		}
		for i := range 3 {
			if err := ch1.Publish("logs", "", false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("log %d", i))}); err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range subs {
			for j := range 3 {
				if d := recv(t, fmt.Sprintf("subscriber %d", i), s); string(d.Body) != fmt.Sprintf("log %d", j) {
					t.Errorf("subscriber %d got %q, want log %d", i, d.Body, j)
				}
			}
		}
	})

	t.Run("routing and topics", func(t *testing.T) {
		c3, ch3 := dialURL(t, n3.amqp)
		defer c3.Close()
		if err := ch3.ExchangeDeclare("direct_logs", "direct", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch3.ExchangeDeclare("topic_logs", "topic", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		errs, err := ch1.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		kern, err := ch1.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][3]string{{errs.Name, "error", "direct_logs"}, {kern.Name, "kern.*", "topic_logs"}, {kern.Name, "*.critical", "topic_logs"}} {
			if err := ch1.QueueBind(b[0], b[1], b[2], false, nil); err != nil {
				t.Fatal(err)
			}
		}
		errC, kernC := consume(t, ch1, errs.Name, true), consume(t, ch1, kern.Name, true)
		c2, ch2 := dialURL(t, n2.amqp)
		defer c2.Close()
		for _, p := range [][2]string{{"direct_logs", "info"}, {"direct_logs", "error"}, {"topic_logs", "kern.info"}, {"topic_logs", "app.info"}, {"topic_logs", "app.critical"}} {
			if err := ch2.Publish(p[0], p[1], false, false, amqp.Publishing{Body: []byte(p[1])}); err != nil {
				t.Fatal(err)
			}
		}
		if d := recv(t, "direct", errC); string(d.Body) != "error" {
			t.Errorf("direct queue got %q", d.Body)
		}
		var topics []string
		for range 2 {
			topics = append(topics, string(recv(t, "topic", kernC).Body))
		}
		sort.Strings(topics)
		if !slices.Equal(topics, []string{"app.critical", "kern.info"}) {
			t.Errorf("topic queue got %q", topics)
		}
		none(t, "direct", errC)
		none(t, "topic", kernC)
	})

	t.Run("rpc", func(t *testing.T) {
		// The server on n2 answers on rpc_queue.
		c2, ch2 := dialURL(t, n2.amqp)
		defer c2.Close()
		if _, err := ch2.QueueDeclare("rpc_queue", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch2.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		reqs := consume(t, ch2, "rpc_queue", false)
		go func() {
			for d := range reqs {
				var n int
				fmt.Sscanf(string(d.Body), "%d", &n)
				ch2.Publish("", d.ReplyTo, false, false, amqp.Publishing{CorrelationId: d.CorrelationId, Body: []byte(fmt.Sprint(n * n))})
				d.Ack(false)
			}
		}()
		// Clients on n3 and n1: one with an exclusive callback queue,
		// one with direct reply-to.
		c3, ch3 := dialURL(t, n3.amqp)
		defer c3.Close()
		cb, err := ch3.QueueDeclare("", false, false, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		replies := consume(t, ch3, cb.Name, true)
		if err := ch3.Publish("", "rpc_queue", false, false, amqp.Publishing{ReplyTo: cb.Name, CorrelationId: "c-7", Body: []byte("7")}); err != nil {
			t.Fatal(err)
		}
		if d := recv(t, "rpc reply on n3", replies); d.CorrelationId != "c-7" || string(d.Body) != "49" {
			t.Errorf("rpc reply on n3: %q %q", d.CorrelationId, d.Body)
		}
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		direct := consume(t, ch1, "amq.rabbitmq.reply-to", true)
		if err := ch1.Publish("", "rpc_queue", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "c-9", Body: []byte("9")}); err != nil {
			t.Fatal(err)
		}
		if d := recv(t, "direct reply-to on n1", direct); d.CorrelationId != "c-9" || string(d.Body) != "81" {
			t.Errorf("direct reply-to on n1: %q %q", d.CorrelationId, d.Body)
		}
	})

	t.Run("rest and websocket rpc", func(t *testing.T) {
		// The worker on n1; a curl-style REST call on n2 and a browser
		// style WebSocket call on n3.
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		if _, err := ch1.QueueDeclare("rpc_http", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		reqs := consume(t, ch1, "rpc_http", false)
		go func() {
			for d := range reqs {
				ch1.Publish("", d.ReplyTo, false, false, amqp.Publishing{CorrelationId: d.CorrelationId, Body: []byte(strings.ToUpper(string(d.Body)))})
				d.Ack(false)
			}
		}()
		req, _ := http.NewRequest("POST", n2.http+"/v1/rpc/amq.default/rpc_http?timeout=10s", strings.NewReader("ping"))
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "PING" {
			t.Errorf("REST RPC on n2: %d %q", resp.StatusCode, body)
		}
		ws, _, err := wsDialAddr(t, strings.TrimPrefix(n3.http, "http://"), "/v1/ws", guestHeader())
		if err != nil {
			t.Fatal(err)
		}
		ws.expect("welcome", nil)
		id := ws.send(map[string]any{"op": "rpc", "routing_key": "rpc_http", "payload": "pong", "timeout_ms": 10000})
		if r := ws.expect("reply", id); r["payload"] != "PONG" {
			t.Errorf("WebSocket RPC on n3: %v", r)
		}
	})

	t.Run("server-sent events", func(t *testing.T) {
		// A browser's event stream on n3 of a queue homed on n1, fed by a
		// publisher on n2.
		c1, ch1 := dialURL(t, n1.amqp)
		defer c1.Close()
		if _, err := ch1.QueueDeclare("sse_feed", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		rc := &restClient{t: t, base: n3.http, user: "guest", pass: "guest", hc: http.DefaultClient}
		s := openSSE(t, rc, "/v1/events?queue=sse_feed", "")
		c2, ch2 := dialURL(t, n2.amqp)
		defer c2.Close()
		if err := ch2.Confirm(false); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			confirmed(t, ch2, "", "sse_feed", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("event %d", i))})
		}
		for i := range 3 {
			if _, m := s.message(t); m.Payload != fmt.Sprintf("event %d", i) {
				t.Errorf("event %d on n3: %+v", i, m)
			}
		}
	})
}
