package main

// Shovel tests: real shovels between queues of in-process Warrens, real
// AMQP clients at both ends, the management API over HTTP.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// dialURL connects to url and opens a channel.
func dialURL(t testing.TB, url string) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn, ch
}

// shovelPut creates or replaces a shovel through the management API.
func shovelPut(a *mgmtClient, vhost, name string, value map[string]any) {
	a.t.Helper()
	code, body, _ := a.do("PUT", "/api/parameters/shovel/"+mgmtEscape(vhost)+"/"+mgmtEscape(name), map[string]any{"value": value})
	if code != 201 && code != 204 {
		a.t.Fatalf("PUT shovel %s: %d %s", name, code, body)
	}
}

// shovelState is the state (and reason) GET /api/shovels reports for name,
// "" when it is not listed.
func shovelState(a *mgmtClient, name string) (string, string) {
	a.t.Helper()
	var list []map[string]any
	a.want(200, "GET", "/api/shovels", nil, &list)
	for _, s := range list {
		if s["name"] == name {
			reason, _ := s["reason"].(string)
			return s["state"].(string), reason
		}
	}
	return "", ""
}

func waitShovel(t testing.TB, a *mgmtClient, name, state string) string {
	t.Helper()
	var reason string
	eventually(t, 30*time.Second, "shovel "+name+" "+state, func() bool {
		var st string
		st, reason = shovelState(a, name)
		return st == state
	})
	return reason
}

// publishN publishes n persistent messages with confirms; message i has
// MessageId "<prefix>i" and the properties of props(i).
func publishN(t testing.TB, url, queue, prefix string, n int, props func(i int, p *amqp.Publishing)) {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dcs []*amqp.DeferredConfirmation
	for i := range n {
		p := amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(prefix, i), Body: []byte(fmt.Sprint("body ", prefix, i))}
		if props != nil {
			props(i, &p)
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish to %s not confirmed: %v", queue, err)
		}
	}
}

// declareQueue declares a durable queue with args.
func declareQueue(t testing.TB, url, queue string, args amqp.Table) {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
}

// drain declares queue (durable, no arguments) and consumes it until
// every one of want message IDs arrived (and acks them), returning the
// deliveries by ID (the first of duplicates).
func drain(t testing.TB, url, queue string, want []string, timeout time.Duration) map[string]amqp.Delivery {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	// The shovel may not have declared it yet; it declares it the same way.
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]amqp.Delivery{}
	missing := map[string]bool{}
	for _, id := range want {
		missing[id] = true
	}
	deadline := time.After(timeout)
	for len(missing) > 0 {
		select {
		case d := <-ds:
			if _, dup := got[d.MessageId]; !dup {
				got[d.MessageId] = d
			}
			delete(missing, d.MessageId)
			d.Ack(false)
		case <-deadline:
			t.Fatalf("%d of %d messages never reached %s", len(missing), len(want), queue)
		}
	}
	return got
}

