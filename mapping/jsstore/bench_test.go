package jsstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func benchAppend(b *testing.B, sync bool) {
	s, err := Open(Config{Dir: b.TempDir(), SyncAlways: sync, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateLog("bench"); err != nil {
		b.Fatal(err)
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
	for range b.N {
		s.Append("bench", rec, cb)
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

func BenchmarkAppend1K(b *testing.B)           { benchAppend(b, false) }
func BenchmarkAppend1KSyncAlways(b *testing.B) { benchAppend(b, true) }

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
