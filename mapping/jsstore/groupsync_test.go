package jsstore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// syncRecorder collects the paths a syncer fsynced.
type syncRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (r *syncRecorder) record(p string) {
	r.mu.Lock()
	r.paths = append(r.paths, p)
	r.mu.Unlock()
}

// take returns the paths synced since the last call.
func (r *syncRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.paths
	r.paths = nil
	return out
}

// TestBlockFilesSync drives the block tracking on a directory shaped like
// a JetStream stream: each round must fsync the block that receives
// writes, a finished block by name when a new one appears, the directory
// after new blocks, and fall back to reading the directory when the block
// it holds is removed (purge) or the indexes start over (stream deleted
// and created again).
func TestBlockFilesSync(t *testing.T) {
	streamDir := filepath.Join(t.TempDir(), "WL_q")
	dir := filepath.Join(streamDir, "msgs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	blk := func(i int) string { return filepath.Join(dir, fmt.Sprintf("%d.blk", i)) }
	create := func(i int) {
		t.Helper()
		if err := os.WriteFile(blk(i), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rec syncRecorder
	b := &blockFiles{streamDir: streamDir, dir: dir, onSync: rec.record}
	defer b.close()
	round := func(want ...string) {
		t.Helper()
		if err := b.sync(); err != nil {
			t.Fatal(err)
		}
		got := rec.take()
		if !slices.Equal(got, want) {
			t.Fatalf("synced %q, want %q", got, want)
		}
	}

	// Nothing written yet: nothing to sync.
	round()

	// First round: the newest block but one and the newest, the
	// directory and the stream's directories.
	create(1)
	create(2)
	round(blk(1), blk(2), dir, streamDir, filepath.Dir(streamDir))

	// Steady state: only the open block.
	round(blk(2))
	round(blk(2))

	// JetStream moved on to two new blocks since the last round.
	create(3)
	create(4)
	round(blk(2), blk(3), blk(4), dir)
	round(blk(4))

	// A purge removed every block and made a new one.
	for i := 1; i <= 4; i++ {
		os.Remove(blk(i))
	}
	create(5)
	round(blk(5), dir)
	round(blk(5))

	// The stream was deleted and created again: indexes start over.
	os.Remove(blk(5))
	create(1)
	create(2)
	round(blk(1), blk(2), dir)

	// The open block was replaced by another file of the same name.
	os.Remove(blk(2))
	create(2)
	round(blk(1), blk(2), dir)

	// Closed (too many open blocks): reopened by name.
	b.close()
	round(blk(2))
	b.close()
	os.Remove(blk(2))
	create(3)
	round(blk(1), blk(3), dir)
}

// TestSyncAlwaysNewBlocks: records large enough to fill several block
// files are confirmed only after their block (and, for a new block, the
// directory) was fsynced, and survive a reopen.
func TestSyncAlwaysNewBlocks(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var rec syncRecorder
	s.appender.group.onSync = rec.record
	if err := s.CreateLog("big"); err != nil {
		t.Fatal(err)
	}
	msgs := filepath.Join(dir, "jetstream", "$G", "streams", "WL_big", "msgs")
	rec1 := make([]byte, 1<<20)
	const n = 24               // 24 MiB: more than one block
	known := map[string]bool{} // block files seen in the directory
	for i := range n {
		rec1[0] = byte(i)
		seq := appendSync(t, s, "big", rec1)
		if seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, seq)
		}
		// The record is confirmed: a block file that appeared since the
		// last record holds it, so it must have been synced in this
		// round, and the directory after it.
		synced := rec.take()
		ents, err := os.ReadDir(msgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(msgs, e.Name())
			if _, ok := blockIndex(e.Name()); !ok || known[p] {
				continue
			}
			known[p] = true
			at := slices.Index(synced, p)
			if at < 0 {
				t.Fatalf("after record %d: new block %s not synced (synced %q)", i, e.Name(), synced)
			}
			if !slices.Contains(synced[at+1:], msgs) {
				t.Fatalf("after record %d: directory not synced after new block %s (synced %q)", i, e.Name(), synced)
			}
		}
	}
	if len(known) < 2 {
		t.Fatalf("records filled %d block(s); the test wants more than one", len(known))
	}
	t.Logf("%d records filled %d blocks", n, len(known))

	// A whole purge, then appends to a new block.
	if err := s.PurgeAll("big"); err != nil {
		t.Fatal(err)
	}
	rec.take()
	appendSync(t, s, "big", []byte("after purge"))
	synced := rec.take()
	ents, _ := os.ReadDir(msgs)
	for _, e := range ents {
		if _, ok := blockIndex(e.Name()); ok && !slices.Contains(synced, filepath.Join(msgs, e.Name())) {
			t.Fatalf("after purge: block %s not synced (synced %q)", e.Name(), synced)
		}
	}

	// Deleted and created again: block indexes start over at 1.
	if err := s.DeleteLog("big"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLog("big"); err != nil {
		t.Fatal(err)
	}
	appendSync(t, s, "big", []byte("one"))
	appendSync(t, s, "big", []byte("two"))
	if got := rec.take(); !slices.Contains(got, filepath.Join(msgs, "1.blk")) {
		t.Fatalf("after re-create: synced %q, want 1.blk", got)
	}
	s.Close()

	s2 := open(t, dir)
	defer s2.Close()
	_, recs := replayAll(t, s2, "big")
	if len(recs) != 2 || string(recs[0]) != "one" || string(recs[1]) != "two" {
		t.Fatalf("after reopen: %d records %q", len(recs), recs)
	}
}
