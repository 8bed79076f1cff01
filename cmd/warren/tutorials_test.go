package main

// The six RabbitMQ tutorials (clients/python) run unchanged against Warren.
// Each test asserts on what the scripts print. Set WARREN_TEST_AMQP_URL to
// run them against another broker (e.g. RabbitMQ) to check the tests.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const readyLogs = " [*] Waiting for logs."

// Tutorial 1: send.py puts "Hello World!" on hello, receive.py prints it.
func TestTutorialHelloWorld(t *testing.T) {
	url := brokerURL(t)
	resetSharedQueues(t, url, "hello")

	recv := startScript(t, "receive.py", "--url", url, "--count", "1")
	waitLine(t, recv, " [*] Waiting for messages.", lineTimeout)

	out := runScript(t, "send.py", "--url", url)
	if !slices.Contains(out, " [x] Sent 'Hello World!'") {
		t.Fatalf("send.py printed %q", out)
	}
	waitLine(t, recv, " [x] Received", lineTimeout)
	recv.wait(t, lineTimeout)
	if got := recv.Output(); !slices.Contains(got, " [x] Received Hello World!") {
		t.Fatalf("receive.py printed %q, want the exact body Hello World!", got)
	}
}

// Tutorial 2: tasks on the durable task_queue are shared between two
// workers (prefetch 1, manual ack) and each is done exactly once.
func TestTutorialWorkQueues(t *testing.T) {
	url := brokerURL(t)
	resetSharedQueues(t, url, "task_queue")

	w1 := startScript(t, "worker.py", "--url", url, "--dot-seconds", "0.05")
	w2 := startScript(t, "worker.py", "--url", url, "--dot-seconds", "0.05")
	waitLine(t, w1, " [*] Waiting for messages.", lineTimeout)
	waitLine(t, w2, " [*] Waiting for messages.", lineTimeout)

	var tasks []string
	for i := 1; i <= 6; i++ {
		task := fmt.Sprintf("task %d %s", i, strings.Repeat(".", i))
		tasks = append(tasks, task)
		if out := runScript(t, "new_task.py", "--url", url, task); !slices.Contains(out, " [x] Sent "+task) {
			t.Fatalf("new_task.py printed %q", out)
		}
	}

	eventually(t, lineTimeout, "6 tasks done", func() bool {
		return w1.count(" [x] Done")+w2.count(" [x] Done") >= len(tasks)
	})
	time.Sleep(200 * time.Millisecond) // a duplicate delivery would show up now

	for _, task := range tasks {
		n1, n2 := w1.count(" [x] Received "+task), w2.count(" [x] Received "+task)
		if n1+n2 != 1 {
			t.Errorf("%q received %d times by worker 1 and %d by worker 2, want once in all", task, n1, n2)
		}
	}
	if d := w1.count(" [x] Done") + w2.count(" [x] Done"); d != len(tasks) {
		t.Errorf("%d tasks done, want %d", d, len(tasks))
	}
	if w1.count(" [x] Received") == 0 || w2.count(" [x] Received") == 0 {
		t.Errorf("tasks not shared: worker 1 got %d, worker 2 got %d",
			w1.count(" [x] Received"), w2.count(" [x] Received"))
	}
}

// Tutorial 2: a worker that dies mid-task without acking loses nothing;
// the task goes to the other worker.
func TestTutorialWorkQueuesWorkerKilled(t *testing.T) {
	url := brokerURL(t)
	resetSharedQueues(t, url, "task_queue")

	w1 := startScript(t, "worker.py", "--url", url)
	waitLine(t, w1, " [*] Waiting for messages.", lineTimeout)

	long := "long task " + strings.Repeat(".", 40) // 40 s of work: still running when killed
	runScript(t, "new_task.py", "--url", url, long)
	waitLine(t, w1, " [x] Received "+long, lineTimeout)

	w2 := startScript(t, "worker.py", "--url", url)
	waitLine(t, w2, " [*] Waiting for messages.", lineTimeout)
	if w2.count(" [x] Received") != 0 {
		t.Fatalf("worker 2 got a task while worker 1 holds the only one: %q", w2.Output())
	}

	w1.kill()
	<-w1.exited
	waitLine(t, w2, " [x] Received "+long, lineTimeout)
	if w1.count(" [x] Done") != 0 {
		t.Fatalf("worker 1 finished before it was killed: %q", w1.Output())
	}
}

// Tutorial 2: a persistent message on the durable task_queue survives a
// server restart.
func TestTutorialWorkQueuesSurviveRestart(t *testing.T) {
	needRestart(t)
	needPika(t)
	t.Parallel()
	dataDir := t.TempDir()

	inst := startWarren(t, dataDir)
	task := "survives restart ."
	if out := runScript(t, "new_task.py", "--url", amqpURL(inst), task); !slices.Contains(out, " [x] Sent "+task) {
		t.Fatalf("new_task.py printed %q", out)
	}
	stopWarren(t, inst)

	inst = startWarren(t, dataDir)
	w := startScript(t, "worker.py", "--url", amqpURL(inst), "--dot-seconds", "0.01", "--count", "1")
	waitLine(t, w, " [x] Received "+task, lineTimeout)
	waitLine(t, w, " [x] Done", lineTimeout)
	w.wait(t, lineTimeout)
}

