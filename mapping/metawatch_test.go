package mapping_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestMetaLookupMissWaitsForTheWatcher: n2's and n3's watchers are slowed
// down (100 ms per change), so they are still applying n1's changes when
// n1 has answered; a lookup that misses on n2 or n3 waits for them (the
// barrier) and finds what n1 made: user, vhost access, exchange, durable
// and transient queues, bindings (a publish is routed). And an update
// made on n2 before n2 has applied n1's newer change of the same user
// does not undo it (compare-and-set on the revision n2 applied).
func TestMetaLookupMissWaitsForTheWatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	rs := openClusterRouters(t, 3)
	for _, r := range rs[1:] {
		mapping.SetMetaApplyDelay(r, 100*time.Millisecond)
	}
	c1 := connect(t, rs[0])
	c1.declareExchange(t, mapping.ExchangeSpec{Name: "mx", Type: mapping.TypeDirect, Durable: true})
	c1.declareQueue(t, mapping.QueueSpec{Name: "mq", Durable: true})
	c1.declareQueue(t, mapping.QueueSpec{Name: "mtq"})
	c1.bind(t, "mtq", "mx", "t")
	if err := rs[0].PutVHost("mv", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := rs[0].PutUser("mu", "pw", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := rs[0].SetPermissions(mapping.Permission{User: "mu", VHost: "mv", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs[1:] {
		node := fmt.Sprintf("n%d", i+2)
		if _, err := r.Authenticate("mu", "pw", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Errorf("%s: Authenticate: %v", node, err)
		}
		if err := r.CheckVHostAccess("mu", "mv"); err != nil {
			t.Errorf("%s: CheckVHostAccess: %v", node, err)
		}
		c := connect(t, r)
		if err := c.ch.DeclareExchange(mapping.ExchangeSpec{Name: "mx"}, true); err != nil {
			t.Errorf("%s: passive exchange declare: %v", node, err)
		}
		for _, q := range []string{"mq", "mtq"} {
			if _, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: q}, true); err != nil {
				t.Errorf("%s: passive declare of %s: %v", node, q, err)
			}
		}
	}
	// A binding made on n1 while n3 has the exchange already: a publish
	// on n3 that finds no queue looks again after the barrier (n3 had
	// none within the last 50 ms) and is routed.
	c1.declareExchange(t, mapping.ExchangeSpec{Name: "mx2", Type: mapping.TypeFanout})
	c3 := connect(t, rs[2])
	if err := c3.ch.DeclareExchange(mapping.ExchangeSpec{Name: "mx2"}, true); err != nil {
		t.Fatalf("n3: passive declare of mx2: %v", err)
	}
	time.Sleep(60 * time.Millisecond)
	c1.bind(t, "mtq", "mx2", "")
	if o := c3.ch.Publish(&mapping.Message{Exchange: "mx2", Body: []byte("x")}, nil); o.Refused != mapping.NotRefused || !o.Routed {
		t.Errorf("n3: publish through n1's new binding: %+v", o)
	}

	// n1 changes mu's password; n2, still applying, sets mu's tags.
	if err := rs[0].ChangePassword("mu", "pw2"); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].SetUserTags("mu", []string{"monitoring"}); err != nil {
		t.Fatalf("n2: SetUserTags: %v", err)
	}
	for i, r := range rs {
		u, err := r.User("mu")
		for deadline := time.Now().Add(5 * time.Second); err == nil && !u.HasTag("monitoring") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			u, err = r.User("mu")
		}
		if err != nil || !u.HasTag("monitoring") {
			t.Errorf("n%d: mu = %+v %v, want the tag set on n2", i+1, u, err)
		}
		if _, err := r.Authenticate("mu", "pw2", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Errorf("n%d: the password changed on n1 was lost: %v", i+1, err)
		}
	}
}
