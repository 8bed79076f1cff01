package jsstore

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func benchAppend(b *testing.B, sync bool, logs int) {
	s, err := Open(Config{Dir: b.TempDir(), SyncAlways: sync, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := make([]string, logs)
	for i := range names {
		names[i] = fmt.Sprint("bench", i)
		if err := s.CreateLog(names[i]); err != nil {
			b.Fatal(err)
		}
	}
	rec := make([]byte, 1024)
	var fails atomic.Int64
	cb := func(_ uint64, err error) {
		if err != nil {
			fails.Add(1)
		}
	}
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s.Append(names[i%logs], rec, cb)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	if n := fails.Load(); n > 0 {
		b.Fatalf("%d appends failed", n)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
}

func BenchmarkAppend1K(b *testing.B)                { benchAppend(b, false, 1) }
func BenchmarkAppend1K4Logs(b *testing.B)           { benchAppend(b, false, 4) }
func BenchmarkAppend1KSyncAlways(b *testing.B)      { benchAppend(b, true, 1) }
func BenchmarkAppend1KSyncAlways4Logs(b *testing.B) { benchAppend(b, true, 4) }

func BenchmarkReplay(b *testing.B) {
	for _, n := range []int{100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := Open(Config{Dir: b.TempDir(), Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			_ = s.CreateLog("r")
			rec := make([]byte, 1024)
			for range n {
				s.Append("r", rec, func(uint64, error) {})
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n * len(rec)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				got := 0
				if err := s.Replay("r", func(uint64, []byte) error { got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("replayed %d", got)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}

// TestReplay1M measures the target case (1,000,000 records of 1 KB), the
// reopen time of that store, and replay after reopen. Run with JSSTORE_BIG=1.
func TestReplay1M(t *testing.T) {
	if os.Getenv("JSSTORE_BIG") == "" {
		t.Skip("set JSSTORE_BIG=1")
	}
	const n = 1_000_000
	dir := t.TempDir()
	s := open(t, dir)
	_ = s.CreateLog("big")
	rec := make([]byte, 1024)
	start := time.Now()
	for range n {
		s.Append("big", rec, func(_ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("append %d: %v (%.0f msg/s)", n, time.Since(start), n/time.Since(start).Seconds())
	replay := func() {
		start := time.Now()
		got := 0
		if err := s.Replay("big", func(uint64, []byte) error { got++; return nil }); err != nil || got != n {
			t.Fatalf("replay: %d %v", got, err)
		}
		t.Logf("replay %d: %v (%.0f msg/s)", n, time.Since(start), n/time.Since(start).Seconds())
	}
	replay()
	start = time.Now()
	_ = s.Close()
	t.Logf("close: %v", time.Since(start))
	start = time.Now()
	s = open(t, dir)
	defer s.Close()
	t.Logf("reopen: %v", time.Since(start))
	replay()
}
