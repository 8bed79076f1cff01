package mapping

import (
	"slices"
	"sync"
	"time"
)

// Janitor timing: acked records are removed from a queue's log in batches,
// mostly with one purge below the lowest live record.
const (
	//
	// A purge that ends inside a store block makes JetStream rewrite the
	// rest of that block, so purging too often costs copying: every 500 ms
	// measured best under a steady backlog.
	janitorInterval = 500 * time.Millisecond
	// A record acked above a live one waits this many rounds for the
	// floor to pass it before it is deleted on its own.
	holeRounds = 4
)

// logState is the janitor's view of one durable queue's log, guarded by
// Queue.mu.
type logState struct {
	floor  uint64            // every record below floor is gone from the log
	done   map[uint64]uint16 // settled records at or above floor: rounds waited, or deletedMark
	ranges [][2]uint64       // settled runs of records (first, last): purged or deleted paged records
	dirty  bool
}

const deletedMark = 0xFFFF

func (l *logState) forget(seq uint64) {
	if seq < l.floor {
		return
	}
	if l.done == nil {
		l.done = map[uint64]uint16{}
	}
	l.done[seq] = 0
}

// forgetRange settles the records first..last at once (a purge of paged
// messages, or a run of records deleted before a restart); the floor
// jumps over it, and it is never deleted record by record.
func (l *logState) forgetRange(first, last uint64) {
	first = max(first, l.floor)
	if last < first {
		return
	}
	if last == first {
		l.forget(first)
		return
	}
	l.ranges = append(l.ranges, [2]uint64{first, last})
}

// advance moves the floor over settled records and runs.
func (l *logState) advance() {
	for {
		if _, ok := l.done[l.floor]; ok {
			delete(l.done, l.floor)
			l.floor++
			continue
		}
		moved := false
		for i := 0; i < len(l.ranges); i++ {
			r := l.ranges[i]
			if r[1] < l.floor {
				l.ranges = append(l.ranges[:i], l.ranges[i+1:]...)
				i--
				continue
			}
			if r[0] <= l.floor {
				l.floor = r[1] + 1
				l.ranges = append(l.ranges[:i], l.ranges[i+1:]...)
				moved = true
				break
			}
		}
		if !moved {
			return
		}
	}
}

// janitor owns one goroutine that removes settled records from queue logs.
type janitor struct {
	r     *Router
	mu    sync.Mutex
	dirty map[*Queue]struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newJanitor(r *Router) *janitor {
	j := &janitor{r: r, dirty: map[*Queue]struct{}{}, quit: make(chan struct{})}
	j.wg.Add(1)
	go j.loop()
	return j
}

func (j *janitor) mark(q *Queue) {
	j.mu.Lock()
	j.dirty[q] = struct{}{}
	j.mu.Unlock()
}

func (j *janitor) forget(q *Queue) {
	j.mu.Lock()
	delete(j.dirty, q)
	j.mu.Unlock()
}

func (j *janitor) stop() {
	select {
	case <-j.quit:
	default:
		close(j.quit)
	}
	j.wg.Wait()
}

// loop runs in its own goroutine until stop; it is the only caller of the
// store's purge and delete operations.
func (j *janitor) loop() {
	defer j.wg.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-j.quit:
			return
		case <-t.C:
			j.runOnce(false)
		}
	}
}

// runOnce cleans every dirty queue once; final (at shutdown) deletes
// holes at once instead of waiting for the floor.
func (j *janitor) runOnce(final bool) {
	j.mu.Lock()
	qs := make([]*Queue, 0, len(j.dirty))
	for q := range j.dirty {
		qs = append(qs, q)
	}
	clear(j.dirty)
	j.mu.Unlock()
	for _, q := range qs {
		j.clean(q, final)
	}
}

// clean advances q's floor over settled records, purges below it, and
// deletes records that have waited too long above a live one.
func (j *janitor) clean(q *Queue, final bool) {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	l := &q.log
	l.dirty = false
	for _, seq := range q.late.take() {
		l.forget(seq)
	}
	if q.page.on {
		// Spilled messages written since the last publish leave memory,
		// and the window is topped up, even when nobody publishes.
		q.drainSpillLocked()
		q.dispatchLocked()
	}
	oldFloor := l.floor
	l.advance()
	floor := l.floor
	var holes []uint64
	for seq, rounds := range l.done {
		switch {
		case rounds == deletedMark:
		case final || rounds+1 >= holeRounds:
			holes = append(holes, seq)
			l.done[seq] = deletedMark
		default:
			l.done[seq] = rounds + 1
		}
	}
	if len(l.done) > 0 {
		q.markDirtyLocked()
	}
	name := q.logFor()
	q.unlockAndDeadLetter()
	if name == "" {
		return
	}

	st := j.r.store
	if floor > oldFloor {
		if err := st.PurgeBelow(name, floor); err != nil {
			j.r.log.Error("purge queue log", "queue", q.name, "err", err)
		} else if q.durableLog() {
			q.forgetPurgedBelow(floor)
		}
	}
	slices.Sort(holes)
	for _, seq := range holes {
		if err := st.DeleteSeq(name, seq); err != nil {
			j.r.log.Error("delete from queue log", "queue", q.name, "seq", seq, "err", err)
		}
	}
}
