package mapping

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var topicCases = []struct {
	pattern, key string
	want         bool
}{
	// Literal words.
	{"", "", true},
	{"", "a", false},
	{"a", "", false},
	{"a", "a", true},
	{"a", "b", false},
	{"a.b", "a.b", true},
	{"a.b", "a.b.c", false},
	{"a.b.c", "a.b", false},
	{"a..b", "a..b", true},
	{"a..b", "a.b", false},
	{".", ".", true},
	{".", "", false},
	{"a.", "a.", true},
	{"a.", "a", false},
	{".a", ".a", true},
	// "*" is exactly one word.
	{"*", "a", true},
	{"*", "", false},
	{"*", "a.b", false},
	{"*", ".", false},
	{"*.*", ".", true},
	{"*.*", "a.b", true},
	{"kern.*", "kern.critical", true},
	{"kern.*", "kern.critical.test", false},
	{"kern.*", "kern", false},
	{"kern.*", "kern.", true},
	{"*.orange.*", "quick.orange.rabbit", true},
	{"*.orange.*", "lazy.orange.elephant", true},
	{"*.orange.*", "quick.orange.male.rabbit", false},
	{"*.*.rabbit", "quick.orange.rabbit", true},
	{"*.*.rabbit", "orange.rabbit", false},
	// "#" is zero or more words.
	{"#", "", true},
	{"#", "a", true},
	{"#", "a.b.c", true},
	{"#", ".", true},
	{"#", "..", true},
	{"lazy.#", "lazy", true},
	{"lazy.#", "lazy.orange.elephant", true},
	{"lazy.#", "lazy.pink.rabbit", true},
	{"lazy.#", "quick.lazy", false},
	{"lazy.#", "", false},
	{"#.b", "b", true},
	{"#.b", "a.b", true},
	{"#.b", "a.b.c", false},
	{"a.#.b", "a.b", true},
	{"a.#.b", "a.x.b", true},
	{"a.#.b", "a.x.y.b", true},
	{"a.#.b", "a.x.y", false},
	{"a.#.b", "b.a.b", false},
	{"#.a.#", "a", true},
	{"#.a.#", "x.a.y", true},
	{"#.a.#", "a.a.a", true},
	{"#.a.#", "x.y", false},
	{"#.#", "", true},
	{"#.#", "a", true},
	{"#.#", "a.b.c", true},
	{"*.#", "", false},
	{"*.#", "a", true},
	{"*.#", "a.b", true},
	{"#.*", "", false},
	{"#.*", "a", true},
	{"#.*", "a.b.c", true},
	{"#.*.#", "", false},
	{"#.*.#", "a", true},
	{"*.*.#", "a", false},
	{"*.*.#", "a.b", true},
	{"#.*.*", "a.b.c", true},
	{"#.*.*", "a", false},
	{"a.#.#.b", "a.b", true},
	{"a.#.#.b", "a.x.y.z.b", true},
	{"#.x.#.y.#", "y.x", false},
	{"#.x.#.y.#", "x.y", true},
	{"#.x.#.y.#", "q.x.r.s.y.t", true},
	// "*" and "#" are special only as whole words.
	{"a*", "ab", false},
	{"a*", "a*", true},
	{"#a", "a", false},
	{"#a", "#a", true},
	{"a.*b", "a.xb", false},
	{"*", "*", true},
	{"#", "#", true},
	{"a", "*", false},
	// Unicode and odd bytes are plain words.
	{"héllo.*", "héllo.wörld", true},
	{"a b.c", "a b.c", true},
	{"a/b", "a/b", true},
}

func TestTopicMatchTable(t *testing.T) {
	for _, c := range topicCases {
		if got := topicMatch(c.pattern, c.key); got != c.want {
			t.Errorf("topicMatch(%q, %q) = %v, want %v", c.pattern, c.key, got, c.want)
		}
	}
}

