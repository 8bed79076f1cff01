package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHistogramExactSmallValues(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 100; v++ {
		h.record(v)
	}
	for _, tc := range []struct {
		q    float64
		want int64
	}{{50, 50}, {90, 90}, {99, 99}, {100, 100}, {0, 1}} {
		if got := h.percentile(tc.q); got != tc.want {
			t.Errorf("p%v = %d, want %d", tc.q, got, tc.want)
		}
	}
	if h.mean() != 50.5 {
		t.Errorf("mean = %v, want 50.5", h.mean())
	}
}

func TestHistogramRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHistogram()
	var vals []int64
	for i := 0; i < 100000; i++ {
		// Log-uniform between 1µs and 10s.
		v := int64(math.Exp(rng.Float64()*math.Log(1e7)) * 1e3)
		vals = append(vals, v)
		h.record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{50, 90, 99, 99.9} {
		rank := int(math.Ceil(q / 100 * float64(len(vals))))
		want := vals[rank-1]
		got := h.percentile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("p%v = %d, want %d (rel err %.4f)", q, got, want, rel)
		}
	}
	if got := h.percentile(100); got != vals[len(vals)-1] {
		t.Errorf("max = %d, want %d", got, vals[len(vals)-1])
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value maps to a bucket whose range contains it, and buckets are
	// monotonic.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64} {
		b := bucketOf(v)
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d,%d]", v, b, lo, hi)
		}
		if b < prev {
			t.Errorf("bucket for %d (%d) < previous %d", v, b, prev)
		}
		prev = b
	}
	h := newHistogram()
	h.record(math.MaxInt64)
	if h.percentile(50) != math.MaxInt64 {
		t.Error("max int64 not recorded")
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	a, b := newHistogram(), newHistogram()
	if a.percentile(99) != 0 || a.mean() != 0 {
		t.Fatal("empty histogram should report 0")
	}
	for i := int64(1); i <= 50; i++ {
		a.record(i)
		b.record(i + 50)
	}
	a.merge(b)
	if a.n != 100 || a.percentile(50) != 50 || a.percentile(100) != 100 || a.min != 1 {
		t.Errorf("merged: n=%d p50=%d max=%d min=%d", a.n, a.percentile(50), a.percentile(100), a.min)
	}
}

func TestSeqSet(t *testing.T) {
	var s seqSet
	if !s.add(1) || !s.add(1000) || s.add(1) {
		t.Fatal("add semantics")
	}
	if !s.has(1000) || s.has(999) || s.has(1<<40) || s.count() != 2 {
		t.Fatal("has/count")
	}
	var o seqSet
	o.add(1)
	o.add(5000)
	if dup := s.unionDup(&o); dup != 1 {
		t.Errorf("dup = %d, want 1", dup)
	}
	if s.count() != 3 || !s.has(5000) {
		t.Errorf("union count = %d", s.count())
	}
	if m := missingRange(5000, &s); m != 4997 {
		t.Errorf("missingRange = %d, want 4997", m)
	}
	if m := missingRange(64, &s); m != 63 {
		t.Errorf("missingRange(64) = %d, want 63", m)
	}
	var e seqSet
	if m := missingRange(10, &e); m != 10 {
		t.Errorf("missingRange on empty = %d", m)
	}
	var exp seqSet
	for i := uint64(1); i <= 10; i++ {
		exp.add(i)
	}
	exp.add(7000)
	if m := missing(&exp, &s); m != 10 {
		t.Errorf("missing = %d, want 10", m)
	}
}

func TestAccountingWithoutConfirms(t *testing.T) {
	// Producer 0 sent 1..100 into the queue; two consumers share it.
	// c1 got 1..60, c2 got 50..90 (50..60 twice) and 70 again itself.
	prods := []producerLog{{sent: 100}, {sent: 10}}
	c1, c2 := newRecvLog(2), newRecvLog(2)
	for s := uint64(1); s <= 60; s++ {
		c1.record(0, s)
	}
	for s := uint64(50); s <= 90; s++ {
		c2.record(0, s)
	}
	if c2.record(0, 70) {
		t.Fatal("second record of the same seq must report a duplicate")
	}
	a := account(prods, []int{0}, []*recvLog{c1, c2})
	if a.received != 90 || a.lost != 10 || a.duplicated != 12 {
		t.Errorf("got %+v, want received=90 lost=10 duplicated=12", a)
	}
}

func TestAccountingWithConfirms(t *testing.T) {
	// Sent 1..10, only 1..8 confirmed (9 nacked, 10 unconfirmed).
	// Received 1..7 and 9: lost is 8 only; 9 received but unconfirmed is fine.
	conf := &seqSet{}
	for s := uint64(1); s <= 8; s++ {
		conf.add(s)
	}
	prods := []producerLog{{sent: 10, confirmed: conf, nacked: 1}}
	c := newRecvLog(1)
	for _, s := range []uint64{1, 2, 3, 4, 5, 6, 7, 9} {
		c.record(0, s)
	}
	a := account(prods, []int{0}, []*recvLog{c})
	if a.lost != 1 || a.received != 8 || a.duplicated != 0 {
		t.Errorf("got %+v, want lost=1 received=8 duplicated=0", a)
	}
}

