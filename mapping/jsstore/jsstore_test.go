package jsstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func openT(t testing.TB) *Store {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// appendSync appends and waits for the result.
func appendSync(t testing.TB, s *Store, name string, rec []byte) uint64 {
	t.Helper()
	type res struct {
		seq uint64
		err error
	}
	ch := make(chan res, 1)
	s.Append(name, rec, func(seq uint64, err error) { ch <- res{seq, err} })
	r := <-ch
	if r.err != nil {
		t.Fatalf("Append %s: %v", name, r.err)
	}
	return r.seq
}

func replayAll(t testing.TB, s *Store, name string) (seqs []uint64, recs [][]byte) {
	t.Helper()
	err := s.Replay(name, func(seq uint64, rec []byte) error {
		seqs = append(seqs, seq)
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay %s: %v", name, err)
	}
	return
}

func TestMeta(t *testing.T) {
	s := openT(t)
	for i := range 3000 {
		if err := s.MetaPut(fmt.Sprintf("q.v%d.queue-%d", i%3, i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MetaPut("x.other", []byte("o")); err != nil {
		t.Fatal(err)
	}
	if err := s.MetaPut("q.v0.queue-0", []byte("new")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	all, err := s.MetaList("q.")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MetaList of %d keys: %v", len(all), time.Since(start))
	if len(all) != 3000 || string(all["q.v0.queue-0"]) != "new" || string(all["q.v2.queue-2999"]) != "2999" {
		t.Fatalf("MetaList(q.) = %d keys, q.v0.queue-0=%q", len(all), all["q.v0.queue-0"])
	}
	v1, err := s.MetaList("q.v1.")
	if err != nil || len(v1) != 1000 {
		t.Fatalf("MetaList(q.v1.) = %d, %v", len(v1), err)
	}
	// Prefix ending mid-token.
	part, err := s.MetaList("q.v1.queue-99")
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 3 { // queue-991, -994, -997
		keys := make([]string, 0, len(part))
		for k := range part {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("MetaList(q.v1.queue-99) = %v", keys)
	}
	if err := s.MetaDelete("q.v0.queue-0"); err != nil {
		t.Fatal(err)
	}
	if err := s.MetaDelete("does.not.exist"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	all, _ = s.MetaList("")
	if _, ok := all["q.v0.queue-0"]; ok || len(all) != 3000 {
		t.Fatalf("after delete: %d keys, deleted present=%v", len(all), ok)
	}
	if none, err := s.MetaList("zzz."); err != nil || len(none) != 0 {
		t.Fatalf("MetaList(zzz.) = %v, %v", none, err)
	}
}

func TestAppendOrderAndState(t *testing.T) {
	s := openT(t)
	if err := s.CreateLog("q1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLog("q1"); err != nil {
		t.Fatalf("CreateLog idempotent: %v", err)
	}
	const n = 20000
	var mu sync.Mutex
	var got []uint64
	for i := range n {
		rec := fmt.Appendf(nil, "rec-%d", i)
		s.Append("q1", rec, func(seq uint64, err error) {
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			mu.Lock()
			got = append(got, seq)
			mu.Unlock()
		})
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != n {
		t.Fatalf("callbacks after Flush: %d, want %d", len(got), n)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("callback %d has seq %d", i, seq)
		}
	}
	mu.Unlock()

	first, last, count, err := s.LogState("q1")
	if err != nil || first != 1 || last != n || count != n {
		t.Fatalf("LogState = %d %d %d %v", first, last, count, err)
	}
	if err := s.PurgeBelow("q1", 101); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{150, 151, 5000, n} {
		if err := s.DeleteSeq("q1", seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSeq("q1", 150); err != nil {
		t.Fatalf("DeleteSeq of deleted seq: %v", err)
	}
	if err := s.DeleteSeq("q1", 50); err != nil {
		t.Fatalf("DeleteSeq of purged seq: %v", err)
	}
	if err := s.DeleteSeq("q1", n+100); err != nil {
		t.Fatalf("DeleteSeq beyond last: %v", err)
	}
	first, last, count, err = s.LogState("q1")
	if err != nil || first != 101 || last != n || count != n-100-4 {
		t.Fatalf("LogState after purge = %d %d %d %v", first, last, count, err)
	}
	seqs, recs := replayAll(t, s, "q1")
	if len(seqs) != n-104 {
		t.Fatalf("replayed %d", len(seqs))
	}
	want := uint64(101)
	for i, seq := range seqs {
		for want == 150 || want == 151 || want == 5000 {
			want++
		}
		if seq != want || string(recs[i]) != fmt.Sprintf("rec-%d", seq-1) {
			t.Fatalf("replay[%d] = %d %q, want %d", i, seq, recs[i], want)
		}
		want++
	}
	// Purge everything; the sequence continues.
	if err := s.PurgeAll("q1"); err != nil {
		t.Fatal(err)
	}
	if _, _, count, _ := s.LogState("q1"); count != 0 {
		t.Fatalf("count after PurgeAll = %d", count)
	}
	if seqs, _ := replayAll(t, s, "q1"); len(seqs) != 0 {
		t.Fatalf("replay after purge: %d", len(seqs))
	}
	if seq := appendSync(t, s, "q1", []byte("after")); seq != n+1 {
		t.Fatalf("seq after PurgeAll = %d", seq)
	}

	// Missing logs.
	if _, _, _, err := s.LogState("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LogState missing: %v", err)
	}
	if err := s.Replay("nope", func(uint64, []byte) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replay missing: %v", err)
	}
	if err := s.DeleteLog("nope"); err != nil {
		t.Fatalf("DeleteLog missing: %v", err)
	}
	ch := make(chan error, 1)
	s.Append("nope", []byte("x"), func(_ uint64, err error) { ch <- err })
	if err := <-ch; err == nil {
		t.Fatal("Append to missing log succeeded")
	}
	s.Append("bad.*", []byte("x"), func(_ uint64, err error) { ch <- err })
	if err := <-ch; err == nil {
		t.Fatal("Append to a bad name succeeded")
	}
	if err := s.CreateLog("bad.name"); err == nil {
		t.Fatal("CreateLog accepted a bad name")
	}
}

func TestReplayStopsOnError(t *testing.T) {
	s := openT(t)
	_ = s.CreateLog("a")
	for range 10 {
		appendSync(t, s, "a", []byte("x"))
	}
	boom := errors.New("boom")
	n := 0
	err := s.Replay("a", func(uint64, []byte) error {
		n++
		if n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("err=%v n=%d", err, n)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.MetaPut("q.v.a", []byte("meta-a")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "gone"} {
		if err := s.CreateLog(name); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		s.Append("a", fmt.Appendf(nil, "a%d", i), func(_ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	appendSync(t, s, "b", []byte("b0"))
	if err := s.DeleteLog("gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.PurgeBelow("a", 11); err != nil {
		t.Fatal(err)
	}
	// Close flushes pending appends itself.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	start := time.Now()
	s = open(t, dir)
	t.Logf("reopen took %v", time.Since(start))
	defer s.Close()
	m, err := s.MetaList("q.")
	if err != nil || string(m["q.v.a"]) != "meta-a" {
		t.Fatalf("meta after reopen: %v %v", m, err)
	}
	logs, err := s.Logs()
	sort.Strings(logs)
	if err != nil || fmt.Sprint(logs) != "[a b]" {
		t.Fatalf("Logs = %v %v", logs, err)
	}
	seqs, recs := replayAll(t, s, "a")
	if len(seqs) != 990 || seqs[0] != 11 || string(recs[0]) != "a10" || string(recs[989]) != "a999" {
		t.Fatalf("replay a after reopen: %d records", len(seqs))
	}
	if seq := appendSync(t, s, "a", []byte("more")); seq != 1001 {
		t.Fatalf("seq after reopen %d", seq)
	}
}

func TestLargeRecord(t *testing.T) {
	s := openT(t)
	_ = s.CreateLog("big")
	rec := bytes.Repeat([]byte("0123456789abcdef"), (16<<20+1024)/16)
	rec[len(rec)-1] = 'Z'
	seq := appendSync(t, s, "big", rec)
	appendSync(t, s, "big", []byte("small"))
	seqs, recs := replayAll(t, s, "big")
	if len(seqs) != 2 || seqs[0] != seq || !bytes.Equal(recs[0], rec) || string(recs[1]) != "small" {
		t.Fatalf("replay big: %d records", len(seqs))
	}
}

func TestAppendAfterClose(t *testing.T) {
	s := open(t, t.TempDir())
	_ = s.CreateLog("a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	s.Append("a", []byte("x"), func(_ uint64, err error) { ch <- err })
	select {
	case err := <-ch:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback")
	}
	if err := s.MetaPut("k", nil); err == nil {
		t.Fatal("MetaPut after Close succeeded")
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after close: %v", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	s := openT(t)
	const logs, per = 4, 5000
	var wg sync.WaitGroup
	for l := range logs {
		name := fmt.Sprintf("log%d", l)
		if err := s.CreateLog(name); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			var mu sync.Mutex
			for i := range per {
				s.Append(name, fmt.Appendf(nil, "%s-%d", name, i), func(seq uint64, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil || seq != last+1 {
						t.Errorf("%s append %d: seq %d after %d, err %v", name, i, seq, last, err)
					}
					last = seq
				})
			}
		}()
	}
	wg.Wait()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for l := range logs {
		name := fmt.Sprintf("log%d", l)
		seqs, recs := replayAll(t, s, name)
		if len(seqs) != per {
			t.Fatalf("%s: %d records", name, len(seqs))
		}
		for i := range seqs {
			if string(recs[i]) != fmt.Sprintf("%s-%d", name, i) {
				t.Fatalf("%s[%d] = %q", name, i, recs[i])
			}
		}
	}
}

func TestParsePubAck(t *testing.T) {
	// Covered through the live tests; this checks the cheap parser directly.
	for in, want := range map[string]uint64{
		`{"stream":"WL_q","seq":42}`:                 42,
		`{"stream":"WL_seq","domain":"d","seq":7}`:   7,
		`{"stream":"WL_q","seq":9,"duplicate":true}`: 9,
	} {
		got, err := parsePubAck(&nats.Msg{Data: []byte(in)})
		if err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	if _, err := parsePubAck(&nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"no space"}}`)}); err == nil {
		t.Error("error ack parsed as success")
	}
}

// TestSyncAlwaysGroupCommit: with SyncAlways, callbacks still come in order
// with increasing sequences, records survive a reopen, and many records
// share one fsync round.
func TestSyncAlwaysGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLog("g"); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var mu sync.Mutex
	var seqs []uint64
	for i := range n {
		s.Append("g", []byte(fmt.Sprint(i)), func(seq uint64, err error) {
			if err != nil {
				t.Errorf("append: %v", err)
			}
			mu.Lock()
			seqs = append(seqs, seq)
			mu.Unlock()
		})
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("callback %d has seq %d", i, seq)
		}
	}
	rounds := s.appender.group.batches.Load()
	if rounds >= n {
		t.Errorf("%d fsync rounds for %d records: no grouping", rounds, n)
	}
	t.Logf("%d records in %d fsync rounds", n, rounds)
	if err := s.MetaPut("k.x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, last, count, err := s2.LogState("g")
	if err != nil || last != n || count != n {
		t.Fatalf("after reopen: last %d count %d err %v, want %d", last, count, err, n)
	}
}
