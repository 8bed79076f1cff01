package mapping_test

import (
	"strings"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// The texts are RabbitMQ 3.10.8's, recorded from the reference broker
// (amqpserver/conformance/qtype_test.go checks the same declarations
// against it when it is reachable); stream is Warren's own refusal.
func TestQueueTypeRules(t *testing.T) {
	r := openRouter(t)
	q := func(name string, args mapping.Table) mapping.QueueSpec {
		return mapping.QueueSpec{Name: name, Durable: true, Args: args}
	}
	quorum := func(kv ...any) mapping.Table {
		args := mapping.Table{"x-queue-type": "quorum"}
		for i := 0; i < len(kv); i += 2 {
			args[kv[i].(string)] = kv[i+1]
		}
		return args
	}
	for _, tc := range []struct {
		spec mapping.QueueSpec
		want string // "" = declared
	}{
		{q("q-ok", quorum()), ""},
		{q("c-ok", mapping.Table{"x-queue-type": "classic"}), ""},
		{q("q-args", quorum("x-delivery-limit", int32(3), "x-quorum-initial-group-size", int32(3), "x-message-ttl", int32(1000),
			"x-expires", int32(60000), "x-max-length", int32(10), "x-overflow", "reject-publish", "x-single-active-consumer", true,
			"x-dead-letter-strategy", "at-least-once", "x-queue-leader-locator", "balanced", "x-max-in-memory-length", int32(5),
			"x-custom", "ignored")), ""},
		{q("q-igs-long", quorum("x-quorum-initial-group-size", int64(5))), ""},
		{q("c-mode", mapping.Table{"x-queue-mode": "lazy", "x-queue-version": int32(2), "x-queue-master-locator": "min-masters"}), ""},
		{q("c-dlimit", mapping.Table{"x-delivery-limit": int32(2)}), ""}, // Warren keeps it on classic queues (RabbitMQ refuses)

		{mapping.QueueSpec{Name: "q-nondur", Args: quorum()}, "invalid property 'non-durable' for queue 'q-nondur' in vhost '/'"},
		{mapping.QueueSpec{Name: "q-ad", Durable: true, AutoDelete: true, Args: quorum()}, "invalid property 'auto-delete' for queue 'q-ad' in vhost '/'"},
		{mapping.QueueSpec{Name: "q-excl", Durable: true, Exclusive: true, Args: quorum()}, "invalid property 'exclusive-owner' for queue 'q-excl' in vhost '/'"},
		{mapping.QueueSpec{Name: "q-all", AutoDelete: true, Exclusive: true, Args: quorum()}, "invalid property 'auto-delete' for queue 'q-all' in vhost '/'"},
		{mapping.QueueSpec{Name: "q-excl-nondur", Exclusive: true, Args: quorum()}, "invalid property 'exclusive-owner' for queue 'q-excl-nondur' in vhost '/'"},
		{q("q-prio", quorum("x-max-priority", int32(5))), "invalid arg 'x-max-priority' for queue 'q-prio' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-prio-mode", quorum("x-max-priority", int32(5), "x-queue-mode", "lazy")), "invalid arg 'x-max-priority' for queue 'q-prio-mode' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-prio-str", quorum("x-max-priority", "a")), "invalid arg 'x-max-priority' for queue 'q-prio-str' in vhost '/' of queue type rabbit_quorum_queue"},
		{mapping.QueueSpec{Name: "q-prio-nondur", Args: quorum("x-max-priority", int32(2))}, "invalid arg 'x-max-priority' for queue 'q-prio-nondur' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-mode", quorum("x-queue-mode", "lazy")), "invalid arg 'x-queue-mode' for queue 'q-mode' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-ver", quorum("x-queue-version", int32(2))), "invalid arg 'x-queue-version' for queue 'q-ver' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-loc", quorum("x-queue-master-locator", "min-masters")), "invalid arg 'x-queue-master-locator' for queue 'q-loc' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-ics", quorum("x-initial-cluster-size", int32(1))), "invalid arg 'x-initial-cluster-size' for queue 'q-ics' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-age", quorum("x-max-age", "1D")), "invalid arg 'x-max-age' for queue 'q-age' in vhost '/' of queue type rabbit_quorum_queue"},
		{q("q-igs-str", quorum("x-quorum-initial-group-size", "x")), "invalid arg 'x-quorum-initial-group-size' for queue 'q-igs-str' in vhost '/': \"expected integer, got longstr\""},
		{q("q-igs0", quorum("x-quorum-initial-group-size", int32(0))), "invalid arg 'x-quorum-initial-group-size' for queue 'q-igs0' in vhost '/': {value_zero,0}"},
		{q("q-igs-neg", quorum("x-quorum-initial-group-size", int32(-1))), "invalid arg 'x-quorum-initial-group-size' for queue 'q-igs-neg' in vhost '/': {value_negative,-1}"},
		{q("c-igs", mapping.Table{"x-queue-type": "classic", "x-quorum-initial-group-size": int32(3)}), "invalid arg 'x-quorum-initial-group-size' for queue 'c-igs' in vhost '/' of queue type rabbit_classic_queue"},
		{q("c-dls", mapping.Table{"x-dead-letter-strategy": "at-most-once"}), "invalid arg 'x-dead-letter-strategy' for queue 'c-dls' in vhost '/' of queue type rabbit_classic_queue"},
		{q("c-ics", mapping.Table{"x-initial-cluster-size": int32(1)}), "invalid arg 'x-initial-cluster-size' for queue 'c-ics' in vhost '/' of queue type rabbit_classic_queue"},
		{q("c-lloc", mapping.Table{"x-queue-leader-locator": "client-local"}), "invalid arg 'x-queue-leader-locator' for queue 'c-lloc' in vhost '/' of queue type rabbit_classic_queue"},
		{q("foo", mapping.Table{"x-queue-type": "foo", "x-max-priority": "a"}), "invalid arg 'x-queue-type' for queue 'foo' in vhost '/': \"unsupported queue type 'foo'\""},
		{q("empty", mapping.Table{"x-queue-type": ""}), "invalid arg 'x-queue-type' for queue 'empty' in vhost '/': \"unsupported queue type ''\""},
		{q("upper", mapping.Table{"x-queue-type": "Quorum"}), "invalid arg 'x-queue-type' for queue 'upper' in vhost '/': \"unsupported queue type 'Quorum'\""},
		{q("int", mapping.Table{"x-queue-type": int32(1)}), "invalid arg 'x-queue-type' for queue 'int' in vhost '/': {unacceptable_type,signedint}"},
		{q("bytes", mapping.Table{"x-queue-type": []byte("quorum")}), "invalid arg 'x-queue-type' for queue 'bytes' in vhost '/': {unacceptable_type,binary}"},
		{q("q-ttl-str", quorum("x-message-ttl", "a")), "invalid arg 'x-message-ttl': expected an integer, got string"},
		{q("stream", mapping.Table{"x-queue-type": "stream"}), "invalid arg 'x-queue-type' for queue 'stream' in vhost '/': \"unsupported queue type 'stream'\": Warren does not implement stream queues (declare a classic or quorum queue)"},
		{mapping.QueueSpec{Durable: true, Args: quorum()}, "Cannot declare a server-named queue for type rabbit_quorum_queue"},
		{mapping.QueueSpec{Exclusive: true, Args: quorum()}, "Cannot declare a server-named queue for type rabbit_quorum_queue"},
	} {
		c := connect(t, r)
		_, err := c.ch.DeclareQueue(tc.spec, false)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want declared", tc.spec.Name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: declared, want %q", tc.spec.Name, tc.want)
		case tc.want != "" && (mapping.KindOf(err) != mapping.KindPreconditionFailed || err.Error() != tc.want):
			t.Errorf("%s: %v (kind %v), want 406 %q", tc.spec.Name, err, mapping.KindOf(err), tc.want)
		}
	}
}