func TestAccountingFanoutCountsPerQueue(t *testing.T) {
	prods := []producerLog{{sent: 5}}
	q0, q1 := newRecvLog(1), newRecvLog(1)
	for s := uint64(1); s <= 5; s++ {
		q0.record(0, s)
		if s != 3 {
			q1.record(0, s)
		}
	}
	a0 := account(prods, []int{0}, []*recvLog{q0})
	a1 := account(prods, []int{0}, []*recvLog{q1})
	if a0.received+a1.received != 9 || a0.lost+a1.lost != 1 {
		t.Errorf("q0 %+v q1 %+v", a0, a1)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	body := make([]byte, 64)
	encodeHeader(body, 0xdeadbeef, 7, 1<<40+3, 123456789)
	r, p, s, ts, ok := decodeHeader(body)
	if !ok || r != 0xdeadbeef || p != 7 || s != 1<<40+3 || ts != 123456789 {
		t.Errorf("got %x %d %d %d %v", r, p, s, ts, ok)
	}
	if _, _, _, _, ok := decodeHeader(body[:headerLen-1]); ok {
		t.Error("short body must not decode")
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		url: "amqp://guest:guest@localhost:5672/", producers: 1, consumers: 1, queues: 1,
		size: 1024, duration: 10 * time.Second, warmup: 2 * time.Second, confirmWindow: 1000,
		manualAck: true, prefetch: 100, multiAck: 1, rpcReply: rpcReplyDirect, prefix: "warren-bench",
	}
	if c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestParseFlagsValues(t *testing.T) {
	c, err := parseFlags(strings.Fields("--url amqp://x/ --producers 4 --consumers 8 --queues 4 --size 24 "+
		"--duration 3s --warmup 0 --rate 10000 --persistent --confirm --confirm-window 50 "+
		"--manual-ack=false --prefetch 0 --multi-ack 10 --json"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.url != "amqp://x/" || c.producers != 4 || c.consumers != 8 || c.queues != 4 || c.size != 24 ||
		c.duration != 3*time.Second || c.warmup != 0 || c.rate != 10000 || !c.persistent || !c.confirm ||
		c.confirmWindow != 50 || c.manualAck || c.prefetch != 0 || c.multiAck != 10 || !c.json {
		t.Errorf("parsed %+v", c)
	}
	if c.mode() != "queue" {
		t.Errorf("mode %s", c.mode())
	}

	c, err = parseFlags([]string{"--fanout", "10"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.queues != 10 || c.consumers != 10 || c.mode() != "fanout" {
		t.Errorf("fanout: queues=%d consumers=%d mode=%s", c.queues, c.consumers, c.mode())
	}

	c, err = parseFlags([]string{"--rpc", "--producers", "8", "--rpc-reply=queue"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.rpc || c.producers != 8 || c.rpcReply != rpcReplyQueue || c.mode() != "rpc" {
		t.Errorf("rpc: %+v", c)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range []string{
		"--producers 0",
		"--consumers 0",
		"--size 23",
		"--duration 0s",
		"--rate -1",
		"--confirm-window 0",
		"--multi-ack 0",
		"--multi-ack 200 --prefetch 100",
		"--queues 4 --consumers 2",
		"--rpc --fanout 2",
		"--rpc --confirm",
		"--rpc-reply=topic",
		"--prefix amq.x",
		"--no-such-flag",
		"--size abc",
		"extra-arg",
	} {
		if _, err := parseFlags(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q: expected an error", args)
		}
	}
	// multi-ack larger than prefetch is fine with auto-ack or unlimited prefetch.
	for _, args := range []string{"--multi-ack 200 --manual-ack=false", "--multi-ack 200 --prefetch 0"} {
		if _, err := parseFlags(strings.Fields(args), io.Discard); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestRunUsageAndConnectionErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--size", "1"}, &out, &errOut); code != exitFailure {
		t.Errorf("usage error: exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut.String(), "--size") {
		t.Errorf("stderr %q should mention --size", errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"--url", "amqp://guest:guest@127.0.0.1:1/", "--duration", "1s"}, &out, &errOut); code != exitFailure {
		t.Errorf("connection error: exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut.String(), "connect") {
		t.Errorf("stderr %q should mention connect", errOut.String())
	}
	if code := run(context.Background(), []string{"-h"}, &out, io.Discard); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
}

// End-to-end against a real broker: WARREN_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5673/
func TestEndToEnd(t *testing.T) {
	url := os.Getenv("WARREN_TEST_AMQP_URL")
	if url == "" {
		t.Skip("WARREN_TEST_AMQP_URL not set")
	}
	for _, tc := range []struct {
		name string
		args string
	}{
		{"queue-confirm", "--persistent --confirm --rate 2000"},
		{"multi-queue-multi-ack", "--producers 2 --consumers 2 --queues 2 --multi-ack 10 --rate 2000"},
		{"fanout-auto-ack", "--fanout 3 --manual-ack=false --rate 1000"},
		{"rpc-direct", "--rpc --producers 2 --consumers 2"},
		{"rpc-queue", "--rpc --rpc-reply=queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A unique prefix keeps concurrent test runs on one broker apart.
			prefix := fmt.Sprintf("warren-bench-test-%d-%s", os.Getpid(), tc.name)
			args := append([]string{"--url", url, "--duration", "1s", "--warmup", "200ms", "--json", "--prefix", prefix}, strings.Fields(tc.args)...)
			var out, errOut bytes.Buffer
			code := run(context.Background(), args, &out, &errOut)
			if code != exitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
			}
			var res result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("bad JSON %q: %v", out.String(), err)
			}
			if res.Received == 0 || res.Lost != 0 || res.Duplicated != 0 || res.Latency.Samples == 0 {
				t.Errorf("received=%d lost=%d duplicated=%d samples=%d\n%s", res.Received, res.Lost, res.Duplicated, res.Latency.Samples, out.String())
			}
			if strings.Contains(tc.args, "--confirm") && res.Confirmed != res.Sent {
				t.Errorf("confirmed %d of %d", res.Confirmed, res.Sent)
			}
			if strings.Contains(tc.args, "--fanout 3") && res.Received != 3*res.Sent {
				t.Errorf("fanout: received %d, want 3×%d", res.Received, res.Sent)
			}
		})
	}
}
