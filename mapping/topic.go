package mapping

import (
	"strings"
	"sync"
)

// AMQP topic routing.
//
// A routing key and a binding pattern are lists of words separated by '.'.
// As in RabbitMQ, the empty string is the empty list (zero words), and every
// other string has one more word than it has dots, so "a..b" is the three
// words "a", "", "b" and "." is two empty words. In a pattern the whole word
// "*" matches exactly one word and the whole word "#" matches zero or more
// words; "a*" or "#a" are literal words.

// topicTrie maps topic patterns to values and finds the values whose
// patterns match a routing key without looking at unrelated patterns. The
// zero value is an empty trie ready to use.
//
// A topicTrie is not safe for concurrent use: the caller must serialise Add
// and Remove with everything else. Match does not modify the trie, so
// several Match calls may run at once (under a read lock).
type topicTrie[T comparable] struct {
	root   topicNode[T]
	n      int
	memoID uint64 // last memoID given to a node
}

// topicNode is the node reached by a list of pattern words.
type topicNode[T comparable] struct {
	words map[string]*topicNode[T] // literal words
	star  *topicNode[T]            // "*"
	hash  *topicNode[T]            // "#"

	// hashes is the number of "#" edges from the root to this node. A
	// node reached by a "#" edge with hashes >= 2 can be reached at one
	// key position along more than one path (the last "#" of "#.a.#" for
	// the key "a.a"), so memo tells Match to remember where it has been
	// there: this keeps Match from visiting a pair twice and from taking
	// exponential time. Other nodes are reached at most once per position
	// from each state of the nearest "#" node above them, so remembering
	// the states of memo nodes is enough.
	hashes int
	memo   uint64 // nonzero: a key for the states of this node

	vals []T       // values bound with the pattern of this node
	idx  map[T]int // index into vals, once vals is long
}

// topicIndexMin is the number of values a node holds before it keeps an
// index of them for Add and Remove.
const topicIndexMin = 16

// newTopicTrie returns an empty trie (the same as the zero value).
func newTopicTrie[T comparable]() *topicTrie[T] { return &topicTrie[T]{} }

// Len returns the number of (pattern, value) pairs in the trie.
func (t *topicTrie[T]) Len() int { return t.n }

// Add binds v to pattern. Adding a pair that is already present does
// nothing (bindings are a set). The same value may be added under several
// patterns.
func (t *topicTrie[T]) Add(pattern string, v T) {
	n := &t.root
	forEachWord(pattern, func(w string) {
		n = n.child(w)
		if n.hashes >= 2 && w == "#" && n.memo == 0 {
			t.memoID++
			n.memo = t.memoID
		}
	})
	if n.find(v) >= 0 {
		return
	}
	n.vals = append(n.vals, v)
	if n.idx != nil {
		n.idx[v] = len(n.vals) - 1
	} else if len(n.vals) >= topicIndexMin {
		n.idx = make(map[T]int, len(n.vals))
		for i, x := range n.vals {
			n.idx[x] = i
		}
	}
	t.n++
}

// Remove unbinds v from pattern and reports whether the pair was present.
// Nodes left without values or children are freed.
func (t *topicTrie[T]) Remove(pattern string, v T) bool {
	// path[i] is the parent of path[i+1]; words[i] the edge between them.
	path := []*topicNode[T]{&t.root}
	var words []string
	n := &t.root
	ok := true
	forEachWord(pattern, func(w string) {
		if !ok {
			return
		}
		if n = n.lookup(w); n == nil {
			ok = false
			return
		}
		path = append(path, n)
		words = append(words, w)
	})
	if !ok {
		return false
	}
	i := n.find(v)
	if i < 0 {
		return false
	}
	last := len(n.vals) - 1
	if i != last {
		n.vals[i] = n.vals[last]
		if n.idx != nil {
			n.idx[n.vals[i]] = i
		}
	}
	var zero T
	n.vals[last] = zero
	n.vals = n.vals[:last]
	if n.idx != nil {
		delete(n.idx, v)
		if len(n.vals) < topicIndexMin/2 {
			n.idx = nil
		}
	}
	if len(n.vals) == 0 {
		n.vals = nil
	}
	t.n--
	// Prune empty nodes from the leaf up.
	for j := len(path) - 1; j > 0; j-- {
		c := path[j]
		if len(c.vals) > 0 || len(c.words) > 0 || c.star != nil || c.hash != nil {
			break
		}
		p := path[j-1]
		switch w := words[j-1]; w {
		case "*":
			p.star = nil
		case "#":
			p.hash = nil
		default:
			delete(p.words, w)
			if len(p.words) == 0 {
				p.words = nil
			}
		}
	}
	return true
}