func TestQueueTypeRedeclare(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	typed := func(v string) mapping.Table {
		if v == "" {
			return nil
		}
		return mapping.Table{"x-queue-type": v}
	}
	for _, tc := range []struct{ first, second, want string }{
		{"quorum", "classic", "inequivalent arg 'x-queue-type' for queue 'red' in vhost '/': received 'classic' but current is 'quorum'"},
		{"quorum", "", "inequivalent arg 'x-queue-type' for queue 'red' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"},
		{"classic", "quorum", "inequivalent arg 'x-queue-type' for queue 'red' in vhost '/': received 'quorum' but current is 'classic'"},
		{"", "quorum", "inequivalent arg 'x-queue-type' for queue 'red' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"},
		{"", "classic", ""},
		{"classic", "", ""},
		{"quorum", "quorum", ""},
	} {
		if _, err := c.ch.DeleteQueue("red", false, false); err != nil {
			t.Fatal(err)
		}
		c.declareQueue(t, mapping.QueueSpec{Name: "red", Durable: true, Args: typed(tc.first)})
		_, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: "red", Durable: true, Args: typed(tc.second)}, false)
		got := ""
		if err != nil {
			got = err.Error()
			if mapping.KindOf(err) != mapping.KindPreconditionFailed {
				t.Errorf("%q then %q: kind %v, want 406", tc.first, tc.second, mapping.KindOf(err))
			}
			c = connect(t, r)
		}
		if got != tc.want {
			t.Errorf("%q then %q: %q, want %q", tc.first, tc.second, got, tc.want)
		}
	}
}