// Tutorial 3: every subscriber of the fanout exchange logs gets the line.
func TestTutorialPublishSubscribe(t *testing.T) {
	url := brokerURL(t)

	r1 := startScript(t, "receive_logs.py", "--url", url, "--count", "1")
	r2 := startScript(t, "receive_logs.py", "--url", url, "--count", "1")
	waitLine(t, r1, readyLogs, lineTimeout)
	waitLine(t, r2, readyLogs, lineTimeout)

	msg := "info: fanout to everyone"
	if out := runScript(t, "emit_log.py", "--url", url, msg); !slices.Contains(out, " [x] Sent "+msg) {
		t.Fatalf("emit_log.py printed %q", out)
	}
	for _, r := range []*pyProc{r1, r2} {
		waitLine(t, r, " [x] "+msg, lineTimeout)
		r.wait(t, lineTimeout)
	}
}

// Tutorial 4: subscribers of direct_logs get only the severities they bound.
func TestTutorialRouting(t *testing.T) {
	url := brokerURL(t)

	errs := startScript(t, "receive_logs_direct.py", "--url", url, "error")
	infoWarn := startScript(t, "receive_logs_direct.py", "--url", url, "info", "warning")
	waitLine(t, errs, readyLogs, lineTimeout)
	waitLine(t, infoWarn, readyLogs, lineTimeout)

	// Published one after another, and each queue keeps order, so by the
	// time a receiver prints its last wanted line any unwanted earlier one
	// would have arrived too.
	emits := [][2]string{
		{"debug", "not for anyone"},
		{"info", "an info line"},
		{"error", "an error line"},
		{"warning", "a warning line"},
		{"critical", "not for anyone either"},
		{"error", "last error"},
	}
	for _, e := range emits {
		if out := runScript(t, "emit_log_direct.py", "--url", url, e[0], e[1]); !slices.Contains(out, " [x] Sent "+e[0]+":"+e[1]) {
			t.Fatalf("emit_log_direct.py printed %q", out)
		}
	}

	expectExactly(t, errs, []string{
		" [x] error:an error line",
		" [x] error:last error",
	})
	expectExactly(t, infoWarn, []string{
		" [x] info:an info line",
		" [x] warning:a warning line",
	})
}

// Tutorial 5: topic_logs delivers by pattern: '*' is one word, '#' any
// number of words (including none).
func TestTutorialTopics(t *testing.T) {
	url := brokerURL(t)

	procs := map[string]*pyProc{}
	for _, p := range []string{"*.critical", "kern.#", "#", "kern.*"} {
		procs[p] = startScript(t, "receive_logs_topic.py", "--url", url, p)
	}
	for _, p := range procs {
		waitLine(t, p, readyLogs, lineTimeout)
	}

	// kern.critical comes last and matches every pattern (see TestTutorialRouting).
	keys := []string{
		"cron.warning",   // #
		"kern",           // kern.#, #
		"a.b.critical",   // # (not *.critical: two words before)
		"kern.disk.full", // kern.#, # (not kern.*)
		"auth.critical",  // *.critical, #
		"kern.info",      // kern.#, #, kern.*
		"critical",       // # (not *.critical: no word before)
		"kern.critical",  // all four
	}
	want := map[string][]string{
		"*.critical": {"auth.critical", "kern.critical"},
		"kern.#":     {"kern", "kern.disk.full", "kern.info", "kern.critical"},
		"#":          keys,
		"kern.*":     {"kern.info", "kern.critical"},
	}
	for _, k := range keys {
		body := "msg for " + k
		if out := runScript(t, "emit_log_topic.py", "--url", url, k, body); !slices.Contains(out, " [x] Sent "+k+":"+body) {
			t.Fatalf("emit_log_topic.py printed %q", out)
		}
	}
	for p, ks := range want {
		var lines []string
		for _, k := range ks {
			lines = append(lines, " [x] "+k+":msg for "+k)
		}
		t.Run(p, func(t *testing.T) { expectExactly(t, procs[p], lines) })
	}
}

// Tutorial 6: rpc_client asks rpc_server for fib(30), with an exclusive
// callback queue and with direct reply-to.
func TestTutorialRPC(t *testing.T) {
	url := brokerURL(t)
	resetSharedQueues(t, url, "rpc_queue")

	srv := startScript(t, "rpc_server.py", "--url", url)
	waitLine(t, srv, " [x] Awaiting RPC requests", lineTimeout)

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"callback-queue", nil},
		{"direct-reply-to", []string{"--direct-reply-to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--url", url, "--n", "30", "--timeout", "10"}, tc.extra...)
			out := runScript(t, "rpc_client.py", args...)
			if !slices.Contains(out, " [.] Got 832040") {
				t.Fatalf("rpc_client.py printed %q, want \" [.] Got 832040\"", out)
			}
		})
	}
	if n := srv.count(" [.] fib(30)"); n != 2 {
		t.Errorf("rpc_server.py served fib(30) %d times, want 2: %q", n, srv.Output())
	}
}

// expectExactly waits for want (in order) among p's " [x] " lines, then
// checks nothing else arrived.
func expectExactly(t *testing.T, p *pyProc, want []string) {
	t.Helper()
	for _, w := range want {
		waitLine(t, p, w, lineTimeout)
	}
	time.Sleep(200 * time.Millisecond) // late strays would show up now
	var got []string
	for _, l := range p.Output() {
		if strings.HasPrefix(l, " [x] ") {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s printed\n  %q\nwant exactly\n  %q", p.name, got, want)
	}
}
