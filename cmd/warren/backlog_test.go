package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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
	total := envCount(t, "WARREN_BIG_COUNT", 1_000_000)
	const queue = "backlog"
	dir := bigDir(t)
	cmd, url := startProcess(t, dir)
	declareDurable(t, url, queue)

	fill := seqFill{url: url, queue: queue, mode: amqp.Persistent, size: 1024, publishers: 4, window: 4000}
	start := time.Now()
	if err := fill.run(total); err != nil {
		t.Fatal(err)
	}
	pubTook := time.Since(start)
	t.Logf("published and confirmed %d × 1 KB persistent messages in %v (%.0f msg/s, %d publishers)",
		total, pubTook.Round(time.Millisecond), float64(total)/pubTook.Seconds(), fill.publishers)
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

// envCount reads a non-negative count from the environment.
func envCount(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// bigDir is WARREN_BIG_DIR, or a temporary directory.
func bigDir(t *testing.T) string {
	if dir := os.Getenv("WARREN_BIG_DIR"); dir != "" {
		return dir
	}
	return t.TempDir()
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
	conn, ch := dialURL(t, url)
	defer conn.Close()
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

func queueDepth(t testing.TB, url, queue string) int {
	t.Helper()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// TestBacklogMemory measures issue 12's first memory target and checks
// that a large backlog survives restarts whole: N persistent 1 KB messages
// (WARREN_BIG_COUNT, default 1,000,000) published with confirms into the
// durable queue backlog-a and M transient ones (WARREN_BIG_TRANSIENT,
// default 500,000; 0 skips them) into the durable queue backlog-b. Warren
// is then left idle (WARREN_BIG_IDLE, default 10s), stopped with SIGTERM
// and restarted, killed with SIGKILL and restarted, and backlog-a is
// drained with manual acks. Warren's VmRSS and VmHWM are sampled every
// 250 ms throughout.
//
// It asserts correctness only: every persistent message is delivered
// exactly once, each publisher's in the order published, with its body
// intact, and backlog-b is empty after a restart (transient messages do
// not survive one, as in RabbitMQ). Memory and times are logged as a
// table to paste into a report; WARREN_BIG_MAX_RSS_MB=n also fails the
// test when Warren's peak resident memory exceeds n MiB.
//
//	WARREN_BIG=1 nice go test -count=1 -run TestBacklogMemory -v -timeout 3h ./cmd/warren/
//	WARREN_BIG=1 WARREN_BIG_COUNT=10000000 WARREN_BIG_TRANSIENT=0 nice go test -count=1 -run TestBacklogMemory -v -timeout 10h ./cmd/warren/
//
// WARREN_TEST_BIN runs a prebuilt Warren binary instead of this tree's;
// WARREN_BIG_DIR keeps the data directory; WARREN_BIG_PUBLISHERS sets the
// number of publisher connections (default 4). The test itself keeps a
// counter per publisher, not per message, so ten million messages cost it
// no memory.
func TestBacklogMemory(t *testing.T) {
	if os.Getenv("WARREN_BIG") != "1" {
		t.Skip("set WARREN_BIG=1 to fill a backlog of 1,000,000 + 500,000 messages and measure Warren's memory")
	}
	persistent := envCount(t, "WARREN_BIG_COUNT", 1_000_000)
	transient := envCount(t, "WARREN_BIG_TRANSIENT", 500_000)
	publishers := max(1, envCount(t, "WARREN_BIG_PUBLISHERS", 4))
	maxRSSMiB := envCount(t, "WARREN_BIG_MAX_RSS_MB", 0)
	idle := 10 * time.Second
	if v := os.Getenv("WARREN_BIG_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WARREN_BIG_IDLE=%q: %v", v, err)
		}
		idle = d
	}
	if persistent == 0 {
		t.Fatal("WARREN_BIG_COUNT=0: nothing to measure")
	}
	const (
		size        = 1024
		window      = 4000 // unconfirmed messages per publisher
		prefetch    = 2000
		readyWithin = 30 * time.Minute // only detects a hang: today's main replays the whole backlog before it listens
		qa, qb      = "backlog-a", "backlog-b"
	)
	dir := bigDir(t)
	var logs lockedBuffer
	defer func() {
		if t.Failed() {
			out := logs.String()
			t.Logf("warren's log (last 8 KB):\n%s", out[max(0, len(out)-8192):])
		}
	}()

	mem := newMemSampler(250 * time.Millisecond)
	rep := &backlogReport{t: t, mem: mem}
	defer mem.stop()
	title := fmt.Sprintf("%d persistent + %d transient × %d B, %d publishers", persistent, transient, size, publishers)
	defer func() {
		if t.Failed() && !rep.printed { // what was measured up to the failure
			rep.print(title + ", FAILED")
		}
	}()
	mem.phase("start, empty store")
	cmd, url, _ := startProcessWatched(t, dir, &logs, readyWithin, mem.watch)
	declareDurable(t, url, qa, qb)

	// Progress every 30 s, so that a run of hours shows it is alive.
	var progress atomic.Int64
	stopProgress := make(chan struct{})
	defer close(stopProgress)
	go func() {
		for {
			select {
			case <-stopProgress:
				return
			case <-time.After(30 * time.Second):
				t.Logf("… %d messages, warren RSS %s", progress.Load(), mib(mem.current()))
			}
		}
	}()

	// Fill.
	fill := seqFill{url: url, queue: qa, mode: amqp.Persistent, size: size,
		publishers: publishers, window: window, confirmed: &progress}
	rep.begin(fmt.Sprintf("fill %s: %d persistent, confirms", qa, persistent))
	if err := fill.run(persistent); err != nil {
		rep.note(err.Error())
		t.Fatal(err)
	}
	rep.rate(persistent, "persistent fill")
	if transient > 0 {
		progress.Store(0)
		fill.queue, fill.mode = qb, amqp.Transient
		rep.begin(fmt.Sprintf("fill %s: %d transient, confirms", qb, transient))
		if err := fill.run(transient); err != nil {
			rep.note(err.Error())
			t.Fatal(err)
		}
		rep.rate(transient, "transient fill")
	}
	if got := queueDepth(t, url, qa); got != persistent {
		t.Fatalf("%s holds %d messages after the fill, want %d", qa, got, persistent)
	}
	if got := queueDepth(t, url, qb); got != transient {
		t.Fatalf("%s holds %d messages after the fill, want %d", qb, got, transient)
	}
	rep.begin(fmt.Sprintf("idle after fill, %v", idle))
	time.Sleep(idle)
	rep.note("store " + du(dir))

	// SIGTERM and restart: time to the first delivery, then the counts.
	rep.begin("SIGTERM stop")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	rep.note("exited")
	rep.begin("restart after SIGTERM, to first delivery")
	cmd, url = rep.restart("SIGTERM", dir, &logs, readyWithin, qa, prefetch, nil)
	rep.begin("counts after the restart")
	if got := queueDepth(t, url, qa); got != persistent {
		t.Fatalf("%s holds %d messages after the restart, want %d", qa, got, persistent)
	}
	if got := queueDepth(t, url, qb); got != 0 {
		t.Errorf("%s holds %d messages after the restart, want 0: transient messages do not survive a restart", qb, got)
	}

	// SIGKILL and restart, then drain everything.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	rep.begin("restart after SIGKILL, to first delivery")
	progress.Store(0)
	drain := &seqDrain{next: make([]int, publishers)}
	for p := range publishers {
		drain.want += fill.perPublisher(persistent, p)
	}
	_, url = rep.restart("SIGKILL", dir, &logs, readyWithin, qa, prefetch, drain)
	rep.begin(fmt.Sprintf("drain %s, manual acks", qa))
	drain.rest(t, &progress)
	rep.rate(persistent, "drain")
	for p, n := range drain.next {
		if want := fill.perPublisher(persistent, p); n != want {
			t.Errorf("publisher %d: %d of its %d messages delivered", p, n, want)
		}
	}
	if got := queueDepth(t, url, qa); got != 0 {
		t.Errorf("%s holds %d messages after the drain, want 0", qa, got)
	}
	if got := queueDepth(t, url, qb); got != 0 {
		t.Errorf("%s holds %d messages after the second restart, want 0", qb, got)
	}

	peak := rep.print(title)
	if maxRSSMiB > 0 && peak > int64(maxRSSMiB)*1024 {
		t.Errorf("warren's peak resident memory %s exceeds WARREN_BIG_MAX_RSS_MB=%d", mib(peak), maxRSSMiB)
	}
}

// seqDrain consumes seqBody messages and checks that each publisher's
// arrive exactly once and in order: the next one expected from publisher
// p is next[p], so a duplicate, a gap or a swap fails at once.
type seqDrain struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
	next       []int
	want, got  int
	scratch    []byte
}

