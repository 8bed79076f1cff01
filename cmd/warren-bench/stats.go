package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram (HDR-style): values below
// subBuckets are exact, larger values are kept with 7 significant bits, i.e.
// a relative error below 1/128 (< 0.8%). Not safe for concurrent use; each
// goroutine keeps its own and they are merged at the end.
type histogram struct {
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // 128
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, subBuckets*(64-subBucketBits+1)), min: math.MaxInt64}
}

func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBucketBits - 1
	mant := int(uint64(v) >> uint(shift)) // in [subBuckets, 2*subBuckets)
	return subBuckets + shift*subBuckets + (mant - subBuckets)
}

// bucketRange returns the inclusive range of values that map to bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	shift := (i - subBuckets) / subBuckets
	mant := int64(i-subBuckets)%subBuckets + subBuckets
	lo = mant << uint(shift)
	hi = lo + (int64(1) << uint(shift)) - 1
	return lo, hi
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// percentile returns the value at quantile q (0..100) using the
// nearest-rank method; the bucket's midpoint is reported, clamped to the
// observed min and max, and p100 is the exact max.
func (h *histogram) percentile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// seqSet is a growable bitset of sequence numbers (>= 1).
type seqSet struct {
	words []uint64
	n     uint64
}

// add inserts seq and reports whether it was new.
func (s *seqSet) add(seq uint64) bool {
	w := seq / 64
	if w >= uint64(len(s.words)) {
		nw := uint64(len(s.words)) * 2
		if nw <= w {
			nw = w + 1
		}
		if nw < 16 {
			nw = 16
		}
		grown := make([]uint64, nw)
		copy(grown, s.words)
		s.words = grown
	}
	m := uint64(1) << (seq % 64)
	if s.words[w]&m != 0 {
		return false
	}
	s.words[w] |= m
	s.n++
	return true
}

func (s *seqSet) has(seq uint64) bool {
	w := seq / 64
	return w < uint64(len(s.words)) && s.words[w]&(uint64(1)<<(seq%64)) != 0
}

func (s *seqSet) count() uint64 { return s.n }

// unionDup merges o into s and returns how many of o's members were already
// in s (messages received by two consumers of the same queue).
func (s *seqSet) unionDup(o *seqSet) uint64 {
	if len(o.words) > len(s.words) {
		grown := make([]uint64, len(o.words))
		copy(grown, s.words)
		s.words = grown
	}
	var dup uint64
	for i, w := range o.words {
		dup += uint64(bits.OnesCount64(s.words[i] & w))
		added := w &^ s.words[i]
		s.n += uint64(bits.OnesCount64(added))
		s.words[i] |= w
	}
	return dup
}

// missing counts members of expected absent from got.
func missing(expected, got *seqSet) uint64 {
	var m uint64
	for i, w := range expected.words {
		var g uint64
		if i < len(got.words) {
			g = got.words[i]
		}
		m += uint64(bits.OnesCount64(w &^ g))
	}
	return m
}

// missingRange counts seqs 1..n absent from got.
func missingRange(n uint64, got *seqSet) uint64 {
	var have uint64
	for i, w := range got.words {
		lo := uint64(i) * 64
		if lo > n {
			break
		}
		if lo+63 > n { // mask bits above n
			w &= (uint64(1) << (n - lo + 1)) - 1
		}
		have += uint64(bits.OnesCount64(w))
	}
	if have > n {
		return 0
	}
	return n - have
}

// recvLog is what one consumer records: per producer the set of sequence
// numbers seen, plus duplicates it saw itself.
type recvLog struct {
	seen []seqSet // indexed by producer id
	dups uint64
}

func newRecvLog(producers int) *recvLog { return &recvLog{seen: make([]seqSet, producers)} }

// record notes one delivery and reports whether it was new for this consumer.
func (r *recvLog) record(producer uint32, seq uint64) bool {
	if r.seen[producer].add(seq) {
		return true
	}
	r.dups++
	return false
}

// producerLog is what the run knows about one producer after it stopped.
type producerLog struct {
	sent      uint64  // seqs 1..sent were published
	confirmed *seqSet // nil unless confirms are on
	nacked    uint64
}

type accounting struct {
	received   uint64 // unique (queue, producer, seq) deliveries
	duplicated uint64
	lost       uint64
}

// account computes lost and duplicated messages for one queue fed by the
// given producers (by id) and drained by the given consumers. With confirms a
// message is lost when it was confirmed but never received; without confirms,
// when it was sent but never received.
func account(prods []producerLog, feeding []int, consumers []*recvLog) accounting {
	var a accounting
	for _, p := range feeding {
		var union seqSet
		for _, c := range consumers {
			a.duplicated += union.unionDup(&c.seen[p])
		}
		a.received += union.count()
		if prods[p].confirmed != nil {
			a.lost += missing(prods[p].confirmed, &union)
		} else {
			a.lost += missingRange(prods[p].sent, &union)
		}
	}
	for _, c := range consumers {
		a.duplicated += c.dups
	}
	return a
}

func durMicros(ns int64) float64 { return float64(time.Duration(ns)) / float64(time.Microsecond) }
