package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// What the test knows about each message it published, by sequence
// number.
const (
	msgUnconfirmed = iota // published, no confirm (yet): may or may not be in the queue
	msgQueued             // confirmed and in the queue, not delivered since
	msgUnacked            // delivered, not acked
	msgAcked              // acked, and the ack had time to reach the store
	msgDrained            // delivered in the current drain (a transient mark)
	msgGone               // unconfirmed at a kill and not delivered after it: lost, as allowed
)

// backlogModel is the test's record of one FIFO queue's messages.
type backlogModel struct {
	t     *testing.T
	mu    sync.Mutex
	state []uint8 // by sequence number

	// Order within one consumer's deliveries: redelivered ones may come
	// first (as RabbitMQ requeues to the head), each kind in sequence order.
	lastFresh, lastRedelivered int
	sawFresh                   bool
}

// sent records the next sequence number as published and returns it.
func (m *backlogModel) sent() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = append(m.state, msgUnconfirmed)
	return len(m.state) - 1
}

func (m *backlogModel) confirmed(seq int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state[seq] = msgQueued
}

// count returns how many messages are in each state.
func (m *backlogModel) count() map[uint8]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := map[uint8]int{}
	for _, s := range m.state {
		n[s]++
	}
	return n
}

// newConsumer resets the order check for a consumer's first delivery.
func (m *backlogModel) newConsumer() {
	m.lastFresh, m.lastRedelivered, m.sawFresh = -1, -1, false
}

// delivered checks one delivery against the model and the order rule and
// marks it mark; it returns the sequence number.
func (m *backlogModel) delivered(d amqp.Delivery, scratch *[]byte, mark uint8, when string) int {
	t := m.t
	t.Helper()
	_, seq, err := parseSeqBody(d.Body, scratch)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq < 0 || seq >= len(m.state) {
		t.Fatalf("%s: message %d was never published", when, seq)
	}
	switch m.state[seq] {
	case msgAcked:
		t.Fatalf("%s: message %d came back after it was acked", when, seq)
	case msgDrained:
		t.Fatalf("%s: message %d delivered twice", when, seq)
	case msgGone:
		t.Fatalf("%s: message %d, missing after an earlier restart, came back", when, seq)
	case msgUnacked:
		if !d.Redelivered {
			t.Fatalf("%s: message %d, delivered and unacked before the kill, came back with redelivered=false", when, seq)
		}
	case msgUnconfirmed:
		if mark != msgDrained {
			t.Fatalf("%s: message %d delivered before its confirm", when, seq)
		}
	}
	if d.Redelivered {
		if m.sawFresh || seq <= m.lastRedelivered {
			t.Fatalf("%s: redelivered message %d out of order (last redelivered %d, last fresh %d)", when, seq, m.lastRedelivered, m.lastFresh)
		}
		m.lastRedelivered = seq
	} else {
		if seq <= m.lastFresh {
			t.Fatalf("%s: message %d after %d", when, seq, m.lastFresh)
		}
		m.lastFresh, m.sawFresh = seq, true
	}
	m.state[seq] = mark
	return seq
}

