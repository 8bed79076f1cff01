package main

// Shovels across crashes (SIGKILL of a Warren process) and against the
// reference RabbitMQ (WARREN_TEST_RABBITMQ_URL, with its management API at
// WARREN_TEST_RABBITMQ_MGMT, default http://127.0.0.1:15673).

import (
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// procWarren is a Warren child process with its addresses.
type procWarren struct {
	cmd  *exec.Cmd
	url  string
	mgmt *mgmtClient
}

func (p *procWarren) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}

// TestShovelSurvivesKill9: Warren is killed with SIGKILL while a shovel
// moves messages between two of its queues; after the restart the shovel
// resumes from its stored definition and every message arrives.
func TestShovelSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a Warren process")
	}
	dir := t.TempDir()
	w := startProc(t, dir)
	const n = 5000
	declareQueue(t, w.url, "k-src", nil)
	publishN(t, w.url, "k-src", "k", n, nil)
	shovelPut(w.mgmt, "/", "crash", map[string]any{
		"src-uri": "amqp://", "src-queue": "k-src", "dest-uri": "amqp://", "dest-queue": "k-dst", "src-prefetch-count": 100,
	})
	eventually(t, 30*time.Second, "the shovel to move some messages", func() bool { return queueLen(t, w.url, "k-dst") > 300 })
	w.kill9(t)
	w = startProc(t, dir)
	drain(t, w.url, "k-dst", ids("k", n), 60*time.Second)
	eventually(t, 30*time.Second, "the source to be empty", func() bool { return queueLen(t, w.url, "k-src") == 0 })
	waitShovel(t, w.mgmt, "crash", "running")
}

func rabbitURL(t *testing.T) string {
	u := os.Getenv("WARREN_TEST_RABBITMQ_URL")
	if u == "" {
		t.Skip("set WARREN_TEST_RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5673/) to test against RabbitMQ")
	}
	return u
}

func rabbitMgmt(t *testing.T) *mgmtClient {
	base := os.Getenv("WARREN_TEST_RABBITMQ_MGMT")
	if base == "" {
		base = "http://127.0.0.1:15673"
	}
	return &mgmtClient{t: t, base: base, user: "guest", pass: "guest"}
}

func deleteRabbitQueues(t *testing.T, url string, queues ...string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range queues {
		ch, err := conn.Channel() // a missing queue closes the channel
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			if e, ok := err.(*amqp.Error); !ok || e.Code != amqp.NotFound {
				t.Fatal(err)
			}
		}
	}
}

