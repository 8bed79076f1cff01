package jsstore

import (
	"fmt"
	"testing"
	"time"
)

func appendTransientSync(t testing.TB, s *Store, name string, rec []byte) uint64 {
	t.Helper()
	r, err := s.Reserve(len(rec))
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		seq uint64
		err error
	}
	ch := make(chan res, 1)
	r.AppendTransient(name, rec, func(seq uint64, err error) { ch <- res{seq, err} })
	got := <-ch
	if got.err != nil {
		t.Fatalf("AppendTransient: %v", got.err)
	}
	return got.seq
}

// TestReadBatchPagesInOrder: records come back in sequence order from
// any start, in batches no larger than asked, deleted records skipped,
// transient ones flagged; PurgeTransient drops only those.
func TestReadBatchPagesInOrder(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			s, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), SyncAlways: sync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateLog("pg"); err != nil {
				t.Fatal(err)
			}
			var want []Record
			for i := range 50 {
				rec := []byte(fmt.Sprintf("rec-%02d", i))
				var seq uint64
				if i%3 == 1 {
					seq = appendTransientSync(t, s, "pg", rec)
				} else {
					seq = appendSync(t, s, "pg", rec)
				}
				want = append(want, Record{Seq: seq, Transient: i%3 == 1, Data: rec})
			}
			if err := s.DeleteSeq("pg", want[10].Seq); err != nil {
				t.Fatal(err)
			}
			live := append(append([]Record{}, want[:10]...), want[11:]...)

			var got []Record
			from := uint64(1)
			for {
				b, err := s.ReadBatch("pg", from, 7, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > 7 {
					t.Fatalf("batch of %d records, asked for 7", len(b))
				}
				if len(b) == 0 {
					break
				}
				got = append(got, b...)
				from = b[len(b)-1].Seq + 1
			}
			if len(got) != len(live) {
				t.Fatalf("read %d records, want %d", len(got), len(live))
			}
			for i := range live {
				if got[i].Seq != live[i].Seq || got[i].Transient != live[i].Transient || string(got[i].Data) != string(live[i].Data) {
					t.Fatalf("record %d: got %+v want %+v", i, got[i], live[i])
				}
			}
			// A byte limit below one record still returns one.
			b, err := s.ReadBatch("pg", 1, 100, 1)
			if err != nil || len(b) != 1 || b[0].Seq != live[0].Seq {
				t.Fatalf("ReadBatch with max_bytes 1: %v %+v", err, b)
			}
			// Beyond the end: nothing.
			b, err = s.ReadBatch("pg", want[len(want)-1].Seq+1, 10, 1<<20)
			if err != nil || len(b) != 0 {
				t.Fatalf("ReadBatch past the end: %v %+v", err, b)
			}
			b, err = s.ReadSince("pg", time.Now().Add(-time.Hour), 5, 1<<20)
			if err != nil || len(b) != 5 || b[0].Seq != live[0].Seq {
				t.Fatalf("ReadSince: %v %+v", err, b)
			}

			if err := s.PurgeTransient("pg"); err != nil {
				t.Fatal(err)
			}
			_, _, count, err := s.LogState("pg")
			if err != nil {
				t.Fatal(err)
			}
			persistent := 0
			for _, r := range live {
				if !r.Transient {
					persistent++
				}
			}
			if int(count) != persistent {
				t.Fatalf("after PurgeTransient %d records, want %d", count, persistent)
			}
			b, err = s.ReadBatch("pg", 1, 100, 1<<20)
			if err != nil || len(b) != persistent {
				t.Fatalf("ReadBatch after purge: %v, %d records", err, len(b))
			}
			for _, r := range b {
				if r.Transient {
					t.Fatalf("transient record %d survived PurgeTransient", r.Seq)
				}
			}
		})
	}
}

// TestReadBatchMissingLog: reading a log that does not exist is an error,
// not an empty page (the caller would think the queue is empty).
func TestReadBatchMissingLog(t *testing.T) {
	s := openT(t)
	if _, err := s.ReadBatch("nope", 1, 10, 1<<20); err == nil {
		t.Fatal("ReadBatch of a missing log succeeded")
	}
}

// TestCountFrom: the count of records from a sequence on skips deleted
// ones, and is 0 past the end.
func TestCountFrom(t *testing.T) {
	s := openT(t)
	if err := s.CreateLog("cf"); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 20 {
		seqs = append(seqs, appendSync(t, s, "cf", []byte{byte(i)}))
	}
	if err := s.DeleteSeq("cf", seqs[5]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from uint64
		want uint64
	}{{seqs[0], 19}, {seqs[5], 14}, {seqs[6], 14}, {seqs[19], 1}, {seqs[19] + 1, 0}} {
		got, err := s.CountFrom("cf", c.from)
		if err != nil || got != c.want {
			t.Fatalf("CountFrom(%d) = %d, %v; want %d", c.from, got, err, c.want)
		}
	}
}

// TestReserveTransientBudget: transient reservations share a smaller
// budget than the store's, so a second one waits for the first while an
// ordinary reservation of the same size does not.
func TestReserveTransientBudget(t *testing.T) {
	s := openT(t)
	first, err := s.ReserveTransient(maxTransientBytes - 1024)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Reservation, 1)
	go func() {
		r, err := s.ReserveTransient(4096)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	plain, err := s.Reserve(4096) // the store's budget has room
	if err != nil {
		t.Fatal(err)
	}
	plain.Release()
	select {
	case r := <-got:
		r.Release()
		t.Fatal("a transient reservation past the transient budget did not wait")
	case <-time.After(200 * time.Millisecond):
	}
	first.Release()
	select {
	case r := <-got:
		r.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting transient reservation was not given room after a release")
	}
}
