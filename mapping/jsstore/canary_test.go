package jsstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// checkedNatsServer is the nats-server release whose file layout and
// write-before-PubAck behaviour the group syncer (groupsync.go) was
// checked against; mapping/README.md names it too. A new release must
// pass TestCanaryBlockLayout and TestCanaryWrittenBeforePubAck before the
// pin moves.
const checkedNatsServer = "2.15.3"

// appendMarked appends records carrying random markers and returns the
// markers and their sequences. check, when not nil, runs in each callback.
func appendMarked(t *testing.T, s *Store, log string, n int, check func(seq uint64, marker []byte)) ([][]byte, []uint64) {
	t.Helper()
	type res struct {
		seq uint64
		err error
	}
	markers := make([][]byte, n)
	results := make([]chan res, n)
	for i := range n {
		var raw [16]byte
		rand.Read(raw[:])
		markers[i] = []byte("canary-" + hex.EncodeToString(raw[:]))
		results[i] = make(chan res, 1)
		s.Append(log, markers[i], func(seq uint64, err error) {
			if err == nil && check != nil {
				check(seq, markers[i])
			}
			results[i] <- res{seq, err}
		})
	}
	seqs := make([]uint64, n)
	for i := range n {
		r := <-results[i]
		if r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
		seqs[i] = r.seq
	}
	return markers, seqs
}

func blockPaths(t *testing.T, dir, log string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", streamName(log), "msgs", "*.blk"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no block files at jetstream/$G/streams/%s/msgs/*.blk (err %v): nats-server's file layout changed; groupsync.go must follow it", streamName(log), err)
	}
	return paths
}

// TestCanaryBlockLayout breaks when nats-server changes what the group
// syncer relies on: block files at jetstream/$G/streams/<stream>/msgs/<n>.blk
// holding records whose headers (length, sequence) it can read, with the
// message bytes stored as they were appended.
func TestCanaryBlockLayout(t *testing.T) {
	if server.VERSION != checkedNatsServer {
		t.Fatalf("nats-server is %s; the group syncer was checked against %s: check its layout assumptions (groupsync.go), run these canaries and move the pin here and in mapping/README.md", server.VERSION, checkedNatsServer)
	}
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateLog("canary"); err != nil {
		t.Fatal(err)
	}
	markers, seqs := appendMarked(t, s, "canary", 50, nil)

	var all []byte
	b := &blockFiles{}
	for _, p := range blockPaths(t, dir, "canary") {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
		if err := b.readBlock(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range markers {
		if !bytes.Contains(all, m) {
			t.Fatalf("record %d (seq %d) not found as written in the block files: nats-server encodes records differently now", i, seqs[i])
		}
	}
	if last := seqs[len(seqs)-1]; b.covered != last {
		t.Fatalf("record headers read from the blocks end at sequence %d, want %d: the record format changed", b.covered, last)
	}
}

// TestCanaryWrittenBeforePubAck breaks when nats-server stops writing a
// record to its block file before it sends the PubAck (which group commit
// relies on: it fsyncs the files when the PubAcks come). It runs without
// SyncAlways so that the callback runs right at the PubAck.
func TestCanaryWrittenBeforePubAck(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	if err := s.CreateLog("canary"); err != nil {
		t.Fatal(err)
	}
	missing := make(chan string, 100)
	blocks := filepath.Join(dir, "jetstream", "$G", "streams", streamName("canary"), "msgs", "*.blk")
	appendMarked(t, s, "canary", 50, func(seq uint64, marker []byte) {
		paths, _ := filepath.Glob(blocks)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, marker) {
				return
			}
		}
		missing <- string(marker)
	})
	close(missing)
	if m, ok := <-missing; ok {
		t.Fatalf("record %s was not in a block file when its PubAck came", m)
	}
}

// TestGroupSyncFailsClosed: when the files the syncer finds do not hold
// the record (nats-server moved its files; here the syncer is pointed at
// a stale copy, then at nothing), the append fails instead of being
// confirmed without an fsync.
func TestGroupSyncFailsClosed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SyncAlways: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateLog("q"); err != nil {
		t.Fatal(err)
	}
	appendSync(t, s, "q", []byte("before"))

	g := s.appender.group
	stale := t.TempDir()
	if err := os.CopyFS(filepath.Join(stale, streamName("q")), os.DirFS(filepath.Join(g.streams, streamName("q")))); err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{stale, filepath.Join(t.TempDir(), "nothing")} {
		g.fsMu.Lock()
		g.streams = where
		for _, b := range g.files {
			b.close()
		}
		clear(g.files)
		g.fsMu.Unlock()
		ch := make(chan error, 1)
		s.Append("q", []byte("after"), func(_ uint64, err error) { ch <- err })
		if err := <-ch; err == nil {
			t.Fatalf("append confirmed with the syncer looking at %s, where the record is not", where)
		} else if errors.Is(err, ErrClosed) {
			t.Fatalf("append failed with %v, want the sync error", err)
		}
	}
}
