package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// warrenBinary builds cmd/warren once per test run. WARREN_TEST_BIN names
// a prebuilt binary to run instead (e.g. main's build, to measure a
// baseline with the tests of a newer tree).
var warrenBinary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("WARREN_TEST_BIN"); bin != "" {
		return bin, nil
	}
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

// readyAddrs reads the AMQP and HTTP addresses off the "warren ready" log
// line (amqps= stands between them).
var readyAddrs = regexp.MustCompile(`warren ready"? amqp=(\S+)(?: amqps=\S*)? http=(\S+)`)

// startProcessHTTP runs Warren as a child process on dataDir, killed when
// the test ends, and returns its AMQP URL and HTTP base URL once it says
// it is ready. Its log goes to logs; extra flags follow the defaults.
func startProcessHTTP(t *testing.T, dataDir string, logs io.Writer, extra ...string) (*exec.Cmd, string, string) {
	t.Helper()
	return startProcessWatched(t, dataDir, logs, 30*time.Second, nil, extra...)
}

// startProcessWatched is startProcessHTTP that waits up to readyWithin
// for the ready line and calls started with the process id as soon as the
// process runs, so that a caller can watch it while it replays its store.
func startProcessWatched(t *testing.T, dataDir string, logs io.Writer, readyWithin time.Duration, started func(pid int), extra ...string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd, ready := spawnProcessWatched(t, dataDir, logs, started, extra...)
	select {
	case a := <-ready:
		return cmd, a[0], a[1]
	case <-time.After(readyWithin):
		t.Fatalf("warren did not become ready within %v", readyWithin)
	}
	return nil, "", ""
}

// spawnProcess starts Warren as startProcessHTTP does but does not wait:
// ready receives its AMQP URL and HTTP base URL once it says it is ready
// (cluster nodes wait for each other before they do).
func spawnProcess(t *testing.T, dataDir string, logs io.Writer, extra ...string) (*exec.Cmd, <-chan [2]string) {
	t.Helper()
	return spawnProcessWatched(t, dataDir, logs, nil, extra...)
}

func spawnProcessWatched(t *testing.T, dataDir string, logs io.Writer, started func(pid int), extra ...string) (*exec.Cmd, <-chan [2]string) {
	t.Helper()
	bin, err := warrenBinary()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if started != nil {
		started(cmd.Process.Pid)
	}
	addr := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyAddrs.FindStringSubmatch(sc.Text()); m != nil {
				addr <- [2]string{"amqp://guest:guest@" + m[1] + "/", "http://" + m[2]}
			}
			fmt.Fprintln(logs, sc.Text())
		}
		io.Copy(logs, stderr)
	}()
	return cmd, addr
}

// startProcess is startProcessHTTP for tests that need only AMQP.
func startProcess(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd, url, _ := startProcessHTTP(t, dataDir, io.Discard)
	return cmd, url
}

// startProcessAddrs is startProcessHTTP with the addresses as frontAddrs.
func startProcessAddrs(t *testing.T, dataDir string) (*exec.Cmd, frontAddrs) {
	t.Helper()
	cmd, url, base := startProcessHTTP(t, dataDir, io.Discard)
	return cmd, frontAddrs{amqpURL: url, httpAddr: strings.TrimPrefix(base, "http://")}
}

// startProc is startProcessHTTP with a management API client.
func startProc(t *testing.T, dataDir string) *procWarren {
	t.Helper()
	cmd, url, base := startProcessHTTP(t, dataDir, io.Discard)
	return &procWarren{cmd: cmd, url: url, mgmt: &mgmtClient{t: t, base: base, user: "guest", pass: "guest"}}
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
