package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestQueueTypeManagement: with --default-queue-type quorum, the queues a
// client declares show their type in /api/queues, quorum ones with
// their leader and members (this node, as in a RabbitMQ cluster of one),
// and the vhost shows its default type.
func TestQueueTypeManagement(t *testing.T) {
	inst := startWarrenWith(t, "", func(c *Config) { c.DefaultQueueType = "quorum" })
	api := newMgmtClient(t, inst)
	conn, ch := dialURL(t, amqpURL(inst))
	defer conn.Close()
	for _, q := range []struct {
		name    string
		durable bool
		args    amqp.Table
	}{
		{"defaulted", true, nil},
		{"explicit-classic", true, amqp.Table{"x-queue-type": "classic"}},
		{"transient", false, nil},
		{"explicit-quorum", true, amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(3)}},
	} {
		if _, err := ch.QueueDeclare(q.name, q.durable, false, false, false, q.args); err != nil {
			t.Fatalf("declare %s: %v", q.name, err)
		}
	}
	var ov map[string]any
	api.want(http.StatusOK, "GET", "/api/overview", nil, &ov)
	node, _ := ov["node"].(string)
	if node == "" {
		t.Fatalf("overview has no node: %v", ov)
	}
	var list []map[string]any
	api.want(http.StatusOK, "GET", "/api/queues/%2F", nil, &list)
	want := map[string]string{"defaulted": "quorum", "explicit-classic": "classic", "transient": "classic", "explicit-quorum": "quorum"}
	seen := 0
	for _, q := range list {
		name, _ := q["name"].(string)
		typ, ok := want[name]
		if !ok {
			continue
		}
		seen++
		var one map[string]any
		api.want(http.StatusOK, "GET", "/api/queues/%2F/"+name, nil, &one)
		for what, m := range map[string]map[string]any{"list": q, "detail": one} {
			if m["type"] != typ || m["node"] != node {
				t.Errorf("%s %s: type %v node %v, want %s %s", what, name, m["type"], m["node"], typ, node)
			}
			members, _ := m["members"].([]any)
			if typ == "quorum" {
				if m["leader"] != node || len(members) != 1 || members[0] != node {
					t.Errorf("%s %s: leader %v members %v, want %s [%s]", what, name, m["leader"], m["members"], node, node)
				}
			} else if _, has := m["leader"]; has || members != nil {
				t.Errorf("%s %s (classic): leader %v members %v, want neither", what, name, m["leader"], m["members"])
			}
		}
		args, _ := q["arguments"].(map[string]any)
		if name == "defaulted" && args["x-queue-type"] != "quorum" {
			t.Errorf("defaulted queue's arguments %v, want x-queue-type quorum added as RabbitMQ adds it", args)
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the %d queues in %v", seen, len(want), list)
	}
	var vh map[string]any
	api.want(http.StatusOK, "GET", "/api/vhosts/%2F", nil, &vh)
	if vh["default_queue_type"] != "quorum" {
		t.Errorf("vhost default_queue_type %v, want quorum", vh["default_queue_type"])
	}
	// The management API declares through the same rules (a 406 is 409
	// precondition_failed there, as for every declaration it refuses).
	reason := api.wantError(http.StatusConflict, "precondition_failed", "PUT", "/api/queues/%2F/s", map[string]any{"durable": true, "arguments": map[string]any{"x-queue-type": "stream"}})
	if !strings.Contains(reason, "Warren does not implement stream queues") {
		t.Errorf("PUT a stream queue: %q", reason)
	}
	reason = api.wantError(http.StatusConflict, "precondition_failed", "PUT", "/api/queues/%2F/nd", map[string]any{"durable": false, "arguments": map[string]any{"x-queue-type": "quorum"}})
	if !strings.Contains(reason, "invalid property 'non-durable' for queue 'nd'") {
		t.Errorf("PUT a non-durable quorum queue: %q", reason)
	}
	// Definitions: a quorum queue imports as one; a stream queue fails
	// the import, naming it, instead of being skipped or made classic.
	defs := func(name, typ string) map[string]any {
		return map[string]any{"queues": []any{map[string]any{"name": name, "vhost": "/", "durable": true, "auto_delete": false,
			"arguments": map[string]any{"x-queue-type": typ}}}}
	}
	api.want(http.StatusNoContent, "POST", "/api/definitions", defs("imported", "quorum"), nil)
	var imported map[string]any
	api.want(http.StatusOK, "GET", "/api/queues/%2F/imported", nil, &imported)
	if imported["type"] != "quorum" {
		t.Errorf("imported quorum queue: type %v", imported["type"])
	}
	reason = api.wantError(http.StatusConflict, "precondition_failed", "POST", "/api/definitions", defs("st", "stream"))
	if !strings.Contains(reason, "importing queue 'st'") || !strings.Contains(reason, "Warren does not implement stream queues") {
		t.Errorf("importing a stream queue: %q", reason)
	}
	api.want(http.StatusNotFound, "GET", "/api/queues/%2F/st", nil, nil)
}

