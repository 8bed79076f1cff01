package mapping

import (
	"slices"
	"testing"
)

func TestParseMetaKey(t *testing.T) {
	for _, c := range []struct {
		key   string
		kind  byte
		parts []string
		bad   bool
	}{
		{key: "v._2F", kind: 'v', parts: []string{"/"}},
		{key: "u.guest", kind: 'u', parts: []string{"guest"}},
		{key: "p._2F.guest", kind: 'p', parts: []string{"/", "guest"}},
		{key: queueKey("/", "a.b_c"), kind: 'q', parts: []string{"/", "a.b_c"}},
		{key: exchangeKey("vh", ""), kind: 'x', parts: []string{"vh", ""}},
		{key: "b._2F.0123abcd", kind: 'b', parts: []string{"/", "0123abcd"}},
		{key: purgedKey("v", "q"), kind: 'd', parts: []string{"v", "q"}},
		{key: paramKey("shovel", "/", "s 1"), kind: 'r', parts: []string{"shovel", "/", "s 1"}},
		{key: "q.onlyvhost", bad: true},
		{key: "q.a.b.c", bad: true},
		{key: "z.a", bad: true},
		{key: "qq.a.b", bad: true},
		{key: "q._2.x", bad: true}, // half an escape
		{key: "u.a_", bad: true},
		{key: "", bad: true},
	} {
		k, err := parseMetaKey(c.key)
		if c.bad {
			if err == nil {
				t.Errorf("parseMetaKey(%q) = %c %q, want an error", c.key, k.kind, k.parts)
			}
			continue
		}
		if err != nil || k.kind != c.kind || !slices.Equal(k.parts, c.parts) {
			t.Errorf("parseMetaKey(%q) = %c %q %v, want %c %q", c.key, k.kind, k.parts, err, c.kind, c.parts)
		}
	}
}
