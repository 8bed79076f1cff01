package main

// Test harness: in-process Warren instances and Python (pika) script runners.
//
// Environment:
//
//	WARREN_TEST_AMQP_URL     run the tutorial tests against this broker (for
//	                         example a real RabbitMQ) instead of an in-process
//	                         Warren; tests that restart the server skip.
//	WARREN_REQUIRE_PYTHON=1  fail instead of skip when /usr/bin/python3 cannot
//	                         import pika (`make test` sets it).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	pythonBin     = "/usr/bin/python3"
	scriptTimeout = 60 * time.Second // hard limit for any one script
	lineTimeout   = 15 * time.Second // default wait for an expected line
)

// ---------------------------------------------------------------------------
// Warren instances

// stopped records instances already shut down by stopWarren, so that the
// cleanup registered by startWarren does not shut them down twice.
var stopped sync.Map // *instance -> struct{}

// startWarren starts an in-process Warren with both listeners on
// 127.0.0.1:0. dataDir "" means a fresh t.TempDir(); pass the same dir
// again to restart on the same store. Logs at warn level and above go to
// t.Log. The instance is shut down when the test ends unless stopWarren
// already did it.
func startWarren(t testing.TB, dataDir string) *instance {
	t.Helper()
	return startWarrenWith(t, dataDir, nil)
}

// startWarrenWith is startWarren with a chance to change the config.
func startWarrenWith(t testing.TB, dataDir string, edit func(*Config)) *instance {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := defaultConfig()
	cfg.AMQPAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.LogLevel = "warn"
	if edit != nil {
		edit(&cfg)
	}

	w := &testLogWriter{t: t}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	inst, err := startInstance(cfg, logger)
	if err != nil {
		t.Fatalf("startInstance(data dir %s): %v", dataDir, err)
	}
	t.Cleanup(func() {
		defer w.close()
		if _, done := stopped.LoadOrStore(inst, struct{}{}); done {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := inst.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return inst
}

// stopWarren shuts inst down now (for restart tests). Use it instead of
// calling inst.Shutdown directly so the test cleanup knows.
func stopWarren(t testing.TB, inst *instance) {
	t.Helper()
	if _, done := stopped.LoadOrStore(inst, struct{}{}); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := inst.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// amqpURL is the URL a client uses to reach inst as guest.
func amqpURL(inst *instance) string {
	return "amqp://guest:guest@" + inst.AMQPAddr() + "/"
}

// sharedBrokerURL is WARREN_TEST_AMQP_URL, or "" when tests run their own
// in-process Warren.
func sharedBrokerURL() string { return os.Getenv("WARREN_TEST_AMQP_URL") }

// brokerURL gives the test a broker: the shared one from
// WARREN_TEST_AMQP_URL, or a fresh in-process Warren of its own. With a
// fresh Warren the test runs in parallel with others; on a shared broker
// tests run one at a time because the tutorials use fixed names.
func brokerURL(t *testing.T) string {
	t.Helper()
	if u := sharedBrokerURL(); u != "" {
		return u
	}
	t.Parallel()
	return amqpURL(startWarren(t, ""))
}

// needRestart skips t when the broker is external and cannot be restarted.
func needRestart(t *testing.T) {
	t.Helper()
	if sharedBrokerURL() != "" {
		t.Skip("needs to restart the broker; skipped because WARREN_TEST_AMQP_URL is set")
	}
}

// testLogWriter sends server logs to t.Log until the test is over (a late
// write after that would panic), then drops them.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log("warren: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Python scripts

var (
	pikaOnce sync.Once
	pikaErr  error
)

// needPika skips t (or fails it under WARREN_REQUIRE_PYTHON=1) when
// /usr/bin/python3 cannot import pika.
func needPika(t testing.TB) {
	t.Helper()
	pikaOnce.Do(func() {
		out, err := exec.Command(pythonBin, "-c", "import pika").CombinedOutput()
		if err != nil {
			pikaErr = fmt.Errorf("%s -c 'import pika': %v: %s", pythonBin, err, bytes.TrimSpace(out))
		}
	})
	if pikaErr == nil {
		return
	}
	msg := fmt.Sprintf("Python tutorials need pika: %v (install with `apt-get install python3-pika`, or run `make test`, which does it)", pikaErr)
	if os.Getenv("WARREN_REQUIRE_PYTHON") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// scriptDir is clients/python, found from this package's directory.
func scriptDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "clients", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "send.py")); err != nil {
		t.Fatalf("tutorial scripts not found: %v", err)
	}
	return dir
}

// pyProc is a running tutorial script. Its stdout lines arrive on lines
// (consumed by waitLine) and are also kept in order for Output.
type pyProc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	lines  chan string
	stderr *lockedBuffer

	mu     sync.Mutex
	output []string

	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// startScript runs clients/python/<script> with args under a context
// timeout. It is killed when the test ends.
func startScript(t testing.TB, script string, args ...string) *pyProc {
	t.Helper()
	return startPython(t, script+" "+strings.Join(args, " "), append([]string{filepath.Join(scriptDir(t), script)}, args...))
}

// startPython runs python3 with argv (a script and its arguments, or
// -c and a program), named name in the test's messages.
func startPython(t testing.TB, name string, argv []string) *pyProc {
	t.Helper()
	needPika(t)
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	cmd := exec.CommandContext(ctx, pythonBin, argv...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &pyProc{
		name:   name,
		cmd:    cmd,
		cancel: cancel,
		lines:  make(chan string, 4096),
		stderr: &lockedBuffer{},
		exited: make(chan struct{}),
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.output = append(p.output, line)
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default: // nobody is reading that far ahead; Output still has it
			}
		}
		p.waitErr = cmd.Wait()
		close(p.lines)
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.exited
		cancel()
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", p.name, strings.Join(p.Output(), "\n"), p.name, p.stderr.String())
		}
	})
	return p
}

