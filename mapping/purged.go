package mapping

import (
	"cmp"
	"encoding/json"
	"slices"
)

// A purge of a paged queue cannot remove its paged records from the log at
// once: live records (the window, unacked deliveries) sit below them, and
// the log is only ever cut below its lowest live record. So the purged run
// of records is written down (KV key d.<vhost>.<queue>) before purge-ok,
// skipped by a restart, and forgotten once the janitor's floor has passed
// it and the records are gone.

// purgedRange is a run of log records dropped by a purge: First..Last,
// Count of them in the log when it was purged (transient ones included).
type purgedRange struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	Count uint64 `json:"count"`
}

func purgedKey(vh, name string) string { return "d." + escapeToken(vh) + "." + escapeToken(name) }

// notePurged records rg for q's durable log, with no core lock held
// (Queue.pageMu orders the writers of q.purged).
func (q *Queue) notePurged(rg purgedRange) error {
	q.pageMu.Lock()
	defer q.pageMu.Unlock()
	q.purged = append(q.purged, rg)
	return q.vh.r.putJSON(purgedKey(q.vh.name, q.name), q.purged)
}

// forgetPurgedBelow drops the ranges the log no longer holds: everything
// below floor is gone. Called by the janitor after a purge below floor.
func (q *Queue) forgetPurgedBelow(floor uint64) {
	q.pageMu.Lock()
	defer q.pageMu.Unlock()
	n := len(q.purged)
	q.purged = slices.DeleteFunc(q.purged, func(rg purgedRange) bool { return rg.Last < floor })
	if len(q.purged) == n {
		return
	}
	r := q.vh.r
	var err error
	if len(q.purged) == 0 {
		err = r.store.MetaDelete(purgedKey(q.vh.name, q.name))
	} else {
		err = r.putJSON(purgedKey(q.vh.name, q.name), q.purged)
	}
	if err != nil {
		r.log.Error("updating purged ranges", "queue", q.name, "vhost", q.vh.name, "err", err)
	}
}

// loadPurged reads q's purged ranges at start, keeps those whose records
// may still be in the log (from first on), and returns how many records
// they hold now (transient ones were purged since, so the count is asked
// of the store).
func (q *Queue) loadPurged(val []byte, first uint64) uint64 {
	var rs []purgedRange
	if err := json.Unmarshal(val, &rs); err != nil {
		q.vh.r.log.Error("unreadable purged ranges; purged messages may come back", "queue", q.name, "err", err)
		return 0
	}
	var n uint64
	for _, rg := range rs {
		if first != 0 && rg.Last >= first {
			q.purged = append(q.purged, rg)
			q.log.forgetRange(rg.First, rg.Last)
			from, err1 := q.vh.r.store.CountFrom(q.logName, rg.First)
			after, err2 := q.vh.r.store.CountFrom(q.logName, rg.Last+1)
			if err1 != nil || err2 != nil {
				q.vh.r.log.Error("counting purged records; the queue's count may be off", "queue", q.name, "err", cmp.Or(err1, err2))
				continue
			}
			n += from - after
		}
	}
	q.page.purged = slices.Clone(q.purged)
	return n
}

// pastPurged returns seq, or the first sequence after the purged range
// that holds it (restart only: runtime purges move the cursor past).
func (p *pageState) pastPurged(seq uint64) uint64 {
	for _, rg := range p.purged {
		if seq >= rg.First && seq <= rg.Last {
			return rg.Last + 1
		}
	}
	return seq
}
