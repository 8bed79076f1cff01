package main

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// nodeURLs is the AMQP URL of each node of a test cluster while its
// nodes restart (a restarted node listens on a new port); "" while one
// is down. Clients ask it for their node, or for the next one up.
type nodeURLs struct {
	mu   sync.Mutex
	urls []string
}

func (u *nodeURLs) set(i int, url string) {
	u.mu.Lock()
	u.urls[i] = url
	u.mu.Unlock()
}

// pick is node i's URL, or the next running node's while i is down.
func (u *nodeURLs) pick(i int) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k := range u.urls {
		if url := u.urls[(i+k)%len(u.urls)]; url != "" {
			return url
		}
	}
	return ""
}

// publishVia runs l's sessions through node i (or the next node up
// while i is down) until ctx ends.
func (l *confirmLog) publishVia(ctx context.Context, u *nodeURLs, i int, queue string) {
	for ctx.Err() == nil {
		if url := u.pick(i); url != "" {
			l.session(ctx, url, queue)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// longestGap samples how many messages l has confirmed every 20 ms
// until ctx ends and returns the longest time the count did not grow.
func (l *confirmLog) longestGap(ctx context.Context) time.Duration {
	var longest time.Duration
	last, lastAt := -1, time.Now()
	for {
		l.mu.Lock()
		n := len(l.confirmed)
		l.mu.Unlock()
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		} else if gap := now.Sub(lastAt); gap > longest {
			longest = gap
		}
		select {
		case <-ctx.Done():
			return longest
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *confirmLog) count() (confirmed, nacked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.confirmed), l.nacked
}

// consumeLog is a manual-ack consumer that reconnects (to node i, or
// the next node up) whenever its connection or its consumer goes, and
// counts every delivery by body.
type consumeLog struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *consumeLog) run(ctx context.Context, u *nodeURLs, i int, queue string) {
	for ctx.Err() == nil {
		if url := u.pick(i); url != "" {
			c.session(ctx, url, queue)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *consumeLog) session(ctx context.Context, url, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil || ch.Qos(100, 0, false) != nil {
		return
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-msgs:
			if !ok {
				return // connection lost or basic.cancel (the home moved)
			}
			c.mu.Lock()
			c.got[string(d.Body)]++
			c.mu.Unlock()
			d.Ack(false)
		}
	}
}

// missing is the confirmed messages c has not received, and how many
// deliveries beyond the first c saw of any message.
func (c *consumeLog) missing(confirmed map[string]bool) (missing []string, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := range confirmed {
		if c.got[b] == 0 {
			missing = append(missing, b)
		}
	}
	for _, n := range c.got {
		duplicates += n - 1
	}
	return missing, duplicates
}

// restartNode stops n with SIGTERM (a graceful stop: its leaderships
// step down first) or SIGKILL and starts it again on its data directory
// with args; it returns once the node says it is ready.
func restartNode(t *testing.T, n *clusterNode, sig syscall.Signal, args []string) {
	t.Helper()
	n.cmd.Process.Signal(sig)
	n.cmd.Wait()
	var ready <-chan [2]string
	n.cmd, ready = spawnProcess(t, n.dir, n.logs, args...)
	waitReady(t, n, ready)
}

// TestClusterRollingRestartUnderLoad: a quorum queue and a classic
// durable queue (homed on n1), a confirm-mode publisher on n2 and a
// manual-ack consumer on n3 for each, running throughout while every
// node is restarted in turn with SIGTERM. Every confirmed message of
// both queues is consumed (duplicates allowed); a publish to the classic
// queue while its home is down may be nacked after 10 s of retries.
func TestClusterRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Warren and runs a three-node cluster")
	}
	nodes, addrs := startThree(t)
	peers := strings.Join(addrs, ",")
	conn, ch := dialURL(t, nodes[0].amqp)
	if _, err := ch.QueueDeclare("roll-qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("roll-classic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	urls := &nodeURLs{urls: []string{nodes[0].amqp, nodes[1].amqp, nodes[2].amqp}}
	ctx, stopPublishing := context.WithCancel(context.Background())
	defer stopPublishing()
	cctx, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	queues := []string{"roll-qq", "roll-classic"}
	pubs := map[string]*confirmLog{}
	subs := map[string]*consumeLog{}
	gaps := map[string]time.Duration{}
	var wg, gapWG sync.WaitGroup
	var gapMu sync.Mutex
	for _, q := range queues {
		pubs[q], subs[q] = &confirmLog{confirmed: map[string]bool{}}, &consumeLog{got: map[string]int{}}
		wg.Go(func() { pubs[q].publishVia(ctx, urls, 1, q) })
		wg.Go(func() { subs[q].run(cctx, urls, 2, q) })
		gapWG.Go(func() {
			g := pubs[q].longestGap(ctx)
			gapMu.Lock()
			gaps[q] = g
			gapMu.Unlock()
		})
	}
	// progress waits until both publishers have had more confirms.
	progress := func(what string) {
		t.Helper()
		before := map[string]int{}
		for _, q := range queues {
			before[q], _ = pubs[q].count()
		}
		deadline := time.Now().Add(60 * time.Second)
		for _, q := range queues {
			for n, _ := pubs[q].count(); n < before[q]+200; n, _ = pubs[q].count() {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s has %d confirms, no progress since %d", what, q, n, before[q])
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	progress("before the restarts")
	names := []string{"n1", "n2", "n3"}
	for i, n := range nodes {
		urls.set(i, "")
		restartNode(t, n, syscall.SIGTERM, clusterArgs(n.name, addrs[i], peers, "s3cret"))
		urls.set(i, n.amqp)
		for _, o := range nodes {
			waitNodes(t, o, "all three running after "+n.name+"'s restart", allRunning(names...))
		}
		progress("after " + n.name + "'s restart")
		qc, qn := pubs["roll-qq"].count()
		cc, cn := pubs["roll-classic"].count()
		t.Logf("restarted %s: quorum queue %d confirmed %d nacked, classic queue %d confirmed %d nacked", n.name, qc, qn, cc, cn)
	}
	stopPublishing()
	gapWG.Wait()

	// The consumers drain both queues: every confirmed message arrives.
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range queues {
		for {
			pubs[q].mu.Lock()
			missing, _ := subs[q].missing(pubs[q].confirmed)
			pubs[q].mu.Unlock()
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				if len(missing) > 10 {
					missing = missing[:10]
				}
				t.Errorf("%s: confirmed messages never consumed, e.g. %v", q, missing)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stopConsuming()
	wg.Wait()
	for _, q := range queues {
		pubs[q].mu.Lock()
		_, dups := subs[q].missing(pubs[q].confirmed)
		t.Logf("%s: %d confirmed, %d nacked, %d consumed (distinct), %d duplicate deliveries, longest gap without a confirm %v",
			q, len(pubs[q].confirmed), pubs[q].nacked, len(subs[q].got), dups, gaps[q].Round(time.Millisecond))
		pubs[q].mu.Unlock()
	}
}
