package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// warrenBinary builds cmd/warren once per test run.
var warrenBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "warren-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "warren")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startProcess runs Warren as a child process on dataDir and returns its
// AMQP URL once it says it is ready.
func startProcess(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd, a := startProcessAddrs(t, dataDir)
	return cmd, a.amqpURL
}

// TestConfirmedMessagesSurviveKill9: every message whose publisher
// confirm arrived is delivered after the process is killed with SIGKILL
// and restarted on the same data directory.
func TestConfirmedMessagesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a Warren process")
	}
	dir := t.TempDir()
	cmd, url := startProcess(t, dir)

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("crash-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const total = 5000
	confirmed := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var pending []*amqp.DeferredConfirmation
	var ids []string
	for i := range total {
		id := fmt.Sprint(i)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "crash-q", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, MessageId: id, Body: []byte("payload " + id),
		})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, dc)
		ids = append(ids, id)
	}
	for i, dc := range pending {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			confirmed[ids[i]] = true
		}
	}
	if len(confirmed) != total {
		t.Fatalf("%d of %d confirmed before the kill", len(confirmed), total)
	}
	// Consume and ack the first 1000 so that acked messages are removed
	// from the store before the kill, and leave 10 unacked.
	d, err := ch.Consume("crash-q", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1010 {
		m := <-d
		if i < 1000 {
			m.Ack(false)
		}
	}
	time.Sleep(1200 * time.Millisecond) // the janitor runs every 500 ms

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	conn.Close()

	_, url = startProcess(t, dir)
	conn2, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	ch2, err := conn2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch2.QueueDeclarePassive("crash-q", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != total-1000 {
		t.Errorf("after kill -9: %d messages in the queue, want %d (acked ones removed, unacked back)", q.Messages, total-1000)
	}
	got := map[string]bool{}
	for {
		m, ok, err := ch2.Get("crash-q", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if string(m.Body) != "payload "+m.MessageId {
			t.Fatalf("message %s has body %q", m.MessageId, m.Body)
		}
		got[m.MessageId] = true
	}
	for i := 1000; i < total; i++ {
		if !got[fmt.Sprint(i)] {
			t.Fatalf("confirmed message %d lost after kill -9", i)
		}
	}
	for i := range 1000 {
		if got[fmt.Sprint(i)] {
			t.Errorf("acked message %d came back after kill -9", i)
		}
	}
}
