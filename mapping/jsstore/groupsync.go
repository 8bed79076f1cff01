package jsstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit for Config.SyncAlways. JetStream's own sync_interval
// "always" fsyncs every message, which manages a few thousand messages a
// second. Instead, the store lets JetStream write as usual (each record
// reaches the operating system before its PubAck) and a syncer goroutine
// fsyncs the log's block files once per batch of PubAcks, then hands the
// batch to a completer goroutine that runs its callbacks: a confirm means
// the record is on disk, and one fsync covers every record acknowledged
// since the previous one. The syncer starts the next fsync while the
// completer still runs callbacks (they take queue locks that publishers
// hold, and measured a fifth of a round when done in line).
//
// JetStream appends to the newest block file of a stream only; when it is
// full it creates the block with the next index ("<n+1>.blk"). The syncer
// keeps the newest block of each stream open (blockFiles) and per round
// only checks that the file is still in place, looks for the next index and
// fsyncs the open file. A finished block is fsynced by name and the msgs
// directory after it, so a new block's directory entry is durable before
// any record in it is confirmed. Anything unexpected (the block was
// removed by a purge, the stream deleted and created again with indexes
// starting over at 1) falls back to reading the directory.
type groupSyncer struct {
	a       *appender
	streams string // <Dir>/jetstream/$G/streams

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []syncItem
	stopping bool
	done     chan struct{} // closed when loop ended

	synced    chan []syncItem // synced batches, from loop to complete
	completed chan struct{}   // closed when complete ended

	fsMu    sync.Mutex             // guards files and closed: the syncer and MetaPut both sync
	files   map[string]*blockFiles // stream -> its newest block
	closed  bool                   // stop closed the files
	batches atomic.Int64           // fsync rounds, for tests and metrics
	onSync  func(path string)      // tests: called after each successful fsync
}

// syncedBatches is how many synced batches may wait for their callbacks
// before the syncer waits too.
const syncedBatches = 4

// maxOpenBlocks bounds the block files the syncer keeps open; past it, the
// file of another stream is closed (and opened by name on its next round).
const maxOpenBlocks = 256

type syncItem struct {
	id  uint64
	p   pendingAppend
	seq uint64
	err error
}

func newGroupSyncer(a *appender, dir string) *groupSyncer {
	g := &groupSyncer{
		a:         a,
		streams:   filepath.Join(dir, "jetstream", "$G", "streams"),
		done:      make(chan struct{}),
		synced:    make(chan []syncItem, syncedBatches),
		completed: make(chan struct{}),
		files:     map[string]*blockFiles{},
	}
	g.cond = sync.NewCond(&g.mu)
	go g.loop()
	go g.complete()
	return g
}

func (g *groupSyncer) push(items ...syncItem) {
	g.mu.Lock()
	g.queue = append(g.queue, items...)
	g.cond.Signal()
	g.mu.Unlock()
}

// stop lets the syncer finish what is queued, runs the callbacks, then
// ends both goroutines and closes the block files it holds.
func (g *groupSyncer) stop() {
	g.mu.Lock()
	g.stopping = true
	g.cond.Signal()
	g.mu.Unlock()
	<-g.done
	<-g.completed
	g.fsMu.Lock()
	g.closed = true
	for name, b := range g.files {
		b.close()
		delete(g.files, name)
	}
	g.fsMu.Unlock()
}

// loop runs in its own goroutine (started by Open, ended by stop): it
// takes what was acknowledged since its last round, fsyncs the logs
// involved and hands the batch to complete. The fsync of the next batch
// does not wait for the callbacks of the previous one.
func (g *groupSyncer) loop() {
	defer close(g.done)
	defer close(g.synced)
	failed := map[string]error{}
	need := map[string]uint64{} // log -> highest sequence acknowledged in the batch
	for {
		g.mu.Lock()
		for len(g.queue) == 0 && !g.stopping {
			g.cond.Wait()
		}
		if len(g.queue) == 0 {
			g.mu.Unlock()
			return
		}
		batch := g.queue
		g.queue = nil
		g.mu.Unlock()

		clear(failed)
		clear(need)
		for _, it := range batch {
			if it.err == nil {
				need[it.p.log] = max(need[it.p.log], it.seq)
			}
		}
		for log, seq := range need {
			if err := g.syncStream(streamPrefix+log, seq); err != nil {
				failed[log] = err
			}
		}
		if len(failed) > 0 {
			for i := range batch {
				if batch[i].err == nil {
					batch[i].err = failed[batch[i].p.log]
				}
			}
		}
		g.batches.Add(1)
		g.synced <- batch
	}
}

// complete runs in its own goroutine (started by Open, ended when loop
// ends): it is the only caller of the callbacks of synced appends, and
// runs them batch after batch in the order loop synced them.
func (g *groupSyncer) complete() {
	defer close(g.completed)
	for batch := range g.synced {
		g.a.cbMu.Lock()
		for _, it := range batch {
			if it.err != nil {
				it.p.done(0, it.err)
			} else {
				it.p.done(it.seq, nil)
			}
			g.a.finish(it.id)
		}
		g.a.cbMu.Unlock()
	}
}

