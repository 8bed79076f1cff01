package mapping

import "fmt"

// PagingCheck verifies a queue's paging invariants (tests only): the
// window is in queue order, and the paged count matches the records the
// log holds between cursor and acked.
func PagingCheck(r *Router, vhost, queue string) error {
	vh, err := r.VHost(vhost)
	if err != nil {
		return err
	}
	vh.mu.RLock()
	q := vh.queues[queue]
	vh.mu.RUnlock()
	if q == nil {
		return fmt.Errorf("no queue %s", queue)
	}
	q.mu.Lock()
	p := q.page
	name := q.logFor()
	var seqs, stored []uint64
	for i := range q.ready.levels {
		l := &q.ready.levels[i]
		for _, m := range l.buf[l.head:] {
			seqs = append(seqs, m.seq)
			stored = append(stored, m.storeSeq.Load())
		}
	}
	loading := p.loading
	logs := fmt.Sprintf("floor=%d done=%v ranges=%v spill=%d window store seqs %v", q.log.floor, q.log.done, q.log.ranges, p.spill.len(), stored)
	q.mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			return fmt.Errorf("window out of order: %v", seqs)
		}
	}
	if !p.on {
		if p.n != 0 || len(p.skip) != 0 || p.spill.len() != 0 {
			return fmt.Errorf("not paging but n=%d skip=%d spill=%d", p.n, len(p.skip), p.spill.len())
		}
		return nil
	}
	if p.n+len(p.skip) == 0 || name == "" || loading {
		return nil
	}
	recs, err := r.store.ReadBatch(name, p.cursor, 1<<16, 1<<30)
	if err != nil {
		return err
	}
	held := 0
	var in []uint64
	var bodies []string
	for _, rec := range recs {
		if rec.Seq <= p.acked && p.pastPurged(rec.Seq) == rec.Seq {
			held++
			in = append(in, rec.Seq)
			if m, err := decodeRecord(rec.Data); err == nil {
				bodies = append(bodies, string(m.Body))
			}
		}
	}
	logs += fmt.Sprintf(" records %v %q", in, bodies)
	if held != p.n+len(p.skip) {
		return fmt.Errorf("paged n=%d skip=%d but the log holds %d records in [%d, %d]; %s", p.n, len(p.skip), held, p.cursor, p.acked, logs)
	}
	return nil
}

// TracePaging collects the paging decisions of queues named name.
func TracePaging(name string, out func(string)) {
	pageTrace = func(q *Queue, what string, args ...any) {
		if q.name == name {
			out(fmt.Sprint(append([]any{what}, args...)...))
		}
	}
}

// WindowLen returns how many of a queue's ready messages are in memory
// and how many are not (paged or spilled), for tests.
func WindowLen(r *Router, vhost, queue string) (inMemory, paged int) {
	vh, err := r.VHost(vhost)
	if err != nil {
		return 0, 0
	}
	vh.mu.RLock()
	q := vh.queues[queue]
	vh.mu.RUnlock()
	if q == nil {
		return 0, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.len(), q.page.n + q.page.spill.len() - q.page.spillDropped
}
