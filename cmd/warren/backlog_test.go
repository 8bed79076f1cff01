package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestRestartWithLargeBacklog fills a durable queue with 1,000,000
// persistent 1 KB messages (about 1 GB on disk and, since ready messages
// are kept in memory, about 1.2 GB of RAM), restarts Warren and measures
// how long it takes until the AMQP port accepts connections and a passive
// queue.declare reports the whole backlog: once after a clean shutdown
// (SIGTERM) and once after SIGKILL.
//
// It runs only with WARREN_BIG=1 (it takes a few minutes and needs ~2 GB
// of disk and ~3 GB of RAM):
//
//	WARREN_BIG=1 go test -run TestRestartWithLargeBacklog -v -timeout 30m ./cmd/warren/
//
// WARREN_BIG_COUNT overrides the number of messages; WARREN_BIG_DIR names
// a data directory to use (and keep, e.g. to profile a restart with
// `warren --cpuprofile`) instead of a temporary one. The figures are in
// docs/safety.md.
func TestRestartWithLargeBacklog(t *testing.T) {
	if os.Getenv("WARREN_BIG") != "1" {
		t.Skip("set WARREN_BIG=1 to publish 1,000,000 messages and restart")
	}
	total := 1_000_000
	if v := os.Getenv("WARREN_BIG_COUNT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("WARREN_BIG_COUNT=%q", v)
		}
		total = n
	}
	const (
		publishers = 4
		window     = 4000 // unconfirmed messages per publisher
		queue      = "backlog"
	)
	dir := os.Getenv("WARREN_BIG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	cmd, url := startProcess(t, dir)

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// Publish with confirms from several connections.
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		n := total / publishers
		if p == publishers-1 {
			n = total - n*(publishers-1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- publishConfirmed(url, queue, p, n, window, body)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pubTook := time.Since(start)
	t.Logf("published and confirmed %d × 1 KB persistent messages in %v (%.0f msg/s, %d publishers)",
		total, pubTook.Round(time.Millisecond), float64(total)/pubTook.Seconds(), publishers)
	if got := queueDepth(t, url, queue); got != total {
		t.Fatalf("queue holds %d messages before the restart, want %d", got, total)
	}
	t.Logf("before restart: warren RSS %s, store %s", rss(cmd.Process.Pid), du(dir))

	// Clean shutdown, then restart.
	stopTook := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	t.Logf("SIGTERM shutdown took %v", time.Since(stopTook).Round(time.Millisecond))
	cmd = measureRestart(t, dir, queue, total, "after SIGTERM")

	// And after kill -9.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	measureRestart(t, dir, queue, total, "after SIGKILL")
}

// measureRestart starts Warren on dir and measures the time until the
// AMQP port accepts (the process logs "warren ready" once it listens,
// which is after the store is replayed) and until a passive declare
// reports want messages; then it reads one message back.
func measureRestart(t *testing.T, dir, queue string, want int, label string) *exec.Cmd {
	t.Helper()
	start := time.Now()
	cmd, url := startProcess(t, dir)
	ready := time.Since(start)
	var got int
	for {
		got = queueDepth(t, url, queue)
		if got >= want || time.Since(start) > 2*time.Minute {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	counted := time.Since(start)
	t.Logf("restart %s: AMQP port accepting after %v, passive declare reports %d messages after %v; RSS %s",
		label, ready.Round(time.Millisecond), got, counted.Round(time.Millisecond), rss(cmd.Process.Pid))
	if got != want {
		t.Fatalf("restart %s: %d messages, want %d", label, got, want)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := ch.Get(queue, false)
	if err != nil || !ok {
		t.Fatalf("basic.get after restart: ok=%v err=%v", ok, err)
	}
	if len(m.Body) != 1024 || !m.Redelivered {
		t.Errorf("message after restart: %d bytes, redelivered=%v", len(m.Body), m.Redelivered)
	}
	if err := m.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// du returns the size of the files under dir.
func du(dir string) string {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%.0f MB", float64(n)/1e6)
}

func publishConfirmed(url, queue string, p, n, window int, body []byte) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window))
	slots := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		nacks := 0
		for i := 0; i < n; i++ {
			c, ok := <-confirms
			if !ok {
				done <- fmt.Errorf("publisher %d: channel closed after %d confirms", p, i)
				return
			}
			if !c.Ack {
				nacks++
			}
			<-slots
		}
		if nacks > 0 {
			done <- fmt.Errorf("publisher %d: %d nacks", p, nacks)
			return
		}
		done <- nil
	}()
	for i := range n {
		slots <- struct{}{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: fmt.Sprintf("p%d-%d", p, i), Body: body,
		})
		cancel()
		if err != nil {
			return err
		}
	}
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("publisher %d: confirms missing after 2 minutes", p)
	}
}

func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// rss returns a process's resident memory as the kernel reports it.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