// TestShovelMigrationFromRabbitMQ: a shovel in Warren empties a RabbitMQ
// queue into Warren with src-delete-after: queue-length while Warren is
// killed with SIGKILL in the middle: every message arrives with its
// properties, the RabbitMQ queue ends empty and the shovel removes
// itself. A second shovel moves messages back from Warren to RabbitMQ.
func TestShovelMigrationFromRabbitMQ(t *testing.T) {
	rurl := rabbitURL(t)
	deleteRabbitQueues(t, rurl, "shovel-mig-src", "shovel-back-dst")
	t.Cleanup(func() { deleteRabbitQueues(t, rurl, "shovel-mig-src", "shovel-back-dst") })
	declareQueue(t, rurl, "shovel-mig-src", nil)
	const n = 3000
	ts := time.Unix(1690000000, 0)
	props := func(i int, p *amqp.Publishing) {
		p.ContentType, p.AppId, p.Type, p.Timestamp, p.Expiration = "application/json", "legacy", "order.created", ts, "3600000"
		p.Headers = amqp.Table{"i": int64(i), "src": "rabbit"}
	}
	publishN(t, rurl, "shovel-mig-src", "r", n, props)

	dir := t.TempDir()
	w := startProc(t, dir)
	shovelPut(w.mgmt, "/", "migrate", map[string]any{
		"src-uri": rurl, "src-queue": "shovel-mig-src", "dest-uri": "amqp://", "dest-queue": "migrated",
		"src-delete-after": "queue-length", "src-prefetch-count": 100, "reconnect-delay": 1,
	})
	eventually(t, 60*time.Second, "part of the queue to move", func() bool { return queueLen(t, w.url, "migrated") > 300 })
	w.kill9(t)
	w = startProc(t, dir)
	got := drain(t, w.url, "migrated", ids("r", n), 120*time.Second)
	for i, id := range ids("r", n) {
		d := got[id]
		var want amqp.Publishing
		props(i, &want)
		if d.ContentType != want.ContentType || d.AppId != "legacy" || d.Type != want.Type || !d.Timestamp.Equal(ts) ||
			d.Expiration != want.Expiration || d.DeliveryMode != amqp.Persistent || d.Headers["i"] != int64(i) || d.Headers["src"] != "rabbit" ||
			string(d.Body) != "body "+id {
			t.Fatalf("message %s arrived as %+v", id, d)
		}
	}
	eventually(t, 60*time.Second, "the RabbitMQ queue to be empty and the shovel gone", func() bool {
		code, _, _ := w.mgmt.do("GET", "/api/parameters/shovel/%2F/migrate", nil)
		return queueLen(t, rurl, "shovel-mig-src") == 0 && code == 404
	})

	// And back: Warren to RabbitMQ.
	declareQueue(t, w.url, "back-src", nil)
	declareQueue(t, rurl, "shovel-back-dst", nil)
	publishN(t, w.url, "back-src", "b", 300, props)
	shovelPut(w.mgmt, "/", "back", map[string]any{"src-uri": "amqp://", "src-queue": "back-src", "dest-uri": rurl, "dest-queue": "shovel-back-dst"})
	back := drain(t, rurl, "shovel-back-dst", ids("b", 300), 60*time.Second)
	if d := back["b7"]; d.AppId != "legacy" || d.Headers["i"] != int64(7) || !d.Timestamp.Equal(ts) {
		t.Fatalf("message b7 arrived in RabbitMQ as %+v", d)
	}
	w.mgmt.want(204, "DELETE", "/api/parameters/shovel/%2F/back", nil, nil)
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestShovelAPIMatchesRabbitMQ: the same shovel defined on RabbitMQ and on
// Warren is listed with the same fields by GET /api/shovels and GET
// /api/parameters/shovel.
func TestShovelAPIMatchesRabbitMQ(t *testing.T) {
	rurl := rabbitURL(t)
	rm := rabbitMgmt(t)
	inst := startWarren(t, "")
	wm := newMgmtClient(t, inst)
	value := map[string]any{"src-uri": "amqp://", "src-queue": "shovel-cmp-a", "dest-uri": "amqp://", "dest-queue": "shovel-cmp-b", "src-delete-after": "never"}
	t.Cleanup(func() {
		rm.do("DELETE", "/api/parameters/shovel/%2F/shovel-cmp", nil)
		deleteRabbitQueues(t, rurl, "shovel-cmp-a", "shovel-cmp-b")
	})
	for _, a := range []*mgmtClient{rm, wm} {
		shovelPut(a, "/", "shovel-cmp", value)
		waitShovel(t, a, "shovel-cmp", "running")
	}
	shapes := func(a *mgmtClient, path string) (map[string]any, []string) {
		var list []map[string]any
		a.want(200, "GET", path, nil, &list)
		for _, s := range list {
			if s["name"] == "shovel-cmp" {
				return s, keysOf(s)
			}
		}
		t.Fatalf("%s%s does not list shovel-cmp: %v", a.base, path, list)
		return nil, nil
	}
	for _, path := range []string{"/api/shovels", "/api/shovels/%2F", "/api/parameters/shovel", "/api/parameters/shovel/%2F"} {
		rs, rk := shapes(rm, path)
		ws, wk := shapes(wm, path)
		if strings.Join(rk, ",") != strings.Join(wk, ",") {
			t.Errorf("%s fields: RabbitMQ %v, Warren %v", path, rk, wk)
		}
		for _, k := range []string{"state", "type", "vhost", "src_uri", "src_queue", "dest_queue", "component"} {
			if rs[k] != ws[k] {
				t.Errorf("%s %s: RabbitMQ %v, Warren %v", path, k, rs[k], ws[k])
			}
		}
		if path == "/api/parameters/shovel" {
			rv, _ := json.Marshal(rs["value"])
			wv, _ := json.Marshal(ws["value"])
			if string(rv) != string(wv) {
				t.Errorf("parameter value: RabbitMQ %s, Warren %s", rv, wv)
			}
		}
	}
}

// TestShovelRabbitmqadmin: RabbitMQ's rabbitmqadmin declares, lists and
// deletes Warren's shovels (skipped without rabbitmqadmin, which Debian's
// rabbitmq-server package ships).
func TestShovelRabbitmqadmin(t *testing.T) {
	bin, err := exec.LookPath("rabbitmqadmin")
	if err != nil {
		t.Skip("rabbitmqadmin not installed (apt-get install rabbitmq-server ships it)")
	}
	t.Parallel()
	inst := startWarren(t, "")
	wm := newMgmtClient(t, inst)
	_, port, _ := strings.Cut(inst.HTTPAddr(), ":")
	admin := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"-H", "127.0.0.1", "-P", port, "-u", "guest", "-p", "guest"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	admin("declare", "parameter", "component=shovel", "name=by-admin",
		`value={"src-uri":"amqp://","src-queue":"admin-a","dest-uri":"amqp://","dest-queue":"admin-b","prefetch-count":5}`)
	waitShovel(t, wm, "by-admin", "running")
	if out := admin("-f", "tsv", "-q", "list", "parameters", "component", "name"); !strings.Contains(out, "shovel\tby-admin") {
		t.Errorf("list parameters: %q", out)
	}
	admin("delete", "parameter", "component=shovel", "name=by-admin")
	wm.wantError(404, "not_found", "GET", "/api/parameters/shovel/%2F/by-admin", nil)
}
