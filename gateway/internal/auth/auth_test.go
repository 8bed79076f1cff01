package auth

import (
	"fmt"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// TestAuthCacheBounded: the cache never grows past authCacheMax.
func TestAuthCacheBounded(t *testing.T) {
	var ac authCache
	u := &mapping.UserInfo{Name: "u"}
	for i := range authCacheMax + 100 {
		ac.put(authCacheKey(fmt.Sprint("Basic ", i), "127.0.0.1:1"), 1, u)
	}
	if n := ac.len(); n > authCacheMax {
		t.Fatalf("%d entries, want at most %d", n, authCacheMax)
	}
	k := authCacheKey("Basic x", "127.0.0.1:1")
	ac.put(k, 2, u)
	if ac.get(k, 2) != u || ac.get(k, 3) != nil {
		t.Fatal("entry not answered for its generation only")
	}
	// The first put of a new generation drops the stale entries.
	for i := range authCacheMax {
		ac.put(authCacheKey(fmt.Sprint("Basic n", i), "127.0.0.1:1"), 2, u)
	}
	if n := ac.len(); n > authCacheMax {
		t.Fatalf("%d entries, want at most %d", n, authCacheMax)
	}
}