// take checks one delivery and acks every 1000th (multiple) and the last.
func (d *seqDrain) take(t *testing.T, m amqp.Delivery) {
	t.Helper()
	p, i, err := parseSeqBody(m.Body, &d.scratch)
	if err != nil {
		t.Fatalf("delivery %d: %v", d.got, err)
	}
	if p < 0 || p >= len(d.next) || i != d.next[p] {
		t.Fatalf("delivery %d is P%02d:%d; expected each publisher's next in order (%v)", d.got, p, i, d.next)
	}
	d.next[p]++
	d.got++
	if d.got%1000 == 0 || d.got == d.want {
		if err := m.Ack(true); err != nil {
			t.Fatal(err)
		}
	}
}

// rest consumes until every wanted message has come.
func (d *seqDrain) rest(t *testing.T, progress *atomic.Int64) {
	t.Helper()
	defer d.conn.Close()
	for d.got < d.want {
		select {
		case m, ok := <-d.deliveries:
			if !ok {
				t.Fatalf("consumer closed after %d of %d messages", d.got, d.want)
			}
			d.take(t, m)
			progress.Store(int64(d.got))
		case <-time.After(2 * time.Minute):
			t.Fatalf("no delivery for 2 minutes after %d of %d messages (next per publisher %v)", d.got, d.want, d.next)
		}
	}
	select {
	case m, ok := <-d.deliveries:
		if ok {
			t.Fatalf("a delivery beyond the %d published: %.20q", d.want, m.Body)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

// backlogReport collects the phases of TestBacklogMemory: their memory
// (from memSampler) and what happened in them.
type backlogReport struct {
	t       *testing.T
	mem     *memSampler
	notes   map[string]string
	summary []string // the figures issue 12's targets name, for one line
	cur     string
	at      time.Time
	printed bool
}

func (r *backlogReport) begin(phase string) {
	r.cur, r.at = phase, time.Now()
	r.mem.phase(phase)
}

func (r *backlogReport) note(s string) {
	if r.notes == nil {
		r.notes = map[string]string{}
	}
	r.notes[r.cur] = s
	r.t.Logf("%s: %v %s", r.cur, time.Since(r.at).Round(time.Millisecond), s)
}

func (r *backlogReport) rate(n int, what string) {
	rate := fmt.Sprintf("%d msg/s", int(float64(n)/time.Since(r.at).Seconds()))
	r.note(rate)
	r.summary = append(r.summary, what+" "+rate)
}

// restart starts Warren on dir (after a SIGTERM or SIGKILL) and consumes from queue until the first
// delivery, noting the time from starting the process to its ready line
// and to that delivery. With drain nil the consumer's connection is
// closed (the message goes back to the queue); otherwise the first
// delivery is checked and the consumer is handed to drain.
func (r *backlogReport) restart(after, dir string, logs io.Writer, readyWithin time.Duration, queue string, prefetch int, drain *seqDrain) (*exec.Cmd, string) {
	t := r.t
	t.Helper()
	start := time.Now()
	cmd, url, _ := startProcessWatched(t, dir, logs, readyWithin, r.mem.watch)
	ready := time.Since(start)
	conn, ch := dialURL(t, url)
	if err := ch.Qos(prefetch, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first amqp.Delivery
	select {
	case m, ok := <-deliveries:
		if !ok {
			t.Fatalf("consumer on %s closed before a delivery", queue)
		}
		first = m
	case <-time.After(readyWithin):
		t.Fatalf("no delivery from %s within %v of the restart", queue, readyWithin)
	}
	took := time.Since(start)
	r.note(fmt.Sprintf("ready line after %v, first delivery after %v", ready.Round(time.Millisecond), took.Round(time.Millisecond)))
	r.summary = append(r.summary, fmt.Sprintf("first delivery %v after the %s restart", took.Round(10*time.Millisecond), after))
	if drain == nil {
		var scratch []byte
		if _, _, err := parseSeqBody(first.Body, &scratch); err != nil {
			t.Fatalf("first delivery after the restart: %v", err)
		}
		conn.Close()
		return cmd, url
	}
	drain.conn, drain.ch, drain.deliveries = conn, ch, deliveries
	drain.take(t, first)
	return cmd, url
}

// print logs the phases as a Markdown table and returns the peak
// resident memory over all of them (the higher of sampled VmRSS and
// VmHWM, which catches spikes between samples), in KiB.
func (r *backlogReport) print(title string) int64 {
	r.printed = true
	bin := os.Getenv("WARREN_TEST_BIN")
	if bin == "" {
		bin = "built from this tree"
	}
	var peak int64
	var b strings.Builder
	fmt.Fprintf(&b, "backlog memory: %s; warren %s; RSS sampled every 250 ms\n\n", title, bin)
	b.WriteString("| phase | took | | peak VmRSS | VmHWM (process peak so far) | RSS at end |\n|---|---|---|---|---|---|\n")
	for _, p := range r.mem.stop() {
		peak = max(peak, p.peakRSS, p.peakHWM)
		fmt.Fprintf(&b, "| %s | %v | %s | %s | %s | %s |\n", p.name, p.duration.Round(100*time.Millisecond),
			r.notes[p.name], mib(p.peakRSS), mib(p.peakHWM), mib(p.lastRSS))
	}
	fmt.Fprintf(&b, "\npeak resident memory over the run: %s\n", mib(peak))
	fmt.Fprintf(&b, "summary: %s (issue 12 targets: at most 200 MiB for 1M + 500k, 256 MiB for 10M; first delivery within 5 s of a restart)\n",
		strings.Join(append([]string{"peak RSS " + mib(peak)}, r.summary...), "; "))
	r.t.Log("\n" + b.String())
	return peak
}
