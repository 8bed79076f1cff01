package mapping_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestMetaStartListingLags: a restarting node lists queues, then
// bindings, each from whichever replica its watch was placed on. When
// the queue listing misses a queue (a replica still catching up) and
// the binding listing, a moment later, has its binding, recovery cannot
// apply the binding; the watcher's replay must then apply both, so the
// node that says it is ready routes through the binding (CI once saw a
// restarted node list no binding made while it was down). And when the
// listing misses one of the node's own durable queues, its log is not
// taken for a deleted queue's: the queue comes back with its messages.
func TestMetaStartListingLags(t *testing.T) {
	rs, cfgs := openClusterConfigs(t, 3)
	c1 := connect(t, rs[0])
	c1.declareExchange(t, mapping.ExchangeSpec{Name: "lag-x", Type: mapping.TypeDirect, Durable: true})
	c1.declareQueue(t, mapping.QueueSpec{Name: "lag-q", Durable: true})
	c1.bind(t, "lag-q", "lag-x", "k")
	c3 := connect(t, rs[2])
	c3.declareQueue(t, mapping.QueueSpec{Name: "lag-home", Durable: true}) // home n3
	for _, m := range []string{"h1", "h2"} {
		if !c3.publishConfirmed(t, "", "lag-home", m, mapping.Properties{DeliveryMode: 2}) {
			t.Fatalf("%s not confirmed", m)
		}
	}

	// And a transient queue of n3, bound: a leftover of n3's previous
	// run once n3 restarts, whose record and binding n3 deletes even
	// when its listing missed the queue.
	c3.declareQueue(t, mapping.QueueSpec{Name: "lag-tq"})
	c3.bind(t, "lag-tq", "lag-x", "t")
	if recs, err := mapping.MetaRecordsForTest(rs[0], "b."); err != nil || !bindingTo(recs, "lag-tq") {
		t.Fatalf("lag-tq's binding record before the restart: %v %v", recs, err)
	}

	// An administrator's change to the default user: a listing that
	// holds no users and vhosts (a replica that lags) is no first start.
	if err := rs[0].SetUserTags("guest", []string{"monitoring"}); err != nil {
		t.Fatal(err)
	}

	rs[2].Close()
	mapping.DropAtStartForTest("n3", func(key string) bool {
		switch {
		case strings.HasPrefix(key, "u."), strings.HasPrefix(key, "v."), strings.HasPrefix(key, "p."):
			return true
		}
		return strings.HasPrefix(key, "q.") && (strings.HasSuffix(key, ".lag-q") || strings.HasSuffix(key, ".lag-home") || strings.HasSuffix(key, ".lag-tq"))
	})
	r3, err := mapping.Open(cfgs[2])
	mapping.DropAtStartForTest("", nil)
	if err != nil {
		t.Fatal(err)
	}
	rs[2] = r3 // closed by openClusterConfigs' cleanup

	for i, r := range []*mapping.Router{rs[0], r3} {
		if u, err := r.User("guest"); err != nil || !u.HasTag("monitoring") || u.HasTag("administrator") {
			t.Errorf("node %d after n3's restart: guest = %+v %v, want the tags set before", 2*i+1, u, err)
		}
	}
	vh, err := r3.VHost("/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range vh.Bindings() {
		if b.Source == "lag-x" {
			got = append(got, b.Destination+":"+b.RoutingKey)
		}
	}
	wantStrings(t, "n3's bindings of lag-x right after Open", got, []string{"lag-q:k"})
	if st, err := vh.Queue("lag-home"); err != nil || st.Messages() != 2 {
		t.Errorf("n3: its own queue missed by the listing: %+v %v, want 2 messages", st, err)
	}
	c3 = connect(t, r3)
	if o := c3.ch.Publish(&mapping.Message{Exchange: "lag-x", RoutingKey: "k", Body: []byte("m")}, nil); o.Refused != mapping.NotRefused || !o.Routed {
		t.Errorf("n3: publish through the binding: %+v", o)
	}
	// Forwarded to n1 (the home) without a confirm: counted there soon.
	eventually(t, 5*time.Second, func() bool {
		info, err := c1.ch.DeclareQueue(mapping.QueueSpec{Name: "lag-q"}, true)
		return err == nil && info.Messages == 1
	})
	// (A listing may read a replica that has not applied the deletes.)
	var left []string
	leftGone := func() bool {
		left = left[:0]
		for _, prefix := range []string{"q.", "b."} {
			recs, err := mapping.MetaRecordsForTest(r3, prefix)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range recs {
				if strings.Contains(k, "lag-tq") || bindingTo(map[string]string{k: v}, "lag-tq") {
					left = append(left, k+" "+v)
				}
			}
		}
		return len(left) == 0
	}
	for deadline := time.Now().Add(5 * time.Second); !leftGone(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("n3's leftover transient queue still has records: %v", left)
			break
		}
	}
	// And a client of n1 gets them from n3, redelivered (a restart).
	c1.consume(t, "lag-home", "h", true)
	ds := c1.sink.waitLen(t, 2)
	wantStrings(t, "lag-home from n1", bodies(ds), []string{"h1", "h2"})
	if !ds[0].Redelivered {
		t.Errorf("after n3's restart: %+v, want redelivered", ds[0])
	}
}

// bindingTo reports whether one of recs (binding records) binds queue.
func bindingTo(recs map[string]string, queue string) bool {
	for _, v := range recs {
		if strings.Contains(v, `"`+queue+`"`) {
			return true
		}
	}
	return false
}
