package mapping_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// openWithPaging opens a router on dir with the given paging sizes.
func openWithPaging(t *testing.T, dir string, pc mapping.PagingConfig) *mapping.Router {
	t.Helper()
	r, err := mapping.Open(mapping.Config{DataDir: dir, Logger: quietLogger(), Paging: pc})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// modelSide is one broker of the model test: the paged one, or the
// reference whose window never fills.
type modelSide struct {
	name   string
	dir    string
	pc     mapping.PagingConfig
	r      *mapping.Router
	c      *client
	seen   int      // deliveries of c.sink already looked at
	events []string // what this side's client observed, in order
}

func (s *modelSide) open(t *testing.T) {
	s.r = openWithPaging(t, s.dir, s.pc)
	s.c = connect(t, s.r)
	s.seen = 0
}

func (s *modelSide) restart(t *testing.T) {
	s.c.conn.Close()
	if err := s.r.Close(); err != nil {
		t.Fatalf("%s: Close: %v", s.name, err)
	}
	s.open(t)
}

// modelQueue is the queue shape of one model run.
type modelQueue struct {
	durable  bool
	maxLen   int32 // 0: none
	overflow string
	dlx      bool
	limit    int32 // x-delivery-limit, 0: none
}

func (mq modelQueue) declare(t *testing.T, c *client) {
	args := mapping.Table{}
	if mq.maxLen > 0 {
		args["x-max-length"] = mq.maxLen
		args["x-overflow"] = mq.overflow
	}
	if mq.dlx {
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = "dlq"
	}
	if mq.limit > 0 {
		args["x-delivery-limit"] = mq.limit
	}
	c.declareQueue(t, mapping.QueueSpec{Name: "dlq", Durable: mq.durable})
	c.declareQueue(t, mapping.QueueSpec{Name: "pq", Durable: mq.durable, Args: args})
}

// TestPagedQueueMatchesUnpagedModel runs random sequences of publish,
// consume, get, ack, nack, reject, requeue, recover, purge, TTL,
// max-length and restart on a queue whose window holds 3 messages, and the
// same sequence on a reference whose window never fills; after every step
// both clients must have seen the same deliveries (body, redelivered,
// tag), the same basic.get answers and counts, and at the end the same
// dead letters.
func TestPagedQueueMatchesUnpagedModel(t *testing.T) {
	shapes := []modelQueue{
		{durable: true},
		{durable: false},
		{durable: true, maxLen: 12, overflow: "drop-head", dlx: true},
		{durable: false, maxLen: 9, overflow: "drop-head", dlx: true},
		{durable: true, maxLen: 10, overflow: "reject-publish"},
		{durable: true, maxLen: 10, overflow: "reject-publish-dlx", dlx: true},
		{durable: true, dlx: true, limit: 2},
	}
	steps := 300
	if testing.Short() {
		steps = 120
	}
	seeds := uint64(2)
	if v := os.Getenv("WARREN_MODEL_SEEDS"); v != "" {
		fmt.Sscan(v, &seeds)
	}
	if v := os.Getenv("WARREN_MODEL_STEPS"); v != "" {
		fmt.Sscan(v, &steps)
	}
	for i, shape := range shapes {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("shape%d/seed%d", i, seed), func(t *testing.T) {
				runModel(t, shape, seed, steps)
			})
		}
	}
}