// Match calls visit once for every (pattern, value) pair in the trie whose
// pattern matches key. A value bound under several patterns that all match
// key is visited once per pattern; callers that need each value once must
// remove duplicates themselves. visit must not modify the trie.
//
// Match does not allocate in the steady state: patterns with two or more
// "#" words need a set of visited states, which beyond 8 entries comes from
// a sync.Pool.
func (t *topicTrie[T]) Match(key string, visit func(v T)) {
	m := topicMatcher[T]{key: key, done: len(key) + 1, visit: visit}
	start := 0
	if key == "" {
		start = m.done // zero words
	}
	m.walk(&t.root, start)
	if m.more != nil && len(m.more) <= 1<<12 {
		clear(m.more)
		topicSeenPool.Put(m.more)
	}
}

// topicSeenPool holds maps for topicMatcher.more.
var topicSeenPool = sync.Pool{New: func() any { return make(map[uint64]struct{}) }}

// topicMatcher holds the state of one Match call. Positions are byte
// offsets of the start of a word in key; done (len(key)+1) is the position
// after the last word.
type topicMatcher[T comparable] struct {
	key   string
	done  int
	visit func(T)

	// The states (memo node, position) reached so far, each as
	// memo*(done+1)+pos: the first ones in seen, the others in more.
	nseen int
	seen  [8]uint64
	more  map[uint64]struct{}
}

// next returns the position after the word at pos < done, and the word.
func (m *topicMatcher[T]) next(pos int) (int, string) {
	rest := m.key[pos:]
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		return pos + i + 1, rest[:i]
	}
	return m.done, rest
}

// walk visits the values of the patterns below n that match the words of
// the key from pos on.
func (m *topicMatcher[T]) walk(n *topicNode[T], pos int) {
	if n.memo != 0 && m.visited(n.memo*uint64(m.done+1)+uint64(pos)) {
		return
	}
	if pos == m.done {
		for _, v := range n.vals {
			m.visit(v)
		}
		if n.hash != nil {
			m.walk(n.hash, pos) // "#" matches zero words
		}
		return
	}
	next, w := m.next(pos)
	if n.words != nil {
		if c := n.words[w]; c != nil {
			m.walk(c, next)
		}
	}
	if n.star != nil {
		m.walk(n.star, next)
	}
	if h := n.hash; h != nil {
		// "#" swallows zero, one, ... or all remaining words.
		m.walk(h, pos)
		for p := next; ; {
			m.walk(h, p)
			if p == m.done {
				break
			}
			p, _ = m.next(p)
		}
	}
}

// visited records that the walk reached state s and reports whether it had
// been there before.
func (m *topicMatcher[T]) visited(s uint64) bool {
	for i := range m.nseen {
		if m.seen[i] == s {
			return true
		}
	}
	if m.more != nil {
		if _, ok := m.more[s]; ok {
			return true
		}
	}
	if m.nseen < len(m.seen) {
		m.seen[m.nseen] = s
		m.nseen++
		return false
	}
	if m.more == nil {
		m.more = topicSeenPool.Get().(map[uint64]struct{})
	}
	m.more[s] = struct{}{}
	return false
}

// child returns the child of n along word w, creating it if needed.
func (n *topicNode[T]) child(w string) *topicNode[T] {
	if c := n.lookup(w); c != nil {
		return c
	}
	c := &topicNode[T]{hashes: n.hashes}
	switch w {
	case "*":
		n.star = c
	case "#":
		c.hashes++
		n.hash = c
	default:
		if n.words == nil {
			n.words = make(map[string]*topicNode[T])
		}
		n.words[strings.Clone(w)] = c
	}
	return c
}

// lookup returns the child of n along word w, or nil.
func (n *topicNode[T]) lookup(w string) *topicNode[T] {
	switch w {
	case "*":
		return n.star
	case "#":
		return n.hash
	default:
		return n.words[w]
	}
}

// find returns the index of v in n.vals, or -1.
func (n *topicNode[T]) find(v T) int {
	if n.idx != nil {
		if i, ok := n.idx[v]; ok {
			return i
		}
		return -1
	}
	for i, x := range n.vals {
		if x == v {
			return i
		}
	}
	return -1
}

// forEachWord calls f with each word of a routing key or pattern: none for
// "", otherwise the strings between dots.
func forEachWord(s string, f func(w string)) {
	if s == "" {
		return
	}
	for {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			f(s)
			return
		}
		f(s[:i])
		s = s[i+1:]
	}
}

// topicWords splits a routing key or pattern into its words.
func topicWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

// topicMatch reports whether the topic pattern matches the routing key. It
// is the reference for topicTrie.Match.
func topicMatch(pattern, key string) bool {
	p, k := topicWords(pattern), topicWords(key)
	// ok[j] reports whether p[i:] matches k[j:], for i from len(p) down.
	ok := make([]bool, len(k)+1)
	ok[len(k)] = true
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case "#":
			// p[i:] matches k[j:] if p[i+1:] matches k[j:] (zero
			// words) or p[i:] matches k[j+1:] (one more word).
			for j := len(k) - 1; j >= 0; j-- {
				ok[j] = ok[j] || ok[j+1]
			}
		default:
			for j := 0; j < len(k); j++ {
				ok[j] = ok[j+1] && (p[i] == "*" || p[i] == k[j])
			}
			ok[len(k)] = false
		}
	}
	return ok[0]
}