// A quorum queue on one node is a durable queue that stores every
// message, transient ones too (RabbitMQ: "per message persistence:
// always"); it and its messages survive a restart, and it is still a
// quorum queue after it. A classic durable queue next to it keeps only
// its persistent messages.
func TestQuorumQueueRestart(t *testing.T) {
	dir := t.TempDir()
	r := openRouterAt(t, dir)
	c := connect(t, r)
	args := mapping.Table{"x-queue-type": "quorum", "x-delivery-limit": int32(2)}
	c.declareQueue(t, mapping.QueueSpec{Name: "qq", Durable: true, Args: args})
	c.declareQueue(t, mapping.QueueSpec{Name: "cq", Durable: true})
	for _, q := range []string{"qq", "cq"} {
		publishPersistent(t, c, "", q, "m1")
		if !c.publishConfirmed(t, "", q, "t1", mapping.Properties{}) {
			t.Fatalf("transient publish to %s: done(false)", q)
		}
		publishPersistent(t, c, "", q, "m2")
	}
	r, c = restart(t, r, c, dir)
	info := c.declareQueue(t, mapping.QueueSpec{Name: "qq", Durable: true, Args: args})
	if info.Messages != 3 {
		t.Fatalf("qq after restart holds %d, want 3", info.Messages)
	}
	var bodies []string
	for _, d := range getAll(t, c, "qq") {
		bodies = append(bodies, string(d.Message.Body))
	}
	if strings.Join(bodies, ",") != "m1,t1,m2" {
		t.Fatalf("qq after restart: %v, want m1,t1,m2", bodies)
	}
	if n := c.count(t, "cq"); n != 2 {
		t.Fatalf("cq after restart holds %d, want 2 (its transient message dropped)", n)
	}
	vh, err := r.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	st, err := vh.Queue("qq")
	if err != nil || st.Type != mapping.QueueTypeQuorum {
		t.Fatalf("qq after restart: type %q, %v; want quorum", st.Type, err)
	}
}