func runModel(t *testing.T, shape modelQueue, seed uint64, steps int) {
	var trace []string
	var traceMu sync.Mutex
	mapping.TracePaging("pq", func(s string) { traceMu.Lock(); trace = append(trace, s); traceMu.Unlock() })
	paged := &modelSide{name: "paged", dir: t.TempDir(), pc: mapping.PagingConfig{Window: 3, WindowBytes: 1 << 20, ConsumedWindow: 3, ConsumedWindowBytes: 1 << 20}}
	ref := &modelSide{name: "reference", dir: t.TempDir(), pc: mapping.PagingConfig{Window: 1 << 30, WindowBytes: 1 << 40, ConsumedWindow: 1 << 30, ConsumedWindowBytes: 1 << 40, Budget: 1 << 40}}
	sides := []*modelSide{paged, ref}
	for _, s := range sides {
		s.open(t)
		shape.declare(t, s.c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(shape.overflow))+seed*7))
	var (
		outstanding []uint64 // unacked delivery tags, in the reference's order
		consuming   bool
		noAck       bool
		published   int
		log         []string
	)
	// sync waits until the paged side has seen as many deliveries as the
	// reference, then compares what each saw since the last step.
	sync := func(step string) {
		t.Helper()
		want := ref.c.sink.len()
		deadline := time.Now().Add(10 * time.Second)
		for paged.c.sink.len() < want && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		for _, s := range sides {
			ds := s.c.sink.all()
			for _, d := range ds[s.seen:] {
				s.events = append(s.events, fmt.Sprintf("deliver %d %s r=%v", d.Tag, d.Message.Body, d.Redelivered))
				if !noAck && s == ref {
					outstanding = append(outstanding, d.Tag)
				}
			}
			s.seen = len(ds)
		}
		for _, q := range []string{"pq", "dlq"} {
			var counts [2]int
			for i, s := range sides {
				counts[i] = s.c.count(t, q)
			}
			if counts[0] != counts[1] {
				// A dead letter owed by a paged drop lands when its record
				// is read back: give it a moment.
				deadline := time.Now().Add(5 * time.Second)
				for counts[0] != counts[1] && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
					counts[0] = paged.c.count(t, q)
				}
			}
			if counts[0] != counts[1] {
				t.Fatalf("after %s: %s count paged=%d reference=%d\npaged holds %q\nreference holds %q\nsteps:\n%s", step, q, counts[0], counts[1],
					paged.c.drain(t, q), ref.c.drain(t, q), strings.Join(log, "\n"))
			}
		}
		if err := mapping.PagingCheck(paged.r, "/", "pq"); err != nil {
			traceMu.Lock()
			last := strings.Join(trace[max(0, len(trace)-60):], "\n")
			traceMu.Unlock()
			t.Fatalf("after %s: %v\ntrace:\n%s", step, err, last)
		}
		if !slices.Equal(paged.events, ref.events) {
			t.Fatalf("after %s: paged saw\n%s\nreference saw\n%s\nsteps:\n%s", step,
				strings.Join(paged.events, "\n"), strings.Join(ref.events, "\n"), strings.Join(log, "\n"))
		}
	}
	pick := func() (int, bool) {
		if len(outstanding) == 0 {
			return 0, false
		}
		return rng.IntN(len(outstanding)), true
	}
	settle := func(i int, multiple bool) {
		tag := outstanding[i]
		if multiple {
			outstanding = slices.DeleteFunc(outstanding, func(x uint64) bool { return x <= tag })
		} else {
			outstanding = slices.Delete(outstanding, i, i+1)
		}
	}
	for step := 0; step < steps; step++ {
		var what string
		switch op := rng.IntN(100); {
		case op < 40: // publish a burst
			n := 1 + rng.IntN(6)
			for range n {
				published++
				p := mapping.Properties{}
				if rng.IntN(3) > 0 {
					p = persistent
				}
				if rng.IntN(10) == 0 && os.Getenv("WARREN_MODEL_NOTTL") == "" {
					p.Flags |= mapping.FlagExpiration
					p.Expiration = "0"
				}
				body := fmt.Sprintf("m%d", published)
				for _, s := range sides {
					done := make(chan struct{})
					err := s.c.ch.Publish(&mapping.Message{RoutingKey: "pq", Body: []byte(body), Properties: p}, func(mapping.Outcome) { close(done) }).Err()
					if err != nil {
						t.Fatalf("%s: publish %s: %v", s.name, body, err)
					}
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						t.Fatalf("%s: publish %s: no outcome", s.name, body)
					}
				}
			}
			what = fmt.Sprintf("publish %d (to m%d)", n, published)
		case op < 48:
			if consuming {
				for _, s := range sides {
					s.c.ch.Cancel("ctag")
				}
				consuming = false
				what = "cancel"
				break
			}
			noAck = rng.IntN(4) == 0
			prefetch := 1 + rng.IntN(4)
			for _, s := range sides {
				s.c.ch.SetPrefetch(prefetch, false)
				s.c.consume(t, "pq", "ctag", noAck)
			}
			consuming = true
			what = fmt.Sprintf("consume noAck=%v prefetch=%d", noAck, prefetch)
		case op < 62:
			get := rng.IntN(3) == 0
			var res [2]string
			for i, s := range sides {
				d, rem, ok := s.c.get(t, "pq", get)
				res[i] = "get empty"
				if ok {
					res[i] = fmt.Sprintf("get %d %s r=%v rem=%d", d.Tag, d.Message.Body, d.Redelivered, rem)
				}
				if ok && !get && s == ref {
					outstanding = append(outstanding, d.Tag)
				}
				s.events = append(s.events, res[i])
			}
			what = fmt.Sprintf("get noAck=%v", get)
		case op < 78:
			i, ok := pick()
			if !ok {
				continue
			}
			multiple := rng.IntN(3) == 0
			tag := outstanding[i]
			for _, s := range sides {
				if err := s.c.ch.Ack(tag, multiple); err != nil {
					t.Fatalf("%s: ack %d: %v", s.name, tag, err)
				}
			}
			settle(i, multiple)
			what = fmt.Sprintf("ack %d multiple=%v", tag, multiple)
		case op < 90:
			i, ok := pick()
			if !ok {
				continue
			}
			multiple := rng.IntN(4) == 0
			requeue := rng.IntN(3) > 0
			tag := outstanding[i]
			for _, s := range sides {
				if err := s.c.ch.Nack(tag, multiple, requeue); err != nil {
					t.Fatalf("%s: nack %d: %v", s.name, tag, err)
				}
			}
			settle(i, multiple)
			what = fmt.Sprintf("nack %d multiple=%v requeue=%v", tag, multiple, requeue)
		case op < 94:
			for _, s := range sides {
				s.c.ch.Recover()
			}
			outstanding = nil
			what = "recover"
		case op < 96:
			var n [2]int
			for i, s := range sides {
				var err error
				if n[i], err = s.c.ch.PurgeQueue("pq"); err != nil {
					t.Fatal(err)
				}
			}
			if n[0] != n[1] {
				t.Fatalf("purge: paged %d, reference %d", n[0], n[1])
			}
			what = fmt.Sprintf("purge %d", n[1])
		default:
			if !shape.durable {
				continue
			}
			sync("before restart")
			for _, s := range sides {
				s.restart(t)
				shape.declare(t, s.c)
				s.events = append(s.events, "restart")
			}
			outstanding, consuming = nil, false
			what = "restart"
		}
		log = append(log, what)
		sync(what)
	}
	// The dead letters: the same messages (a paged drop dead-letters
	// when its record is read back, so the order may differ).
	var dead [2][]string
	for i, s := range sides {
		if consuming {
			s.c.ch.Cancel("ctag")
		}
		dead[i] = s.c.drain(t, "dlq")
		slices.Sort(dead[i])
	}
	if !slices.Equal(dead[0], dead[1]) {
		t.Fatalf("dead letters: paged %q, reference %q", dead[0], dead[1])
	}
}