// syncStream makes every record of the stream that reached the operating
// system durable: it fsyncs the blocks that may hold records written since
// the last round (the newest one, and any created since) and the directory
// when blocks were created. It fails closed: unless the files it fsynced
// hold a record with sequence need or later, it reads the directory again
// (a few times, in case the record is still on its way to the file) and
// then returns an error, so that no confirm goes out for a record that was
// not fsynced. need 0 checks only that there is a block to fsync.
func (g *groupSyncer) syncStream(stream string, need uint64) error {
	g.fsMu.Lock()
	defer g.fsMu.Unlock()
	if g.closed {
		return ErrClosed
	}
	b := g.files[stream]
	if b == nil {
		b = &blockFiles{streamDir: filepath.Join(g.streams, stream), onSync: g.onSync}
		b.dir = filepath.Join(b.streamDir, "msgs")
		g.files[stream] = b
	}
	if b.f == nil && g.openBlocks() >= maxOpenBlocks {
		for _, o := range g.files {
			if o.f != nil {
				o.close()
				break
			}
		}
	}
	if err := b.sync(); err != nil {
		b.close()
		return fmt.Errorf("jsstore: sync %s: %w", stream, err)
	}
	for _, wait := range coverRetries {
		if b.idx != 0 && need <= b.covered {
			return nil
		}
		time.Sleep(wait)
		b.close()
		if err := b.scan(true); err != nil {
			return fmt.Errorf("jsstore: sync %s: %w", stream, err)
		}
	}
	if b.idx != 0 && need <= b.covered {
		return nil
	}
	b.close()
	return fmt.Errorf("jsstore: sync %s: record %d is not in the block files under %s (newest sequence found: %d); "+
		"not confirming a write that was not fsynced (has nats-server's file layout changed? see mapping/README.md)",
		stream, need, b.dir, b.covered)
}

// coverRetries are the pauses before reading a stream's directory again
// when the record to confirm was not in the files fsynced.
var coverRetries = []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond}

func (g *groupSyncer) openBlocks() int {
	n := 0
	for _, b := range g.files {
		if b.f != nil {
			n++
		}
	}
	return n
}

// forget drops what the syncer knows of a stream (deleted or purged whole),
// closing its block file.
func (g *groupSyncer) forget(stream string) {
	g.fsMu.Lock()
	defer g.fsMu.Unlock()
	if b := g.files[stream]; b != nil {
		b.close()
		delete(g.files, stream)
	}
}

// blockFiles is what the syncer knows of one stream's message blocks.
type blockFiles struct {
	streamDir string            // <streams>/<stream>
	dir       string            // <streams>/<stream>/msgs
	idx       int               // index of the newest block seen; 0 before the first scan
	f         *os.File          // block idx, open for fsync; nil when closed
	fi        os.FileInfo       // f's identity, taken when it was opened
	onSync    func(path string) // tests

	// What the fsynced files hold: the syncer reads the record headers
	// a block gained since the last round (they are in the page cache),
	// so that a confirm is only sent for a record found in a file that
	// was fsynced.
	parsed  int64  // offset in f up to which records were read
	covered uint64 // highest message sequence read from fsynced blocks
	buf     []byte
}

func (b *blockFiles) block(i int) string { return filepath.Join(b.dir, strconv.Itoa(i)+".blk") }

// open makes block i the open one.
func (b *blockFiles) open(i int) error {
	f, err := os.Open(b.block(i))
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	b.close()
	b.f, b.fi, b.idx = f, fi, i
	b.parsed = 0
	return nil
}

func (b *blockFiles) close() {
	if b.f != nil {
		b.f.Close()
		b.f, b.fi = nil, nil
	}
}

// current reports whether the open file is still the one its name refers
// to (not removed, not replaced). An error counts as no, which makes the
// caller read the directory again.
func (b *blockFiles) current() bool {
	fi, err := os.Stat(b.f.Name())
	return err == nil && os.SameFile(fi, b.fi)
}

// sync fsyncs block idx and every block created after it, moving idx to
// the newest; it fsyncs the directory when it found new blocks.
func (b *blockFiles) sync() error {
	if b.idx == 0 {
		return b.scan(false)
	}
	if b.f != nil && !b.current() {
		// Removed or replaced (purge, stream deleted and created again):
		// the newest block is not what we hold any more.
		b.close()
		return b.scan(true)
	}
	if b.f == nil {
		if err := b.open(b.idx); errors.Is(err, fs.ErrNotExist) {
			return b.scan(true)
		} else if err != nil {
			return err
		}
	}
	grew := false
	for {
		next := b.block(b.idx + 1)
		if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return err
		}
		// Block idx is finished. Read the rest of it, then sync it by
		// name: a compaction may have replaced the file we hold since.
		if err := b.advance(); err != nil {
			return err
		}
		b.close()
		if err := b.fsyncPath(b.block(b.idx)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		b.idx++
		grew = true
		if err := b.open(b.idx); errors.Is(err, fs.ErrNotExist) {
			return b.scan(true)
		} else if err != nil {
			return err
		}
	}
	if err := b.f.Sync(); err != nil {
		return err
	}
	b.synced(b.f.Name())
	if err := b.advance(); err != nil {
		return err
	}
	if grew {
		// The new blocks' directory entries.
		return b.fsyncPath(b.dir)
	}
	return nil
}

