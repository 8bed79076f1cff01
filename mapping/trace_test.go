package mapping_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// TestTraceRouteMatchesPublish builds random topologies (direct, fanout,
// topic and headers exchanges, exchange-to-exchange bindings, alternate
// exchanges, cycles) and checks, for random messages (keys, headers, CC
// and BCC), that the dry run names exactly the queues a real publish
// reaches, each reached once.
func TestTraceRouteMatchesPublish(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	rng := rand.New(rand.NewPCG(11, 4))
	words := []string{"a", "b", "c", "d"}
	key := func() string {
		n := 1 + rng.IntN(3)
		k := words[rng.IntN(len(words))]
		for range n - 1 {
			k += "." + words[rng.IntN(len(words))]
		}
		return k
	}
	pattern := func() string {
		parts := []string{"a", "b", "*", "#"}
		n := 1 + rng.IntN(3)
		k := parts[rng.IntN(len(parts))]
		for range n - 1 {
			k += "." + parts[rng.IntN(len(parts))]
		}
		return k
	}
	headers := func() mapping.Table {
		h := mapping.Table{}
		for _, w := range words[:2] {
			if rng.IntN(2) == 0 {
				h["h"+w] = words[rng.IntN(len(words))]
			}
		}
		return h
	}
	routed, unrouted := 0, 0
	for round := range 8 {
		var xs, qs []string
		for i := range 6 {
			name := fmt.Sprintf("r%d-x%d", round, i)
			typ := []string{mapping.TypeDirect, mapping.TypeFanout, mapping.TypeTopic, mapping.TypeHeaders}[rng.IntN(4)]
			var args mapping.Table
			if i > 0 && rng.IntN(3) == 0 {
				args = mapping.Table{"alternate-exchange": xs[rng.IntN(len(xs))]}
			}
			if err := c.ch.DeclareExchange(mapping.ExchangeSpec{Name: name, Type: typ, Args: args}, false); err != nil {
				t.Fatal(err)
			}
			xs = append(xs, name)
		}
		for i := range 8 {
			name := fmt.Sprintf("r%d-q%d", round, i)
			if _, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: name}, false); err != nil {
				t.Fatal(err)
			}
			qs = append(qs, name)
		}
		bindArgs := func() mapping.Table {
			a := headers()
			a["x-match"] = []string{"all", "any"}[rng.IntN(2)]
			return a
		}
		for range 20 {
			src := xs[rng.IntN(len(xs))]
			k := key()
			if rng.IntN(2) == 0 {
				k = pattern()
			}
			if rng.IntN(3) == 0 {
				if err := c.ch.BindExchange(xs[rng.IntN(len(xs))], src, k, bindArgs()); err != nil {
					t.Fatal(err)
				}
			} else if err := c.ch.BindQueue(qs[rng.IntN(len(qs))], src, k, bindArgs()); err != nil {
				t.Fatal(err)
			}
		}
		for range 40 {
			x := append(xs, "")[rng.IntN(len(xs)+1)]
			k := key()
			if x == "" && rng.IntN(2) == 0 {
				k = qs[rng.IntN(len(qs))]
			}
			h := headers()
			if rng.IntN(4) == 0 {
				h["CC"] = []any{key()}
			}
			if rng.IntN(4) == 0 {
				h["BCC"] = []any{qs[rng.IntN(len(qs))], key()}
			}
			tr, err := c.ch.TraceRoute(x, k, h)
			if err != nil {
				t.Fatal(err)
			}
			out := c.ch.Publish(&mapping.Message{Exchange: x, RoutingKey: k, Properties: mapping.Properties{Headers: h}, Body: []byte("m")}, nil)
			if err := out.Err(); err != nil {
				t.Fatal(err)
			}
			if out.Routed {
				routed++
			} else {
				unrouted++
			}
			if out.Routed != (len(tr.Queues) > 0) {
				t.Fatalf("%q %q %v: publish routed=%v, trace %v", x, k, h, out.Routed, tr.Queues)
			}
			var reached []string
			for _, q := range qs {
				for {
					_, _, ok, err := c.ch.Get(q, true)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					reached = append(reached, q)
				}
			}
			want := slices.Clone(tr.Queues)
			slices.Sort(want)
			if !slices.Equal(reached, want) {
				t.Fatalf("exchange %q key %q headers %v: publish reached %v, the dry run says %v (hops %+v)", x, k, h, reached, want, tr.Hops)
			}
		}
	}
	// Both outcomes must be exercised, or the comparison proves little.
	if routed < 20 || unrouted < 20 {
		t.Fatalf("random topologies routed %d and dropped %d of the messages", routed, unrouted)
	}
}