// TestKill9BacklogRounds: SIGKILL with a backlog much larger than a
// queue's in-memory window (issue 12: about 2,048 messages), in rounds,
// loses no confirmed message, brings back no acked one, redelivers the
// unacked ones and keeps the order.
//
// Each round on one durable queue: publish WARREN_KILL9_BACKLOG (default
// 20,000) persistent messages with confirms; consume from the head, ack a
// prefix and keep 500 delivered but unacked; wait for the acks to reach
// the store (the janitor applies them every 500 ms); start a confirm-mode
// publisher and SIGKILL Warren while it publishes; restart and check the
// passive queue.declare count against the model, then drain the queue and
// check every message (bodies carry their sequence number): every
// confirmed one present, no acked one, the unacked ones redelivered=true,
// FIFO by sequence number (redelivered ones may come first). Half a
// backlog is requeued for the next round, so later rounds restart on a
// queue whose stream has acked holes and requeued messages; the last
// round drains it all.
func TestKill9BacklogRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, kills and restarts a Warren process several times")
	}
	backlog := max(1000, envCount(t, "WARREN_KILL9_BACKLOG", 20_000))
	rounds := max(1, envCount(t, "WARREN_KILL9_ROUNDS", 3))
	const (
		queue   = "kill9-backlog"
		size    = 256
		unacked = 500 // delivered and not acked at the kill
		window  = 1000
		ackSync = 2500 * time.Millisecond // janitor rounds for in-order acks to be purged
	)
	dir := t.TempDir()
	var logs lockedBuffer
	defer func() {
		if t.Failed() {
			out := logs.String()
			os.WriteFile(filepath.Join(os.TempDir(), "kill9-backlog-warren.log"), []byte(out), 0o644)
			t.Logf("warren's log (last 8 KB; all of it in %s):\n%s", filepath.Join(os.TempDir(), "kill9-backlog-warren.log"), out[max(0, len(out)-8192):])
		}
	}()
	cmd, url, _ := startProcessHTTP(t, dir, &logs)
	declareDurable(t, url, queue)
	model := &backlogModel{t: t}
	var scratch []byte

	for round := 1; round <= rounds; round++ {
		// 1. A backlog, all confirmed.
		if n := publishModel(t, url, queue, model, size, window, backlog, nil); n != backlog {
			t.Fatalf("round %d: %d of %d confirmed without a kill", round, n, backlog)
		}
		queued := model.count()[msgQueued]
		if got := queueDepth(t, url, queue); got != queued {
			t.Fatalf("round %d: passive declare reports %d messages, the model %d", round, got, queued)
		}

		// 2. Consume from the head: ack a prefix, keep `unacked` delivered.
		conn, ch := dialURL(t, url)
		if err := ch.Qos(unacked, 0, false); err != nil {
			t.Fatal(err)
		}
		deliveries, err := ch.Consume(queue, "holder", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		ackN := queued/4 + rand.N(queued/4)
		model.newConsumer()
		for i := range ackN + unacked {
			var d amqp.Delivery
			select {
			case d = <-deliveries:
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: no delivery after %d", round, i)
			}
			if i < ackN {
				model.delivered(d, &scratch, msgAcked, fmt.Sprintf("round %d before the kill", round))
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			} else {
				model.delivered(d, &scratch, msgUnacked, fmt.Sprintf("round %d before the kill", round))
			}
		}
		// Cancel the consumer: its unacked messages stay unacked on the
		// channel, and a queue with no consumer does not hold publishers
		// (mapping/flow.go holds them while a consumed queue has more than
		// 20,000 ready, and this consumer, at its prefetch limit, would
		// never drain it).
		if err := ch.Cancel("holder", false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ackSync)

		// 3. SIGKILL while a publisher waits for confirms.
		killAfter := backlog/8 + rand.N(backlog/4)
		var confirmedNow atomic.Int64
		pubDone := make(chan int, 1)
		go func() { pubDone <- publishModel(t, url, queue, model, size, window, -1, &confirmedNow) }()
		for deadline := time.Now().Add(60 * time.Second); confirmedNow.Load() < int64(killAfter); {
			if time.Now().After(deadline) {
				cmd.Process.Signal(syscall.SIGQUIT) // Go dumps every goroutine into the log
				cmd.Wait()
				t.Fatalf("round %d: only %d confirms in 60 s", round, confirmedNow.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		inKillPhase := <-pubDone
		conn.Close()
		before := model.count()

		// 4. Restart: the count, then every message.
		cmd, url, _ = startProcessHTTP(t, dir, &logs)
		lo := before[msgQueued] + before[msgUnacked]
		hi := lo + before[msgUnconfirmed]
		c := queueDepth(t, url, queue)
		if c < lo || c > hi {
			t.Fatalf("round %d: passive declare after the restart reports %d messages; want %d confirmed and unacked ones plus up to %d unconfirmed", round, c, lo, before[msgUnconfirmed])
		}
		drained := drainModel(t, url, queue, model, &scratch, c, round)

		lost, gone := 0, 0
		model.mu.Lock()
		for seq, s := range model.state {
			switch s {
			case msgQueued, msgUnacked:
				if lost++; lost <= 5 {
					t.Errorf("round %d: message %d (%s) lost", round, seq, map[uint8]string{msgQueued: "confirmed", msgUnacked: "delivered, unacked"}[s])
				}
			case msgUnconfirmed:
				model.state[seq] = msgGone
				gone++
			}
		}
		model.mu.Unlock()
		if lost > 0 {
			t.Fatalf("round %d: %d confirmed messages lost after kill -9", round, lost)
		}
		t.Logf("round %d: acked %d, %d unacked at the kill, %d confirms during the kill phase, %d unconfirmed (%d of them lost, allowed); after restart %d messages, all delivered once, in order",
			round, ackN, unacked, inKillPhase, before[msgUnconfirmed], gone, c)

		// 5. Keep half a backlog in the queue for the next round.
		keep := backlog / 2
		if round == rounds {
			keep = 0
		}
		keep = min(keep, len(drained.seqs))
		settleDrain(t, drained, model, keep)
		if got := queueDepth(t, url, queue); got != keep {
			t.Fatalf("round %d: %d messages after acking the drain and requeueing %d", round, got, keep)
		}
	}
}

// publishModel publishes persistent messages with confirms, recording
// them in the model, and returns how many were confirmed: n of them, or
// with n < 0 until the connection dies. confirmed counts as they come.
func publishModel(t *testing.T, url, queue string, model *backlogModel, size, window, n int, confirmed *atomic.Int64) int {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Error(err)
		return 0
	}
	if err := ch.Confirm(false); err != nil {
		t.Error(err)
		return 0
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window))
	slots := make(chan struct{}, window)
	var mu sync.Mutex
	var seqs []int // by delivery tag - 1
	acks := make(chan int, 1)
	go func() {
		k, all := 0, 0
		for c := range confirms {
			all++
			if c.Ack {
				mu.Lock()
				seq := seqs[c.DeliveryTag-1]
				mu.Unlock()
				model.confirmed(seq)
				k++
				if confirmed != nil {
					confirmed.Add(1)
				}
			}
			<-slots
			if all == n {
				break
			}
		}
		acks <- k
	}()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	buf := make([]byte, size)
publish:
	for i := 0; n < 0 || i < n; i++ {
		select {
		case slots <- struct{}{}:
		case <-closed:
			break publish
		}
		seq := model.sent()
		mu.Lock()
		seqs = append(seqs, seq)
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: seqBody(buf, 0, seq),
		})
		cancel()
		if err != nil {
			if n >= 0 {
				t.Errorf("publish %d: %v", seq, err)
			}
			break publish
		}
	}
	if n < 0 {
		conn.Close() // already dead; ends the confirm listener
	}
	select {
	case k := <-acks:
		return k
	case <-time.After(2 * time.Minute):
		t.Errorf("confirms missing after 2 minutes")
		return 0
	}
}

