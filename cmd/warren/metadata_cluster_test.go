package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpErrCode is the reply code of an AMQP channel or connection error.
func amqpErrCode(err error) int {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// passiveQueue declares name passively on a fresh connection to url
// and returns the broker's error (nil when the queue exists).
func passiveQueue(t *testing.T, url, name string) error {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	_, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	return err
}

// waitGone polls until a passive declare of name on url says 404: a
// deletion made on another node reaches this one through its watcher.
func waitGone(t *testing.T, url, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := passiveQueue(t, url, name)
		if amqpErrCode(err) == amqp.NotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s still declared on %s after %s: %v", name, url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterMetadataReplicated: three in-process nodes share their
// metadata. What n1 declares (exchange, queue, binding, vhost, user,
// permission) is found on n2 and n3 right after n1's answer; a delete
// on n2 reaches n1 and n3; two nodes declaring one queue with different
// arguments at once: one wins, the other gets 406; a node restarted
// after changes made while it was down sees them (and does not run n1's
// shovel); a transient queue of a node that is gone disappears from the
// others.
func TestClusterMetadataReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	cfgs := loopbackClusterConfigs(t, 3)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	insts := startInProcessCluster(t, cfgs, logger)
	urlOf := func(i int, user, pass, vhost string) string {
		return fmt.Sprintf("amqp://%s:%s@%s/%s", user, pass, insts[i].AMQPAddr(), strings.ReplaceAll(vhost, "/", "%2F"))
	}
	guest := func(i int) string { return amqpURL(insts[i]) }

	// n1 declares; n2 and n3 find everything right after the answers.
	conn, ch := dialURL(t, guest(0))
	if err := ch.ExchangeDeclare("meta-x", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("meta-q", true, false, false, false, amqp.Table{"x-max-length": int32(5)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("meta-q", "k", "meta-x", false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	api1 := newMgmtClient(t, insts[0])
	api1.want(http.StatusCreated, "PUT", "/api/vhosts/meta-v", map[string]any{}, nil)
	api1.want(http.StatusCreated, "PUT", "/api/users/meta-u", map[string]any{"password": "pw", "tags": ""}, nil)
	api1.want(http.StatusCreated, "PUT", "/api/permissions/meta-v/meta-u", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	for _, i := range []int{1, 2} {
		node := cfgs[i].NodeName
		conn, ch := dialURL(t, guest(i))
		if err := ch.ExchangeDeclarePassive("meta-x", "direct", true, false, false, false, nil); err != nil {
			t.Fatalf("%s: passive exchange declare: %v", node, err)
		}
		if _, err := ch.QueueDeclarePassive("meta-q", true, false, false, false, nil); err != nil {
			t.Fatalf("%s: passive queue declare: %v", node, err)
		}
		// Equivalent re-declare is ok, another max-length is 406.
		if _, err := ch.QueueDeclare("meta-q", true, false, false, false, amqp.Table{"x-max-length": int32(5)}); err != nil {
			t.Errorf("%s: equivalent re-declare: %v", node, err)
		}
		_, err := ch.QueueDeclare("meta-q", true, false, false, false, amqp.Table{"x-max-length": int32(6)})
		if amqpErrCode(err) != amqp.PreconditionFailed {
			t.Errorf("%s: inequivalent re-declare: %v, want 406", node, err)
		}
		conn.Close()
		api := newMgmtClient(t, insts[i])
		var qs []map[string]any
		api.want(http.StatusOK, "GET", "/api/queues/%2F", nil, &qs)
		found := false
		for _, q := range qs {
			if q["name"] == "meta-q" {
				found = true
				if q["node"] != "n1" || q["durable"] != true {
					t.Errorf("%s lists meta-q as %v", node, q)
				}
			}
		}
		if !found {
			t.Errorf("%s: /api/queues has no meta-q: %v", node, qs)
		}
		var bs []map[string]any
		api.want(http.StatusOK, "GET", "/api/bindings/%2F/e/meta-x/q/meta-q", nil, &bs)
		if len(bs) != 1 || bs[0]["routing_key"] != "k" {
			t.Errorf("%s: bindings meta-x → meta-q: %v", node, bs)
		}
		var u map[string]any
		api.want(http.StatusOK, "GET", "/api/users/meta-u", nil, &u)
		c, err := amqp.Dial(urlOf(i, "meta-u", "pw", "meta-v"))
		if err != nil {
			t.Errorf("%s: meta-u cannot open meta-v: %v", node, err)
		} else {
			c.Close()
		}
	}

	// A vhost, user and permission made on n2 open a connection on n3
	// at once (the barrier on authentication and vhost access).
	api2 := newMgmtClient(t, insts[1])
	api2.want(http.StatusCreated, "PUT", "/api/vhosts/meta-v2", map[string]any{}, nil)
	api2.want(http.StatusCreated, "PUT", "/api/users/meta-u2", map[string]any{"password": "pw2", "tags": ""}, nil)
	api2.want(http.StatusCreated, "PUT", "/api/permissions/meta-v2/meta-u2", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	if c, err := amqp.Dial(urlOf(2, "meta-u2", "pw2", "meta-v2")); err != nil {
		t.Errorf("n3: meta-u2 cannot open meta-v2 right after n2 made them: %v", err)
	} else {
		c.Close()
	}

	// An exclusive queue of n1 is locked for n2's clients.
	xconn, xch := dialURL(t, guest(0))
	if _, err := xch.QueueDeclare("meta-excl", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := passiveQueue(t, guest(1), "meta-excl"); amqpErrCode(err) != amqp.ResourceLocked {
		t.Errorf("n2: passive declare of n1's exclusive queue: %v, want 405", err)
	}
	xconn.Close() // deletes it everywhere
	waitGone(t, guest(1), "meta-excl", 5*time.Second)

	// Concurrent declares of one name with different arguments.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for k, i := range []int{1, 2} {
		conn, ch := dialURL(t, guest(i))
		defer conn.Close()
		wg.Go(func() {
			<-start
			_, errs[k] = ch.QueueDeclare("meta-race", true, false, false, false, amqp.Table{"x-max-length": int32(10 + k)})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for k, err := range errs {
		switch {
		case err == nil:
			won++
		case amqpErrCode(err) != amqp.PreconditionFailed:
			t.Errorf("declare on n%d: %v, want ok or 406", k+2, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of the two concurrent declares won (%v), want exactly one", won, errs)
	}

	// Deleted on n2 (not its home): gone on n1 and n3.
	conn, ch = dialURL(t, guest(1))
	if _, err := ch.QueueDelete("meta-q", false, false, false); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waitGone(t, guest(0), "meta-q", 5*time.Second)
	waitGone(t, guest(2), "meta-q", 5*time.Second)

	// A shovel declared on n1 (between two queues of n1) is listed as a
	// parameter on every node and runs on n1 only (checked on n3 after
	// its restart, below).
	api1.want(http.StatusCreated, "PUT", "/api/parameters/shovel/%2F/meta-sh", map[string]any{"value": map[string]any{
		"src-uri": "amqp://", "src-queue": "meta-sh-src", "dest-uri": "amqp://", "dest-queue": "meta-sh-dst",
	}}, nil)

	// A transient queue of n3, then n3 stops: the others drop the queue
	// once n3 has been silent for a while. Meanwhile n1 changes things.
	conn, ch = dialURL(t, guest(2))
	if _, err := ch.QueueDeclare("meta-tq", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := passiveQueue(t, guest(0), "meta-tq"); err != nil {
		t.Fatalf("n1: n3's transient queue: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := insts[2].Shutdown(ctx); err != nil {
		t.Logf("n3 shutdown: %v", err)
	}
	cancel()
	// Creating a durable queue's log needs the JetStream meta group,
	// which elects a new leader when n3 led it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if l := insts[0].router.ClusterStatus().MetaLeader; l != "" && l != "n3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no meta leader after n3 stopped: %+v", insts[0].router.ClusterStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn, ch = dialURL(t, guest(0))
	if _, err := ch.QueueDeclare("meta-while-down", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("meta-while-down", "k2", "meta-x", false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	api1.want(http.StatusNoContent, "DELETE", "/api/users/meta-u", nil, nil)
	waitGone(t, guest(0), "meta-tq", 20*time.Second)
	waitGone(t, guest(1), "meta-tq", 5*time.Second)

	restarted, err := startInstance(cfgs[2], logger)
	if err != nil {
		t.Fatalf("restart n3: %v", err)
	}
	insts[2] = restarted // shut down by startInProcessCluster's cleanup
	if err := passiveQueue(t, guest(2), "meta-while-down"); err != nil {
		t.Errorf("restarted n3: queue declared while it was down: %v", err)
	}
	if err := passiveQueue(t, guest(2), "meta-q"); amqpErrCode(err) != amqp.NotFound {
		t.Errorf("restarted n3: queue deleted before it went down: %v, want 404", err)
	}
	if err := passiveQueue(t, guest(2), "meta-tq"); amqpErrCode(err) != amqp.NotFound {
		t.Errorf("restarted n3: its transient queue of before: %v, want 404", err)
	}
	api3 := newMgmtClient(t, insts[2])
	if code, _, _ := api3.do("GET", "/api/users/meta-u", nil); code != http.StatusNotFound {
		t.Errorf("restarted n3: user deleted while it was down: GET answers %d", code)
	}
	var sh []map[string]any
	api3.want(http.StatusOK, "GET", "/api/parameters/shovel/%2F", nil, &sh)
	if len(sh) != 1 || sh[0]["name"] != "meta-sh" {
		t.Errorf("restarted n3: shovel parameters %v, want meta-sh", sh)
	}
	api3.want(http.StatusOK, "GET", "/api/shovels", nil, &sh)
	if len(sh) != 0 {
		t.Errorf("restarted n3 runs shovels declared on n1: %v", sh)
	}
	api1.want(http.StatusOK, "GET", "/api/shovels", nil, &sh)
	if len(sh) != 1 || sh[0]["name"] != "meta-sh" {
		t.Errorf("n1's shovels: %v, want meta-sh", sh)
	}
	// Deleted on n2: n1 stops running it.
	api2.want(http.StatusNoContent, "DELETE", "/api/parameters/shovel/%2F/meta-sh", nil, nil)
	for deadline := time.Now().Add(5 * time.Second); ; {
		api1.want(http.StatusOK, "GET", "/api/shovels", nil, &sh)
		if len(sh) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 still runs the shovel deleted on n2: %v", sh)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var bs []map[string]any
	api3.want(http.StatusOK, "GET", "/api/bindings/%2F/e/meta-x/q/meta-while-down", nil, &bs)
	if len(bs) != 1 || bs[0]["routing_key"] != "k2" {
		t.Errorf("restarted n3: bindings made while it was down: %v", bs)
	}
}

// BenchmarkDeclareQueue: declare and delete a server-named exclusive
// queue (an RPC callback queue) and a durable queue, on a single node
// and on one node of an in-process three-node cluster, in the same run.
// In a cluster each declare and delete is a replicated KV write (plus,
// for the durable queue, its stream's creation on the node).
func BenchmarkDeclareQueue(b *testing.B) {
	// kind: exclusive (server-named), transient (named, not exclusive) or
	// durable. In the cluster, queues live on n1 (--cluster-queue-nodes):
	// declared on n1 they are local, declared on n2 they are declared on
	// n1 over the node link ("placed").
	run := func(b *testing.B, url, kind string) {
		conn, ch := dialURL(b, url)
		defer conn.Close()
		b.ResetTimer()
		for i := range b.N {
			name := ""
			if kind != "exclusive" {
				name = fmt.Sprintf("bench-%s-%d", kind, i)
			}
			q, err := ch.QueueDeclare(name, kind == "durable", false, kind == "exclusive", false, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "declares/s")
	}
	single := startWarren(b, "")
	cfgs := loopbackClusterConfigs(b, 3)
	for i := range cfgs {
		cfgs[i].ClusterQueueNodes = "n1"
	}
	insts := startInProcessCluster(b, cfgs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, kind := range []string{"exclusive", "transient", "durable"} {
		b.Run("single/"+kind, func(b *testing.B) { run(b, amqpURL(single), kind) })
		b.Run("cluster-node/"+kind, func(b *testing.B) { run(b, amqpURL(insts[0]), kind) })
		if kind != "exclusive" {
			b.Run("placed/"+kind, func(b *testing.B) { run(b, amqpURL(insts[1]), kind) })
		}
	}
}