// kill sends SIGKILL (no goodbye to the broker, as in a crash).
func (p *pyProc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// Output returns every stdout line so far.
func (p *pyProc) Output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.output...)
}

// count is how many stdout lines so far contain substr.
func (p *pyProc) count(substr string) int {
	n := 0
	for _, l := range p.Output() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitLine consumes stdout lines of p until one contains substr, and
// returns it; it fails the test on timeout or if p exits first.
func waitLine(t testing.TB, p *pyProc, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.exited
				t.Fatalf("%s exited (%v) before printing %q\nstdout:\n%s\nstderr:\n%s",
					p.name, p.waitErr, substr, strings.Join(p.Output(), "\n"), p.stderr.String())
			}
			if strings.Contains(line, substr) {
				return line
			}
		case <-deadline.C:
			t.Fatalf("%s did not print %q within %v\nstdout:\n%s\nstderr:\n%s",
				p.name, substr, timeout, strings.Join(p.Output(), "\n"), p.stderr.String())
		}
	}
}

// wait waits for p to exit by itself and fails the test unless it exits 0.
func (p *pyProc) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v\nstdout:\n%s\nstderr:\n%s",
			p.name, timeout, strings.Join(p.Output(), "\n"), p.stderr.String())
	}
	if p.waitErr != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s",
			p.name, p.waitErr, strings.Join(p.Output(), "\n"), p.stderr.String())
	}
}

// runScript runs a script to completion and returns its stdout lines.
func runScript(t testing.TB, script string, args ...string) []string {
	t.Helper()
	p := startScript(t, script, args...)
	p.wait(t, lineTimeout)
	return p.Output()
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resetSharedQueues deletes the named queues on a shared broker so that
// messages left over from an earlier run cannot confuse this one. An
// in-process Warren starts empty, so there it does nothing.
func resetSharedQueues(t testing.TB, url string, queues ...string) {
	t.Helper()
	if sharedBrokerURL() == "" {
		return
	}
	needPika(t)
	code := `import sys, pika
c = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = c.channel()
for q in sys.argv[2:]:
    ch.queue_delete(queue=q)
c.close()`
	out, err := exec.Command(pythonBin, append([]string{"-c", code, url}, queues...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("deleting queues %v: %v\n%s", queues, err, out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
