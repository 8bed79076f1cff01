package jsstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Group commit for Config.SyncAlways. JetStream's own sync_interval
// "always" fsyncs every message, which manages a few thousand messages a
// second. Instead, the store lets JetStream write as usual (each record
// reaches the operating system before its PubAck) and a syncer goroutine
// fsyncs the log's block files once per batch of PubAcks, then runs the
// batch's callbacks: a confirm means the record is on disk, and one fsync
// covers every record acknowledged since the previous one.
type groupSyncer struct {
	a       *appender
	streams string // <Dir>/jetstream/$G/streams

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []syncItem
	stopping bool
	done     chan struct{}

	fsMu      sync.Mutex     // guards lastBlock: the syncer and MetaPut both sync
	lastBlock map[string]int // stream -> highest block index already seen
	batches   int            // fsync rounds, for tests and metrics
}

type syncItem struct {
	id  uint64
	p   pendingAppend
	seq uint64
	err error
}

func newGroupSyncer(a *appender, dir string) *groupSyncer {
	g := &groupSyncer{a: a, streams: filepath.Join(dir, "jetstream", "$G", "streams"), done: make(chan struct{}), lastBlock: map[string]int{}}
	g.cond = sync.NewCond(&g.mu)
	go g.loop()
	return g
}

func (g *groupSyncer) push(items ...syncItem) {
	g.mu.Lock()
	g.queue = append(g.queue, items...)
	g.cond.Signal()
	g.mu.Unlock()
}

// stop lets the syncer finish what is queued, then end.
func (g *groupSyncer) stop() {
	g.mu.Lock()
	g.stopping = true
	g.cond.Signal()
	g.mu.Unlock()
	<-g.done
}

// loop runs in its own goroutine (started by Open, ended by stop): it is
// the only caller of the callbacks of synced appends.
func (g *groupSyncer) loop() {
	defer close(g.done)
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

		failed := map[string]error{}
		synced := map[string]bool{}
		for _, it := range batch {
			if it.err != nil || synced[it.p.log] {
				continue
			}
			synced[it.p.log] = true
			if err := g.syncStream(streamPrefix + it.p.log); err != nil {
				failed[it.p.log] = err
			}
		}
		g.batches++
		g.a.cbMu.Lock()
		for _, it := range batch {
			err := it.err
			if err == nil {
				err = failed[it.p.log]
			}
			if err != nil {
				it.p.done(0, err)
			} else {
				it.p.done(it.seq, nil)
			}
			g.a.finish(it.id)
		}
		g.a.cbMu.Unlock()
	}
}

// syncStream fsyncs the message blocks of a stream that may hold records
// written since the last round: the newest one, and any created since.
func (g *groupSyncer) syncStream(stream string) error {
	g.fsMu.Lock()
	defer g.fsMu.Unlock()
	dir := filepath.Join(g.streams, stream, "msgs")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("jsstore: sync %s: %w", stream, err)
	}
	maxIdx := 0
	for _, e := range ents {
		if n, ok := blockIndex(e.Name()); ok && n > maxIdx {
			maxIdx = n
		}
	}
	from := g.lastBlock[stream]
	if from == 0 || from > maxIdx {
		from = maxIdx
	}
	for i := from; i <= maxIdx; i++ {
		if err := fsyncFile(filepath.Join(dir, strconv.Itoa(i)+".blk")); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("jsstore: sync %s: %w", stream, err)
		}
	}
	if maxIdx != g.lastBlock[stream] {
		// A new block file: make its directory entry durable too.
		if err := fsyncFile(dir); err != nil {
			return fmt.Errorf("jsstore: sync %s: %w", stream, err)
		}
		g.lastBlock[stream] = maxIdx
	}
	return nil
}

func blockIndex(name string) (int, bool) {
	s, ok := strings.CutSuffix(name, ".blk")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
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