func TestTopicTrieTable(t *testing.T) {
	// All patterns in one trie, each under its own value.
	var tr topicTrie[int]
	for i, c := range topicCases {
		tr.Add(c.pattern, i)
	}
	for i, c := range topicCases {
		seen := 0
		tr.Match(c.key, func(v int) {
			if v == i {
				seen++
			}
		})
		if want := map[bool]int{true: 1, false: 0}[c.want]; seen != want {
			t.Errorf("trie: pattern %q key %q visited %d times, want %d", c.pattern, c.key, seen, want)
		}
	}
}

func TestTopicTrieAddRemove(t *testing.T) {
	tr := newTopicTrie[string]()
	tr.Add("a.*", "q1")
	tr.Add("a.*", "q1") // idempotent
	tr.Add("a.#", "q1")
	tr.Add("a.*", "q2")
	tr.Add("#", "q3")
	if tr.Len() != 4 {
		t.Fatalf("Len = %d, want 4", tr.Len())
	}
	got := matchAll(tr, "a.b")
	if want := []string{"q1", "q1", "q2", "q3"}; !slices.Equal(got, want) {
		t.Fatalf("Match(a.b) = %v, want %v", got, want)
	}
	if tr.Remove("a.*", "q9") || tr.Remove("a.b", "q1") || tr.Remove("x.y.z", "q1") {
		t.Fatal("Remove of an absent pair returned true")
	}
	if !tr.Remove("a.*", "q1") || tr.Remove("a.*", "q1") {
		t.Fatal("Remove(a.*, q1) not true exactly once")
	}
	if got, want := matchAll(tr, "a.b"), []string{"q1", "q2", "q3"}; !slices.Equal(got, want) {
		t.Fatalf("Match(a.b) = %v, want %v", got, want)
	}
	for _, p := range [][2]string{{"a.#", "q1"}, {"a.*", "q2"}, {"#", "q3"}} {
		if !tr.Remove(p[0], p[1]) {
			t.Fatalf("Remove(%q, %q) = false", p[0], p[1])
		}
	}
	if tr.Len() != 0 {
		t.Fatalf("Len = %d, want 0", tr.Len())
	}
	r := &tr.root
	if r.words != nil || r.star != nil || r.hash != nil || r.vals != nil {
		t.Fatalf("root not pruned: %+v", r)
	}
}

func TestTopicTrieManyValues(t *testing.T) {
	// Enough values on one node to switch to the index and back.
	var tr topicTrie[int]
	for i := range 100 {
		tr.Add("x.#", i)
		tr.Add("x.#", i)
	}
	if tr.Len() != 100 {
		t.Fatalf("Len = %d", tr.Len())
	}
	for i := 0; i < 100; i += 2 {
		if !tr.Remove("x.#", i) {
			t.Fatalf("Remove %d", i)
		}
	}
	var got []int
	tr.Match("x.y", func(v int) { got = append(got, v) })
	slices.Sort(got)
	for i, v := range got {
		if v != 2*i+1 {
			t.Fatalf("Match = %v", got)
		}
	}
	for i := 1; i < 100; i += 2 {
		if !tr.Remove("x.#", i) {
			t.Fatalf("Remove %d", i)
		}
	}
	if tr.Len() != 0 || tr.root.words != nil {
		t.Fatalf("not empty: Len %d", tr.Len())
	}
}

func matchAll(tr *topicTrie[string], key string) []string {
	var got []string
	tr.Match(key, func(v string) { got = append(got, v) })
	slices.Sort(got)
	return got
}

// randomTopic returns a random pattern (wild) or key over a small alphabet
// so that matches are frequent.
func randomTopic(r *rand.Rand, wild bool) string {
	words := []string{"a", "b", "", "ab"}
	if wild {
		words = append(words, "*", "#", "#", "*")
	}
	n := r.IntN(6)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	return strings.Join(parts, ".")
}

// checkTrie compares the trie's answer for key with topicMatch on every
// pattern, requiring each matching pair to be visited exactly once.
func checkTrie(t *testing.T, tr *topicTrie[int], patterns []string, key string) {
	t.Helper()
	count := make(map[int]int)
	tr.Match(key, func(v int) { count[v]++ })
	for i, p := range patterns {
		want := 0
		if topicMatch(p, key) {
			want = 1
		}
		if count[i] != want {
			t.Fatalf("pattern %q key %q: trie visited %d times, want %d", p, key, count[i], want)
		}
	}
}

func TestTopicTrieRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var tr topicTrie[int]
		patterns := make([]string, 1+r.IntN(40))
		for i := range patterns {
			patterns[i] = randomTopic(r, true)
			tr.Add(patterns[i], i)
		}
		for range 50 {
			checkTrie(t, &tr, patterns, randomTopic(r, false))
		}
		// Remove half of the patterns and check again.
		for i := 0; i < len(patterns); i += 2 {
			if !tr.Remove(patterns[i], i) {
				t.Fatalf("round %d: Remove(%q, %d) = false", round, patterns[i], i)
			}
			patterns[i] = "\x00never" // matches nothing in the alphabet
		}
		for range 50 {
			checkTrie(t, &tr, patterns, randomTopic(r, false))
		}
	}
}

func TestTopicTrieManyHashes(t *testing.T) {
	// Without memoisation this pattern would take exponential time and
	// visit its value many times.
	p := strings.Repeat("#.a.", 12) + "#"
	var tr topicTrie[int]
	tr.Add(p, 1)
	key := strings.Repeat("a.", 60) + "a"
	n := 0
	tr.Match(key, func(int) { n++ })
	if n != 1 {
		t.Fatalf("visited %d times, want 1", n)
	}
	if !topicMatch(p, key) {
		t.Fatal("topicMatch = false")
	}
}

func FuzzTopicMatch(f *testing.F) {
	for _, c := range topicCases {
		f.Add(c.pattern, c.key)
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		var tr topicTrie[int]
		tr.Add(pattern, 1)
		// Also add some extra patterns to make the trie more interesting.
		tr.Add("#", 2)
		tr.Add(pattern+".#", 3)
		n := 0
		tr.Match(key, func(v int) {
			if v == 1 {
				n++
			}
		})
		want := 0
		if topicMatch(pattern, key) {
			want = 1
		}
		if n != want {
			t.Fatalf("pattern %q key %q: trie visited %d times, topicMatch says %d", pattern, key, n, want)
		}
		if !tr.Remove(pattern, 1) || tr.Len() != 2 {
			t.Fatalf("Remove(%q) failed", pattern)
		}
	})
}

// benchTrie returns a trie of n patterns of the kind a busy topic exchange
// holds: mostly literal words (from a vocabulary of vocab words) with some
// "*" and a few "#", and keys to match against it.
func benchTrie(n, vocab int) (*topicTrie[int], []string) {
	r := rand.New(rand.NewPCG(3, 4))
	word := func() string { return fmt.Sprintf("w%d", r.IntN(vocab)) }
	var tr topicTrie[int]
	for i := range n {
		parts := make([]string, 2+r.IntN(4))
		for j := range parts {
			switch x := r.IntN(20); {
			case x == 0:
				parts[j] = "#"
			case x < 4:
				parts[j] = "*"
			default:
				parts[j] = word()
			}
		}
		tr.Add(strings.Join(parts, "."), i)
	}
	keys := make([]string, 256)
	for i := range keys {
		parts := make([]string, 2+r.IntN(4))
		for j := range parts {
			parts[j] = word()
		}
		keys[i] = strings.Join(parts, ".")
	}
	return &tr, keys
}

func BenchmarkTopicTrieMatch(b *testing.B) {
	for _, c := range []struct{ n, vocab int }{{100, 50}, {10000, 50}, {10000, 1000}} {
		b.Run(fmt.Sprintf("patterns=%d/vocab=%d", c.n, c.vocab), func(b *testing.B) {
			tr, keys := benchTrie(c.n, c.vocab)
			hits := 0
			visit := func(int) { hits++ }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				tr.Match(keys[i%len(keys)], visit)
			}
			b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
		})
	}
}

func BenchmarkTopicMatchDirect(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		topicMatch("a.*.c.#", "a.b.c.d.e")
	}
}
