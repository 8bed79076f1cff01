package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// queueLeader asks n for the queue's leader (its `node` in /api/queues);
// "" when n does not answer or does not know one.
func queueLeader(n *clusterNode, queue string) string {
	req, _ := http.NewRequest("GET", n.http+"/api/queues/%2F/"+queue, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var q struct {
		Node   string `json:"node"`
		Leader string `json:"leader"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&q) != nil {
		return ""
	}
	return q.Leader
}

// confirmLog publishes numbered persistent messages through one node
// with confirms, reconnecting when the connection drops, and remembers
// which were confirmed.
type confirmLog struct {
	mu        sync.Mutex
	confirmed map[string]bool
	nacked    int
	next      int
}

func (l *confirmLog) run(ctx context.Context, url, queue string) {
	for ctx.Err() == nil {
		l.session(ctx, url, queue)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// session publishes on one connection until it fails or ctx ends,
// at most 64 unconfirmed at a time.
func (l *confirmLog) session(ctx context.Context, url, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil || ch.Confirm(false) != nil {
		return
	}
	type pending struct {
		body string
		dc   *amqp.DeferredConfirmation
	}
	var inflight []pending
	settle := func(p pending) bool {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ok, err := p.dc.WaitContext(wctx)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err == nil && ok {
			l.confirmed[p.body] = true
		} else if err == nil {
			l.nacked++
		}
		return err == nil
	}
	for ctx.Err() == nil {
		l.mu.Lock()
		body := fmt.Sprintf("m-%07d", l.next)
		l.next++
		l.mu.Unlock()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			return
		}
		inflight = append(inflight, pending{body, dc})
		if len(inflight) == 64 {
			if !settle(inflight[0]) {
				return
			}
			inflight = inflight[1:]
		}
	}
	for _, p := range inflight {
		if !settle(p) {
			return
		}
	}
}

// TestClusterQuorumQueueSurvivesKill9OfLeader: a quorum queue on a
// three-node cluster of processes, a confirm-mode publisher on a node
// that does not lead it, and in each round the leader is killed with
// SIGKILL while the publisher runs, then restarted. At the end every
// confirmed message is in the queue, read from whichever node.
func TestClusterQuorumQueueSurvivesKill9OfLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	nodes, addrs := startThree(t)
	peers := strings.Join(addrs, ",")
	byName := map[string]int{}
	for i, n := range nodes {
		byName[n.name] = i
	}
	_, ch := dialURL(t, nodes[0].amqp)
	if _, err := ch.QueueDeclare("qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	ch.Close()

	log := &confirmLog{confirmed: map[string]bool{}}
	const rounds = 3
	for round := range rounds {
		var leader string
		deadline := time.Now().Add(30 * time.Second)
		for leader == "" && time.Now().Before(deadline) {
			for _, n := range nodes {
				if l := queueLeader(n, "qq"); l != "" {
					leader = l
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		li, ok := byName[leader]
		if !ok {
			t.Fatalf("round %d: no node reports a leader for qq (got %q)", round, leader)
		}
		pub := nodes[(li+1)%3]
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { log.run(ctx, pub.amqp, "qq") })
		time.Sleep(1500 * time.Millisecond)
		victim := nodes[li]
		victim.cmd.Process.Kill()
		victim.cmd.Wait()
		// Keep publishing through the failover.
		time.Sleep(3 * time.Second)
		cancel()
		wg.Wait()
		var ready <-chan [2]string
		victim.cmd, ready = spawnProcess(t, victim.dir, victim.logs, clusterArgs(victim.name, addrs[li], peers, "s3cret")...)
		waitReady(t, victim, ready)
		log.mu.Lock()
		t.Logf("round %d: killed leader %s while publishing through %s; %d confirmed so far, %d nacked", round, leader, pub.name, len(log.confirmed), log.nacked)
		log.mu.Unlock()
	}
	if len(log.confirmed) == 0 {
		t.Fatal("no message was confirmed")
	}
	conn, ch := dialURL(t, nodes[2].amqp)
	defer conn.Close()
	got := map[string]int{}
	msgs := consume(t, ch, "qq", true)
	// Read until the queue has been quiet for a while: it may also hold
	// messages whose confirm never arrived (the node died first).
	for quiet := false; !quiet; {
		select {
		case d := <-msgs:
			got[string(d.Body)]++
		case <-time.After(5 * time.Second):
			quiet = true
		}
	}
	lost := 0
	for b := range log.confirmed {
		if got[b] == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d confirmed messages lost", lost, len(log.confirmed))
	}
	t.Logf("%d confirmed, %d nacked, %d distinct read back", len(log.confirmed), log.nacked, len(got))
}