// With the default type quorum, as with a RabbitMQ 3.10 vhost whose
// default_queue_type is quorum: declarations without x-queue-type that a
// quorum queue can hold get it (and show it), the others stay classic.
func TestDefaultQueueType(t *testing.T) {
	r, err := mapping.Open(mapping.Config{DataDir: t.TempDir(), Logger: quietLogger(), DefaultQueueType: mapping.QueueTypeQuorum})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c := connect(t, r)
	for _, tc := range []struct {
		spec mapping.QueueSpec
		want string
	}{
		{mapping.QueueSpec{Name: "d", Durable: true}, mapping.QueueTypeQuorum},
		{mapping.QueueSpec{Name: "d-args", Durable: true, Args: mapping.Table{"x-max-length": int32(5)}}, mapping.QueueTypeQuorum},
		{mapping.QueueSpec{Name: "explicit", Durable: true, Args: mapping.Table{"x-queue-type": "classic"}}, mapping.QueueTypeClassic},
		{mapping.QueueSpec{Name: "nondur"}, mapping.QueueTypeClassic},
		{mapping.QueueSpec{Name: "ad", Durable: true, AutoDelete: true}, mapping.QueueTypeClassic},
		{mapping.QueueSpec{Name: "excl", Durable: true, Exclusive: true}, mapping.QueueTypeClassic},
		{mapping.QueueSpec{Exclusive: true, AutoDelete: true}, mapping.QueueTypeClassic}, // server-named reply queue
	} {
		info := c.declareQueue(t, tc.spec)
		vh, _ := r.VHost("/")
		st, err := vh.Queue(info.Name)
		if err != nil || st.Type != tc.want {
			t.Errorf("%s: type %q %v, want %q", tc.spec.Name, st.Type, err, tc.want)
		}
		if _, has := st.Arguments["x-queue-type"]; has != (tc.want == mapping.QueueTypeQuorum || tc.spec.Args["x-queue-type"] != nil) {
			t.Errorf("%s: arguments %v", tc.spec.Name, st.Arguments)
		}
		if tc.spec.Name == "" {
			continue // amq.gen- names cannot be redeclared
		}
		// a redeclaration without the type gets the same default
		c.declareQueue(t, mapping.QueueSpec{Name: info.Name, Durable: tc.spec.Durable, AutoDelete: tc.spec.AutoDelete, Exclusive: tc.spec.Exclusive, Args: tc.spec.Args})
	}
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "d", Durable: true, Args: mapping.Table{"x-queue-type": "classic"}}, false)
	if err == nil || err.Error() != "inequivalent arg 'x-queue-type' for queue 'd' in vhost '/': received 'classic' but current is 'quorum'" {
		t.Errorf("classic over defaulted quorum: %v", err)
	}
	c = connect(t, r)
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "prio", Durable: true, Args: mapping.Table{"x-max-priority": int32(3)}}, false)
	if err == nil || err.Error() != "invalid arg 'x-max-priority' for queue 'prio' in vhost '/' of queue type rabbit_quorum_queue" {
		t.Errorf("x-max-priority under default quorum: %v", err)
	}
	// RabbitMQ 3.10 (checked on a vhost with default type quorum): a
	// durable server-named queue gets the default type, then is refused.
	c = connect(t, r)
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Durable: true}, false)
	if err == nil || err.Error() != "Cannot declare a server-named queue for type rabbit_quorum_queue" {
		t.Errorf("durable server-named queue under default quorum: %v", err)
	}
	if _, err := mapping.ParseDefaultQueueType("stream"); err == nil {
		t.Error("default queue type stream accepted")
	}
}

// A vhost's own default queue type (RabbitMQ 3.10's vhost metadata) wins
// over the node's, survives a restart and is kept when the vhost is
// updated without one.
func TestVHostDefaultQueueType(t *testing.T) {
	dir := t.TempDir()
	r := openRouterAt(t, dir)
	if err := r.PutVHost("/", "d", nil, "quorum"); err != nil {
		t.Fatal(err)
	}
	if err := r.PutVHost("/", "described again", nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.PutVHost("other", "", nil, "stream"); err == nil || mapping.KindOf(err) != mapping.KindPreconditionFailed {
		t.Fatalf("vhost default type stream: %v, want refused", err)
	}
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "before", Durable: true})
	r, c = restart(t, r, c, dir)
	c.declareQueue(t, mapping.QueueSpec{Name: "after", Durable: true})
	vh, err := r.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	if vh.OwnDefaultQueueType() != "quorum" || vh.DefaultQueueType() != "quorum" {
		t.Fatalf("after restart: own %q, effective %q", vh.OwnDefaultQueueType(), vh.DefaultQueueType())
	}
	for _, name := range []string{"before", "after"} {
		if st, err := vh.Queue(name); err != nil || st.Type != mapping.QueueTypeQuorum {
			t.Errorf("%s: type %q %v, want quorum", name, st.Type, err)
		}
	}
	if err := r.PutVHost("/", "", nil, "classic"); err != nil {
		t.Fatal(err)
	}
	c.declareQueue(t, mapping.QueueSpec{Name: "classic-again", Durable: true})
	if st, _ := vh.Queue("classic-again"); st.Type != mapping.QueueTypeClassic {
		t.Errorf("classic-again: type %q", st.Type)
	}
}