// queueLen is the number of ready messages in queue, -1 when it does
// not exist.
func queueLen(t testing.TB, url, queue string) int {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if e, ok := err.(*amqp.Error); ok && e.Code == amqp.NotFound {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// TestShovelBetweenQueues: a shovel on one Warren moves every message with
// its properties, adds the forward headers, reports RabbitMQ's states and
// shapes, and with src-delete-after: queue-length removes itself once the
// source is empty.
func TestShovelBetweenQueues(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	url, a := amqpURL(inst), newMgmtClient(t, inst)
	declareQueue(t, url, "shovel-src", nil)
	ts := time.Unix(1700000000, 0)
	publishN(t, url, "shovel-src", "m", 200, func(i int, p *amqp.Publishing) {
		p.ContentType, p.CorrelationId, p.Timestamp, p.Priority = "text/plain", fmt.Sprint("c", i), ts, 3
		p.Headers = amqp.Table{"n": int32(i), "nested": amqp.Table{"s": "x"}}
	})
	shovelPut(a, "/", "move", map[string]any{
		"src-uri": "amqp://", "src-queue": "shovel-src", "dest-uri": "amqp://", "dest-queue": "shovel-dst",
		"dest-add-forward-headers": true, "src-prefetch-count": 10,
	})
	got := drain(t, url, "shovel-dst", ids("m", 200), 30*time.Second)
	for i := range 200 {
		d := got[fmt.Sprint("m", i)]
		if string(d.Body) != fmt.Sprint("body m", i) || d.ContentType != "text/plain" || d.CorrelationId != fmt.Sprint("c", i) ||
			!d.Timestamp.Equal(ts) || d.Priority != 3 || d.DeliveryMode != amqp.Persistent || d.Headers["n"] != int32(i) {
			t.Fatalf("message %d arrived as %+v", i, d)
		}
		if nested, _ := d.Headers["nested"].(amqp.Table); nested["s"] != "x" {
			t.Fatalf("nested header lost: %v", d.Headers)
		}
		fw, _ := d.Headers["x-shovelled"].([]any)
		if len(fw) != 1 || fw[0].(amqp.Table)["shovel-name"] != "move" || fw[0].(amqp.Table)["src-queue"] != "shovel-src" {
			t.Fatalf("x-shovelled header: %v", d.Headers["x-shovelled"])
		}
	}
	var list []map[string]any
	a.want(200, "GET", "/api/shovels/%2F", nil, &list)
	if len(list) != 1 || list[0]["state"] != "running" || list[0]["src_queue"] != "shovel-src" || list[0]["dest_queue"] != "shovel-dst" ||
		list[0]["src_uri"] != "amqp://" || list[0]["type"] != "dynamic" || list[0]["vhost"] != "/" {
		t.Fatalf("GET /api/shovels/%%2F: %v", list)
	}
	var p map[string]any
	a.want(200, "GET", "/api/parameters/shovel/%2F/move", nil, &p)
	if p["component"] != "shovel" || p["name"] != "move" || p["vhost"] != "/" || p["value"].(map[string]any)["src-queue"] != "shovel-src" {
		t.Fatalf("GET parameter: %v", p)
	}
	a.want(204, "DELETE", "/api/parameters/shovel/%2F/move", nil, nil)
	a.wantError(404, "not_found", "GET", "/api/parameters/shovel/%2F/move", nil)
	a.wantError(400, "bad_request", "PUT", "/api/parameters/shovel/%2F/bad", map[string]any{"value": map[string]any{"src-uri": "amqp://", "src-queue": "x", "dest-uri": "amqp://", "ack-mode": "later"}})
	a.wantError(400, "bad_request", "PUT", "/api/parameters/shovel/%2F/bad", map[string]any{"value": map[string]any{"src-uri": "amqp://", "src-queue": "x", "dest-uri": "amqp://", "bogus": 1}})

	// src-delete-after: queue-length moves what is there and removes the shovel.
	publishN(t, url, "shovel-src", "q", 50, nil)
	shovelPut(a, "/", "once", map[string]any{
		"src-uri": "amqp://", "src-queue": "shovel-src", "dest-uri": "amqp://", "dest-queue": "shovel-dst", "src-delete-after": "queue-length",
	})
	drain(t, url, "shovel-dst", ids("q", 50), 30*time.Second)
	eventually(t, 30*time.Second, "the completed shovel to be removed", func() bool {
		code, _, _ := a.do("GET", "/api/parameters/shovel/%2F/once", nil)
		st, _ := shovelState(a, "once")
		return code == 404 && st == ""
	})
	if n := queueLen(t, url, "shovel-src"); n != 0 {
		t.Fatalf("source queue holds %d messages after the shovel completed", n)
	}
}

// TestShovelPermissions: a management user without policymaker may not
// create shovels (401, as RabbitMQ answers); a policymaker's shovel acts
// with that user's permissions, so it cannot read a queue the user
// cannot.
func TestShovelPermissions(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	url, a := amqpURL(inst), newMgmtClient(t, inst)
	for _, u := range []struct{ name, tags string }{{"shovel-mgmt", "management"}, {"shovel-pm", "policymaker"}} {
		a.want(201, "PUT", "/api/users/"+u.name, map[string]any{"password": "pw", "tags": u.tags}, nil)
		a.want(201, "PUT", "/api/permissions/%2F/"+u.name, map[string]any{"configure": "^(open|out)", "write": `^(open|out|amq\.default)$`, "read": "^open"}, nil)
	}
	declareQueue(t, url, "secret", nil)
	declareQueue(t, url, "open", nil)
	publishN(t, url, "secret", "s", 5, nil)
	publishN(t, url, "open", "o", 5, nil)
	value := func(src string) map[string]any {
		return map[string]any{"src-uri": "amqp://", "src-queue": src, "dest-uri": "amqp://", "dest-queue": "out", "reconnect-delay": 0.2}
	}
	mg := a.as("shovel-mgmt", "pw")
	if r := mg.wantError(401, "not_authorised", "PUT", "/api/parameters/shovel/%2F/nope", map[string]any{"value": value("open")}); !strings.Contains(r, "not authorised") {
		t.Fatalf("reason %q", r)
	}
	mg.wantError(401, "not_authorised", "GET", "/api/parameters/shovel", nil)

	pm := a.as("shovel-pm", "pw")
	shovelPut(pm, "/", "steal", value("secret"))
	reason := waitShovel(t, a, "steal", "terminated")
	if !strings.Contains(reason, "access") || !strings.Contains(reason, "secret") {
		t.Fatalf("terminated reason %q does not name the refused access", reason)
	}
	shovelPut(pm, "/", "fine", value("open"))
	drain(t, url, "out", ids("o", 5), 30*time.Second)
	if n := queueLen(t, url, "secret"); n != 5 {
		t.Fatalf("secret holds %d messages, want all 5", n)
	}
}

// TestShovelDestinationRestarts: with on-confirm, a destination broker
// that stops in the middle of the stream and comes back loses nothing: the
// shovel reconnects and every message arrives; the source ends empty.
func TestShovelDestinationRestarts(t *testing.T) {
	t.Parallel()
	src := startWarren(t, "")
	dstDir := t.TempDir()
	dst := startWarren(t, dstDir)
	dstAddr := dst.AMQPAddr()
	a := newMgmtClient(t, src)
	const n = 3000
	declareQueue(t, amqpURL(src), "stream", nil)
	publishN(t, amqpURL(src), "stream", "d", n, nil)
	shovelPut(a, "/", "out", map[string]any{
		"src-uri": "amqp://", "src-queue": "stream", "dest-uri": amqpURL(dst), "dest-queue": "landed",
		"src-prefetch-count": 50, "reconnect-delay": 0.2,
	})
	eventually(t, 30*time.Second, "some messages to land", func() bool { return queueLen(t, amqpURL(dst), "landed") > 200 })
	stopWarren(t, dst)
	waitShovel(t, a, "out", "terminated")
	dst = startWarrenWith(t, dstDir, func(c *Config) { c.AMQPAddr = dstAddr })
	drain(t, amqpURL(dst), "landed", ids("d", n), 60*time.Second)
	eventually(t, 30*time.Second, "the source to be empty", func() bool { return queueLen(t, amqpURL(src), "stream") == 0 })
	waitShovel(t, a, "out", "running")
}

// freePort returns a loopback address nothing listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCtlShovels: warren ctl sets, lists, restarts and deletes shovels,
// and a definitions export carries them into another Warren, where they
// run.
func TestCtlShovels(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := ctlRun(t, base, args...)
		if code != 0 {
			t.Fatalf("warren ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	value := `{"src-uri":"amqp://","src-queue":"ctl-a","dest-uri":"amqp://","dest-queue":"ctl-b"}`
	ok("set_parameter", "shovel", "by-ctl", value)
	a := newMgmtClient(t, inst)
	waitShovel(t, a, "by-ctl", "running")
	if out := ok("list_parameters"); !strings.Contains(out, "by-ctl") || !strings.Contains(out, `"src-queue":"ctl-a"`) {
		t.Errorf("list_parameters:\n%s", out)
	}
	if out := ok("shovel_status"); !strings.Contains(strings.Join(strings.Fields(out), " "), "by-ctl / dynamic running") {
		t.Errorf("shovel_status:\n%s", out)
	}
	ok("restart_shovel", "by-ctl")
	waitShovel(t, a, "by-ctl", "running")
	if code, _, errs := ctlRun(t, base, "set_parameter", "shovel", "bad", `{"src-uri":"amqp://"}`); code != ctlExitDataErr || !strings.Contains(errs, "dest-uri") {
		t.Errorf("set_parameter with a bad value: exit %d, %s", code, errs)
	}

	file := t.TempDir() + "/defs.json"
	ok("export_definitions", file)
	ok("delete_shovel", "by-ctl")
	a.wantError(404, "not_found", "GET", "/api/parameters/shovel/%2F/by-ctl", nil)
	other := startWarren(t, "")
	code, out, errs := ctlRun(t, "http://"+other.HTTPAddr(), "import_definitions", file)
	if code != 0 {
		t.Fatalf("import_definitions: %d %s %s", code, out, errs)
	}
	b := newMgmtClient(t, other)
	waitShovel(t, b, "by-ctl", "running")
	publishN(t, amqpURL(other), "ctl-a", "x", 10, nil)
	drain(t, amqpURL(other), "ctl-b", ids("x", 10), 30*time.Second)
}

// TestShovelRemoteQueueDeleted: the destination queue on a remote broker
// is deleted under a running shovel; messages go out mandatory, so the
// shovel notices the return, reconnects, declares the queue again and
// loses nothing.
func TestShovelRemoteQueueDeleted(t *testing.T) {
	t.Parallel()
	src, dst := startWarren(t, ""), startWarren(t, "")
	a := newMgmtClient(t, src)
	declareQueue(t, amqpURL(src), "rq-src", nil)
	shovelPut(a, "/", "rq", map[string]any{"src-uri": "amqp://", "src-queue": "rq-src", "dest-uri": amqpURL(dst), "dest-queue": "rq-dst", "reconnect-delay": 0.1})
	waitShovel(t, a, "rq", "running")
	conn, ch := dialURL(t, amqpURL(dst))
	defer conn.Close()
	if _, err := ch.QueueDelete("rq-dst", false, false, false); err != nil {
		t.Fatal(err)
	}
	publishN(t, amqpURL(src), "rq-src", "q", 20, nil)
	eventually(t, 30*time.Second, "the queue declared again", func() bool { return queueLen(t, amqpURL(dst), "rq-dst") >= 0 })
	drain(t, amqpURL(dst), "rq-dst", ids("q", 20), 30*time.Second)
}

// TestShovelSourceRestarts: the source broker stops in the middle of the
// stream and comes back; the shovel (running on the destination)
// reconnects and every message arrives, the source ending empty.
func TestShovelSourceRestarts(t *testing.T) {
	t.Parallel()
	srcDir := t.TempDir()
	src := startWarren(t, srcDir)
	srcAddr := src.AMQPAddr()
	dst := startWarren(t, "")
	a := newMgmtClient(t, dst)
	const n = 3000
	declareQueue(t, amqpURL(src), "far", nil)
	publishN(t, amqpURL(src), "far", "s", n, nil)
	shovelPut(a, "/", "pull", map[string]any{
		"src-uri": amqpURL(src), "src-queue": "far", "dest-uri": "amqp://", "dest-queue": "near",
		"src-prefetch-count": 50, "reconnect-delay": 0.2,
	})
	eventually(t, 30*time.Second, "some messages to arrive", func() bool { return queueLen(t, amqpURL(dst), "near") > 200 })
	stopWarren(t, src)
	waitShovel(t, a, "pull", "terminated")
	src = startWarrenWith(t, srcDir, func(c *Config) { c.AMQPAddr = srcAddr })
	drain(t, amqpURL(dst), "near", ids("s", n), 60*time.Second)
	eventually(t, 30*time.Second, "the source to be empty", func() bool { return queueLen(t, amqpURL(src), "far") == 0 })
}
