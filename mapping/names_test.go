package mapping

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestNameValid(t *testing.T) {
	for _, name := range []string{"", "q", "amq.direct", "my-queue_1:a", "with space", "a/b", "ü日本",
		"*.#>", strings.Repeat("x", 255), strings.Repeat("é", 127)} {
		if err := validName(name); err != nil {
			t.Errorf("validName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{strings.Repeat("x", 256), strings.Repeat("é", 128), "\xff", "a\xc3"} {
		if err := validName(name); err == nil {
			t.Errorf("validName(%q) = nil", name)
		}
	}
	if err := validName(strings.Repeat("x", 300)); err == nil || !strings.Contains(err.Error(), "300 bytes") {
		t.Errorf("error text: %v", err)
	}
}

func TestNameEscapeToken(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "_"},
		{"orders", "orders"},
		{"Orders-2024", "Orders-2024"},
		{"_", "_5F"},
		{"a_b", "a_5Fb"},
		{".", "_2E"},
		{"a.b", "a_2Eb"},
		{"*", "_2A"},
		{">", "_3E"},
		{" ", "_20"},
		{"/", "_2F"},
		{"amq.gen-XyZ", "amq_2Egen-XyZ"},
		{"é", "_C3_A9"},
		{"\x00", "_00"},
		{"\xff", "_FF"},
		{"_5F", "_5F5F"},
	} {
		if got := escapeToken(c.in); got != c.want {
			t.Errorf("escapeToken(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNameEscapeRoundTrip(t *testing.T) {
	// A tricky set: every pair must escape differently.
	set := []string{"", "_", "__", "_5F", "5F", "_2E", ".", "..", "a.b", "a_2Eb", "a_b", "a-b",
		"a b", "a/b", "a\\b", "*", ">", "#", "a*", "A", "a", "ü", "u\u0308", "\x00", "\xff", "\xc3",
		"é", "日本", "-", "--", "_-", "-_", "0", "00", "_00", "_FF", "_ff",
		strings.Repeat("x", 255), strings.Repeat(".", 255)}
	seen := make(map[string]string)
	for _, s := range set {
		tok := escapeToken(s)
		if !tokenRE.MatchString(tok) {
			t.Errorf("escapeToken(%q) = %q has bad characters", s, tok)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("escapeToken(%q) = escapeToken(%q) = %q", s, other, tok)
		}
		seen[tok] = s
		back, err := unescapeToken(tok)
		if err != nil || back != s {
			t.Errorf("unescapeToken(%q) = %q, %v; want %q", tok, back, err, s)
		}
		if len(tok) > 3*len(s)+1 {
			t.Errorf("escapeToken(%q) too long: %d", s, len(tok))
		}
	}
}

func TestNameUnescapeBad(t *testing.T) {
	for _, tok := range []string{"", "a.b", "a b", "_5", "_5f", "_ZZ", "a_", "a_4", "_41", "_2D",
		"_30", "é", "a*", "__5F"} {
		if s, err := unescapeToken(tok); err == nil {
			t.Errorf("unescapeToken(%q) = %q, nil; want an error", tok, s)
		} else if !errors.Is(err, errBadToken) {
			t.Errorf("unescapeToken(%q) error %v is not errBadToken", tok, err)
		}
	}
}

func TestNameLogName(t *testing.T) {
	long := strings.Repeat("q", 300)
	names := make(map[string][2]string)
	for _, vq := range [][2]string{
		{"/", "orders"}, {"/", "orders."}, {"other", "orders"}, {"", "/orders"}, {"/", ""}, {"", "/"},
		{"a\x00b", "c"}, {"a", "b\x00c"}, {"/", long}, {"/", long + "x"},
		{"/", strings.Repeat("é", 100)}, {"/", strings.Repeat("a", 31) + "."},
		{"/", strings.Repeat("a", 30) + "."}, {"/", strings.Repeat("a", 29) + "."},
	} {
		n := logName(vq[0], vq[1])
		if len(n) > 64 || !tokenRE.MatchString(n) {
			t.Errorf("logName(%q, %q) = %q: bad length or characters", vq[0], vq[1], n)
		}
		if n != logName(vq[0], vq[1]) {
			t.Errorf("logName(%q, %q) not deterministic", vq[0], vq[1])
		}
		if other, ok := names[n]; ok {
			t.Errorf("logName(%q) = logName(%q) = %q", vq, other, n)
		}
		names[n] = vq
		// The prefix is a whole number of escapes of the queue name.
		prefix := n[:len(n)-17]
		if _, err := unescapeToken(prefix); err != nil && prefix != "" {
			t.Errorf("logName(%q, %q) prefix %q cuts an escape: %v", vq[0], vq[1], prefix, err)
		}
		if esc := escapeToken(vq[1]); !strings.HasPrefix(esc, prefix) || len(prefix) < min(len(esc), 30) {
			t.Errorf("logName(%q, %q) prefix %q is not readable", vq[0], vq[1], prefix)
		}
	}
	if got := logName("/", "orders"); !strings.HasPrefix(got, "orders_") || len(got) != len("orders_")+16 {
		t.Errorf("logName(/, orders) = %q", got)
	}
}

func FuzzEscapeToken(f *testing.F) {
	for _, s := range []string{"", "_", "a.b", "_5F", "é", "\xff", "*>", "a b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := escapeToken(s)
		if !tokenRE.MatchString(tok) {
			t.Fatalf("escapeToken(%q) = %q has bad characters", s, tok)
		}
		back, err := unescapeToken(tok)
		if err != nil || back != s {
			t.Fatalf("unescapeToken(escapeToken(%q)) = %q, %v", s, back, err)
		}
		// The other way round: a string accepted by unescapeToken is a
		// canonical escape.
		if u, err := unescapeToken(s); err == nil && escapeToken(u) != s {
			t.Fatalf("escapeToken(unescapeToken(%q)) = %q", s, escapeToken(u))
		}
	})
}
