package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ctlRun runs `warren ctl` in-process against base and returns its exit
// code, stdout and stderr.
func ctlRun(t *testing.T, base string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"ctl", "--url", base}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestCtlVerbs runs every `warren ctl` verb against a live server.
func TestCtlVerbs(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := ctlRun(t, base, args...)
		if code != 0 {
			t.Fatalf("warren ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	fails := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := ctlRun(t, base, args...)
		if code != want {
			t.Fatalf("warren ctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
		}
		if !strings.Contains(errs, "Error:") {
			t.Errorf("warren ctl %s: no error message on stderr: %q", strings.Join(args, " "), errs)
		}
		return errs
	}
	lines := func(out string) []string { return strings.Split(strings.TrimSpace(out), "\n") }
	fields := func(line string) string { return strings.Join(strings.Fields(line), " ") }

	// users
	ok("add_user", "alice", "s3cret")
	fails(ctlExitDataErr, "add_user", "alice", "again")
	ok("set_user_tags", "alice", "management", "monitoring")
	if out := ok("list_users"); !strings.Contains(out, "[management, monitoring]") || !strings.Contains(out, "guest") {
		t.Errorf("list_users:\n%s", out)
	}
	ok("change_password", "alice", "n3w")
	if out := ok("authenticate_user", "alice", "n3w"); !strings.Contains(out, "Success") {
		t.Errorf("authenticate_user: %q", out)
	}
	fails(ctlExitNoPerm, "authenticate_user", "alice", "s3cret")

	// vhosts and permissions
	ok("add_vhost", "v1")
	if out := ok("list_vhosts"); !strings.Contains(out, "v1") || !strings.Contains(out, "/") {
		t.Errorf("list_vhosts:\n%s", out)
	}
	ok("set_permissions", "-p", "v1", "alice", "^a-", ".*", ".*")
	if out := ok("list_permissions", "-p", "v1"); !strings.Contains(fields(out), "alice ^a- .* .*") {
		t.Errorf("list_permissions:\n%s", out)
	}
	if out := ok("list_user_permissions", "alice"); !strings.Contains(fields(out), "v1 ^a- .* .*") {
		t.Errorf("list_user_permissions:\n%s", out)
	}
	fails(ctlExitDataErr, "set_permissions", "-p", "nope", "alice", ".*", ".*", ".*")

	// topology made over AMQP, listed by ctl
	conn, err := amqp.Dial(amqpURL(inst))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("jobs", true, false, false, false, amqp.Table{"x-max-length": int32(5)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("logs", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("jobs", "", "logs", false, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := ch.Publish("", "jobs", false, false, amqp.Publishing{Body: []byte("job")}); err != nil {
			t.Fatal(err)
		}
	}
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cch.Consume("jobs", "worker-1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, lineTimeout, "one unacked message", func() bool {
		_, out, _ := ctlRun(t, base, "list_queues", "name", "messages_ready", "messages_unacknowledged")
		return strings.Contains(fields(out), "jobs 2 1")
	})
	out := ok("list_queues", "name", "messages", "messages_ready", "messages_unacknowledged", "consumers", "durable", "auto_delete", "exclusive", "arguments")
	if l := lines(out); len(l) != 2 || fields(l[0]) != "name messages messages_ready messages_unacknowledged consumers durable auto_delete exclusive arguments" ||
		fields(l[1]) != `jobs 3 2 1 1 true false false {"x-max-length":5}` {
		t.Errorf("list_queues with columns:\n%s", out)
	}
	out = ok("--formatter", "json", "list_queues")
	var qs []map[string]any
	if err := json.Unmarshal([]byte(out), &qs); err != nil || len(qs) != 1 || qs[0]["name"] != "jobs" || qs[0]["messages"] != 3.0 {
		t.Errorf("list_queues --formatter json: %v\n%s", err, out)
	}
	fails(ctlExitUsage, "list_queues", "no_such_column")
	if out := ok("list_exchanges"); !strings.Contains(fields(out), "logs fanout") || !strings.Contains(fields(out), "amq.topic topic") {
		t.Errorf("list_exchanges:\n%s", out)
	}
	if out := ok("list_bindings"); !strings.Contains(fields(out), "logs exchange jobs queue") {
		t.Errorf("list_bindings:\n%s", out)
	}
	if out := ok("list_connections"); len(lines(out)) != 2 || !strings.Contains(out, "guest") {
		t.Errorf("list_connections:\n%s", out)
	}
	if out := ok("list_channels"); len(lines(out)) != 3 {
		t.Errorf("list_channels:\n%s", out)
	}
	if out := ok("list_consumers"); !strings.Contains(out, "worker-1") || !strings.Contains(out, "jobs") {
		t.Errorf("list_consumers:\n%s", out)
	}
	if out := ok("status"); !strings.Contains(out, "Warren") || !strings.Contains(out, "Total queues") {
		t.Errorf("status:\n%s", out)
	}

	// definitions
	dir := t.TempDir()
	file := filepath.Join(dir, "defs.json")
	ok("export_definitions", file)
	raw, err := os.ReadFile(file)
	if err != nil || !bytes.Contains(raw, []byte(`"jobs"`)) || !bytes.Contains(raw, []byte(`"alice"`)) {
		t.Fatalf("exported definitions (%v):\n%s", err, raw)
	}

	// closing, purging, deleting
	var connName string
	{
		_, out, _ := ctlRun(t, base, "--formatter", "json", "list_connections", "name")
		var cs []map[string]any
		json.Unmarshal([]byte(out), &cs)
		if len(cs) != 1 {
			t.Fatalf("connections: %s", out)
		}
		connName = cs[0]["name"].(string)
	}
	ok("close_connection", connName, "maintenance")
	eventually(t, lineTimeout, "connection closed", conn.IsClosed)
	eventually(t, lineTimeout, "unacked message requeued", func() bool {
		_, out, _ := ctlRun(t, base, "list_queues", "name", "messages_ready", "consumers")
		return strings.Contains(fields(out), "jobs 3 0")
	})
	ok("purge_queue", "jobs")
	if out := ok("list_queues"); !strings.Contains(fields(out), "jobs 0") {
		t.Errorf("after purge_queue:\n%s", out)
	}
	fails(ctlExitDataErr, "purge_queue", "nope")
	ok("delete_queue", "jobs", "--if-empty")
	if out := ok("list_queues"); strings.Contains(out, "jobs") {
		t.Errorf("after delete_queue:\n%s", out)
	}
	ok("import_definitions", file)
	if out := ok("list_queues"); !strings.Contains(out, "jobs") {
		t.Errorf("after import_definitions:\n%s", out)
	}
	ok("clear_permissions", "-p", "v1", "alice")
	ok("delete_vhost", "v1")
	ok("delete_user", "alice")
	fails(ctlExitDataErr, "delete_user", "alice")

	// usage, refusal and an unreachable server
	fails(ctlExitUsage, "no_such_verb")
	fails(ctlExitUsage, "add_user", "onlyname")
	fails(ctlExitUsage, "--formatter", "xml", "list_users")
	fails(ctlExitNoPerm, "--password", "wrong", "list_users")
	code, _, errs := ctlRun(t, "http://127.0.0.1:1", "list_users")
	if code != ctlExitUnavailable || !strings.Contains(errs, "cannot reach Warren") {
		t.Errorf("unreachable server: exit %d, stderr %q", code, errs)
	}
}

// TestCtlEnv: WARREN_URL, WARREN_USERNAME and WARREN_PASSWORD give the
// connection defaults.
func TestCtlEnv(t *testing.T) {
	inst := startWarren(t, "")
	t.Setenv("WARREN_URL", "http://"+inst.HTTPAddr())
	t.Setenv("WARREN_USERNAME", "guest")
	t.Setenv("WARREN_PASSWORD", "guest")
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"ctl", "-q", "list_vhosts"}, &so, &se); code != 0 || se.Len() != 0 || !strings.Contains(so.String(), "/") {
		t.Errorf("ctl with WARREN_URL: exit %d stdout %q stderr %q", code, so.String(), se.String())
	}
	t.Setenv("WARREN_PASSWORD", "wrong")
	if code := run(context.Background(), []string{"ctl", "list_vhosts"}, &so, &se); code != ctlExitNoPerm {
		t.Errorf("ctl with a wrong WARREN_PASSWORD: exit %d, want %d", code, ctlExitNoPerm)
	}
}