// modelDrain is a consumer that has received every message of a queue
// and not acked them yet.
type modelDrain struct {
	conn *amqp.Connection
	ch   *amqp.Channel
	seqs []int    // in delivery order
	tags []uint64 // their delivery tags
}

// drainModel consumes want messages without a prefetch limit, checking
// each against the model, and checks that no more come. It settles none
// of them: settleDrain acks or requeues them.
func drainModel(t *testing.T, url, queue string, model *backlogModel, scratch *[]byte, want, round int) *modelDrain {
	t.Helper()
	conn, ch := dialURL(t, url)
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	dr := &modelDrain{conn: conn, ch: ch}
	model.newConsumer()
	when := fmt.Sprintf("round %d after the restart", round)
	for len(dr.seqs) < want {
		select {
		case d := <-deliveries:
			dr.seqs = append(dr.seqs, model.delivered(d, scratch, msgDrained, when))
			dr.tags = append(dr.tags, d.DeliveryTag)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: %d of %d messages delivered, then none for 30 s", when, len(dr.seqs), want)
		}
	}
	select {
	case d := <-deliveries:
		t.Fatalf("%s: a message beyond the %d the queue reported: %.20q", when, want, d.Body)
	case <-time.After(300 * time.Millisecond):
	}
	return dr
}

// settleDrain acks all but the last keep messages of a drain and requeues
// those, then closes the drain's connection.
func settleDrain(t *testing.T, dr *modelDrain, model *backlogModel, keep int) {
	t.Helper()
	defer dr.conn.Close()
	cut := len(dr.seqs) - keep
	if cut > 0 {
		if err := dr.ch.Ack(dr.tags[cut-1], true); err != nil {
			t.Fatal(err)
		}
	}
	if keep > 0 {
		if err := dr.ch.Nack(dr.tags[len(dr.tags)-1], true, true); err != nil {
			t.Fatal(err)
		}
	}
	model.mu.Lock()
	for k, seq := range dr.seqs {
		if k < cut {
			model.state[seq] = msgAcked
		} else {
			model.state[seq] = msgQueued
		}
	}
	model.mu.Unlock()
	// The acks reach the store before the next kill: the next round
	// waits ackSync after its own acks.
}