// scan reads the directory and fsyncs the blocks that may hold records
// written since the last round, then the directory. restart means the
// block we knew is gone, so every block present may be new. The first
// scan of a stream (since Open) also fsyncs the newest block but one, in
// case JetStream moved to a new block before the first round, and the
// stream's directories above msgs.
func (b *blockFiles) scan(restart bool) error {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	var idxs []int
	for _, e := range ents {
		if n, ok := blockIndex(e.Name()); ok {
			idxs = append(idxs, n)
		}
	}
	if len(idxs) == 0 {
		return nil // nothing written yet (syncStream fails if something was)
	}
	lo, hi := idxs[0], idxs[0]
	for _, n := range idxs {
		lo, hi = min(lo, n), max(hi, n)
	}
	first := b.idx == 0
	from := hi
	switch {
	case restart:
		from = lo
	case first:
		from = max(lo, hi-1)
	}
	for _, n := range idxs {
		if n >= from && n < hi {
			if err := b.fsyncPath(b.block(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := b.open(hi); err != nil {
		return err
	}
	if err := b.f.Sync(); err != nil {
		return err
	}
	b.synced(b.f.Name())
	if restart || first {
		// Sequences may have started over (stream deleted and created
		// again): count only what the blocks hold now, the newest and
		// the one before it.
		b.covered = 0
		if err := b.readBlock(b.block(hi - 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := b.advance(); err != nil {
		return err
	}
	if err := b.fsyncPath(b.dir); err != nil {
		return err
	}
	if first {
		// The stream's own directory entries (msgs, and the stream in
		// streams/), in case it was created since the last sync.
		if err := b.fsyncPath(b.streamDir); err != nil {
			return err
		}
		return b.fsyncPath(filepath.Dir(b.streamDir))
	}
	return nil
}

// JetStream's message record in a block file (nats-server filestore.go):
// total_len(4, high bit: has headers) sequence(8, high bits: erased,
// tombstone) timestamp(8) subj_len(2) subject [hdr_len(4) hdr] msg
// hash(8), little endian, records back to back.
const (
	recordHeader  = 22
	recordHash    = 8
	recordHdrBit  = 1 << 31
	recordErased  = 1 << 63
	recordTomb    = 1 << 62
	readChunkSize = 64 << 10
)

// advance reads the headers of the records the open block gained since
// the last call and raises covered to the highest sequence among them.
// It stops at a partial record (the rest comes next round) and at bytes
// that are not a record (covered then stays low, and syncStream fails
// closed).
func (b *blockFiles) advance() error {
	n, err := b.readRecords(b.f, b.parsed)
	b.parsed = n
	return err
}

// readBlock reads every record header of the block at path.
func (b *blockFiles) readBlock(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = b.readRecords(f, 0)
	return err
}

// readRecords reads record headers from off to the end of f and returns
// the offset after the last whole record.
func (b *blockFiles) readRecords(f *os.File, off int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return off, err
	}
	size := fi.Size()
	if b.buf == nil {
		b.buf = make([]byte, readChunkSize)
	}
	le := binary.LittleEndian
	for off+recordHeader+recordHash <= size {
		n, err := f.ReadAt(b.buf[:min(int64(len(b.buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return off, err
		}
		at := 0
		for at+12 <= n {
			rl := int64(le.Uint32(b.buf[at:]) &^ recordHdrBit)
			seq := le.Uint64(b.buf[at+4:])
			if rl < recordHeader+recordHash {
				return off + int64(at), nil // not a record
			}
			if off+int64(at)+rl > size {
				return off + int64(at), nil // partial: written next
			}
			if seq&recordTomb == 0 {
				b.covered = max(b.covered, seq&^recordErased)
			}
			at += int(rl)
		}
		if at == 0 {
			return off, nil
		}
		off += int64(at)
	}
	return off, nil
}

func (b *blockFiles) fsyncPath(path string) error {
	if err := fsyncFile(path); err != nil {
		return err
	}
	b.synced(path)
	return nil
}

func (b *blockFiles) synced(path string) {
	if b.onSync != nil {
		b.onSync(path)
	}
}

func blockIndex(name string) (int, bool) {
	s, ok := strings.CutSuffix(name, ".blk")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