// TestPagedBacklogSurvivesRestart: a queue with far more messages than its
// window restarts with only the window in memory and serves the whole
// backlog in order, transient messages gone.
func TestPagedBacklogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	pc := mapping.PagingConfig{Window: 16}
	r := openWithPaging(t, dir, pc)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "big", Durable: true})
	var want []string
	for i := range 500 {
		body := fmt.Sprintf("b%03d", i)
		p := persistent
		if i%5 == 4 {
			p = mapping.Properties{}
		} else {
			want = append(want, body)
		}
		if !c.publishConfirmed(t, "", "big", body, p) {
			t.Fatalf("publish %s refused", body)
		}
	}
	if got := c.count(t, "big"); got != 500 {
		t.Fatalf("count before restart %d, want 500", got)
	}
	c.conn.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openWithPaging(t, dir, pc)
	c = connect(t, r)
	if got := c.count(t, "big"); got != len(want) {
		t.Fatalf("count after restart %d, want %d", got, len(want))
	}
	var got []string
	for {
		d, _, ok := c.get(t, "big", true)
		if !ok {
			break
		}
		if !d.Redelivered {
			t.Fatalf("recovered %s not marked redelivered", d.Message.Body)
		}
		got = append(got, string(d.Message.Body))
	}
	wantStrings(t, "drained after restart", got, want)
}

// TestPagingBudgetAcrossQueues: past the global budget every queue that
// has a message in memory pages new ones, so the bodies in memory stay
// near the budget however many queues fill up; every message is still
// delivered, in order.
func TestPagingBudgetAcrossQueues(t *testing.T) {
	const (
		queues = 8
		each   = 200
		size   = 1000
	)
	budget := int64(20 * size) // 20 bodies over all queues
	r := openWithPaging(t, t.TempDir(), mapping.PagingConfig{Window: 1000, WindowBytes: 1 << 20, Budget: budget})
	c := connect(t, r)
	body := strings.Repeat("x", size)
	for i := range queues {
		c.declareQueue(t, mapping.QueueSpec{Name: fmt.Sprintf("bq%d", i), Durable: i%2 == 0})
	}
	for n := range each {
		for i := range queues {
			p := mapping.Properties{}
			if n%2 == 0 {
				p = persistent
			}
			if !c.publish(t, "", fmt.Sprintf("bq%d", i), fmt.Sprintf("%07d", n)+body[:size-7], p) {
				t.Fatalf("publish to bq%d refused", i)
			}
		}
	}
	inMemory := 0
	for i := range queues {
		w, paged := mapping.WindowLen(r, "/", fmt.Sprintf("bq%d", i))
		if w+paged != each {
			t.Fatalf("bq%d: %d in memory + %d paged, want %d", i, w, paged, each)
		}
		inMemory += w
	}
	// The budget is checked before each message: each queue may pass it
	// by the one message that found it not yet spent.
	if limit := int(budget)/size + queues; inMemory > limit {
		t.Fatalf("%d messages in memory over %d queues, want at most %d (budget %d bytes)", inMemory, queues, limit, budget)
	}
	for i := range queues {
		got := c.drain(t, fmt.Sprintf("bq%d", i))
		if len(got) != each {
			t.Fatalf("bq%d: drained %d, want %d", i, len(got), each)
		}
		for n, b := range got {
			if want := fmt.Sprintf("%07d", n); b[:7] != want {
				t.Fatalf("bq%d: message %d is %q, want %s…", i, n, b[:7], want)
			}
		}
	}
}
