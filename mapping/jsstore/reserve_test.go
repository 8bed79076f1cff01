package jsstore

import (
	"errors"
	"sync"
	"testing"
)

// TestReservedAppendUnderCallersLock is the pattern the core uses: room
// is reserved with no lock held, the append is made under the caller's
// lock, and the callbacks take that same lock. Three writers push more
// than the in-flight budget through one log; with an append that waited
// for room under the lock (the stall of issue 12) this never finished.
func TestReservedAppendUnderCallersLock(t *testing.T) {
	s := openT(t)
	if err := s.CreateLog("big"); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 4<<20)
	const writers, each = 3, 8 // 96 MiB: past the 64 MiB budget
	var (
		mu       sync.Mutex // the caller's lock (a queue's)
		appended []uint64
		failed   []error
		wg       sync.WaitGroup
	)
	wg.Add(writers * each)
	for range writers {
		go func() {
			for range each {
				r, err := s.Reserve(len(rec))
				if err != nil {
					t.Error(err)
					wg.Done()
					continue
				}
				mu.Lock()
				r.Append("big", rec, func(seq uint64, err error) {
					mu.Lock()
					if err != nil {
						failed = append(failed, err)
					} else {
						appended = append(appended, seq)
					}
					mu.Unlock()
					wg.Done()
				})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 || len(appended) != writers*each {
		t.Fatalf("%d appended, errors %v", len(appended), failed)
	}
	for i := 1; i < len(appended); i++ {
		if appended[i] <= appended[i-1] {
			t.Fatalf("callbacks out of order: %v", appended)
		}
	}
}

// TestReserveReleaseAndClose: released room is usable again, and
// Reserve fails once the store is closed.
func TestReserveReleaseAndClose(t *testing.T) {
	s := open(t, t.TempDir())
	r, err := s.Reserve(maxPendingBytes)
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	r, err = s.Reserve(maxPendingBytes) // waits for ever if Release lost the room
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reserve after Close: %v, want ErrClosed", err)
	}
}