// TestVHostDefaultQueueTypeAPI: PUT /api/vhosts/{name} takes RabbitMQ
// 3.10's defaultqueuetype; the vhost shows it (top level and metadata),
// its queues declared without a type get it, definitions carry it.
func TestVHostDefaultQueueTypeAPI(t *testing.T) {
	inst := startWarren(t, "")
	api := newMgmtClient(t, inst)
	api.want(http.StatusCreated, "PUT", "/api/vhosts/qv", map[string]any{"defaultqueuetype": "quorum"}, nil)
	var vh map[string]any
	api.want(http.StatusOK, "GET", "/api/vhosts/qv", nil, &vh)
	md, _ := vh["metadata"].(map[string]any)
	if vh["default_queue_type"] != "quorum" || md["default_queue_type"] != "quorum" {
		t.Fatalf("vhost qv: %v", vh)
	}
	api.want(http.StatusOK, "GET", "/api/vhosts/%2F", nil, &vh)
	md, _ = vh["metadata"].(map[string]any)
	if _, has := md["default_queue_type"]; vh["default_queue_type"] != "classic" || has {
		t.Fatalf("vhost / (no own default): %v", vh)
	}
	conn, ch := dialURL(t, "amqp://guest:guest@"+inst.AMQPAddr()+"/qv")
	defer conn.Close()
	if _, err := ch.QueueDeclare("jobs", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var q map[string]any
	api.want(http.StatusOK, "GET", "/api/queues/qv/jobs", nil, &q)
	if q["type"] != "quorum" {
		t.Errorf("queue in a vhost with default quorum: type %v", q["type"])
	}
	var defs map[string]any
	api.want(http.StatusOK, "GET", "/api/definitions", nil, &defs)
	found := false
	for _, v := range defs["vhosts"].([]any) {
		v := v.(map[string]any)
		if v["name"] == "qv" {
			md, _ := v["metadata"].(map[string]any)
			found = md["default_queue_type"] == "quorum"
		}
	}
	if !found {
		t.Errorf("definitions do not carry qv's default type: %v", defs["vhosts"])
	}
	reason := api.wantError(http.StatusConflict, "precondition_failed", "PUT", "/api/vhosts/sv", map[string]any{"defaultqueuetype": "stream"})
	if !strings.Contains(reason, "Warren does not implement stream queues") {
		t.Errorf("PUT a vhost with default stream: %q", reason)
	}
}

// TestQueueTypeFieldsRabbitMQ checks that the fields Warren shows for a
// quorum queue are the ones the reference RabbitMQ shows, with the same
// shapes (skipped without WARREN_TEST_RABBITMQ_URL and _MGMT_URL).
func TestQueueTypeFieldsRabbitMQ(t *testing.T) {
	rmqURL, rmqMgmt := os.Getenv("WARREN_TEST_RABBITMQ_URL"), os.Getenv("WARREN_TEST_RABBITMQ_MGMT_URL")
	if rmqURL == "" || rmqMgmt == "" {
		t.Skip("set WARREN_TEST_RABBITMQ_URL and WARREN_TEST_RABBITMQ_MGMT_URL (e.g. amqp://guest:guest@127.0.0.1:5673/ and http://guest:guest@127.0.0.1:15673) to compare with RabbitMQ")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "qtype-fields-" + hex.EncodeToString(b[:])
	conn, ch := dialURL(t, rmqURL)
	defer conn.Close()
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(name, false, false, false)
	u, err := url.Parse(rmqMgmt)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	rmq := &mgmtClient{t: t, base: u.Scheme + "://" + u.Host, user: u.User.Username(), pass: pass}
	var ref map[string]any
	rmq.want(http.StatusOK, "GET", "/api/queues/%2F/"+name, nil, &ref)

	inst := startWarren(t, "")
	wconn, wch := dialURL(t, amqpURL(inst))
	defer wconn.Close()
	if _, err := wch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	newMgmtClient(t, inst).want(http.StatusOK, "GET", "/api/queues/%2F/"+name, nil, &got)
	for _, k := range []string{"type", "node", "leader", "members", "online", "arguments", "durable"} {
		rv, ok := ref[k]
		if !ok && k != "node" { // RabbitMQ adds node with the queue's first stats
			t.Fatalf("RabbitMQ's quorum queue has no %q: %v", k, ref)
		}
		gv, ok := got[k]
		if !ok {
			t.Errorf("Warren's quorum queue has no %q", k)
			continue
		}
		switch k {
		case "node", "leader":
			// each names its own node
			if _, isStr := gv.(string); !isStr || gv == "" {
				t.Errorf("%s: %T, RabbitMQ %T", k, gv, rv)
			}
		case "members", "online":
			ga, _ := gv.([]any)
			ra, _ := rv.([]any)
			if len(ga) != 1 || len(ra) != 1 || !slices.Contains(ga, got["node"]) {
				t.Errorf("%s: %v, RabbitMQ %v", k, gv, rv)
			}
		default:
			if !jsonEqual(gv, rv) {
				t.Errorf("%s: %v, RabbitMQ %v", k, gv, rv)
			}
		}
	}
}

func jsonEqual(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			if !jsonEqual(v, bm[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestDefaultQueueTypeSettings: the flag, env var and config key take
// classic or quorum and nothing else.
func TestDefaultQueueTypeSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string // "" = refused
	}{
		{nil, "", ""},
		{[]string{"--default-queue-type", "quorum"}, "", "quorum"},
		{[]string{"--default-queue-type", "classic"}, "quorum", "classic"},
		{nil, "quorum", "quorum"},
		{[]string{"--default-queue-type", "stream"}, "", "refused"},
		{nil, "lazy", "refused"},
	} {
		t.Setenv("WARREN_DEFAULT_QUEUE_TYPE", tc.env)
		cfg, err := parseServeFlags(tc.args, io.Discard)
		switch {
		case tc.want == "refused":
			if err == nil || !strings.Contains(err.Error(), "default_queue_type") {
				t.Errorf("%v env %q: %v, want refused", tc.args, tc.env, err)
			}
		case err != nil || cfg.DefaultQueueType != tc.want:
			t.Errorf("%v env %q: %q %v, want %q", tc.args, tc.env, cfg.DefaultQueueType, err, tc.want)
		}
	}
}
