package clustertest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPortsDistinctAndFree: ports claimed at once by many tests are all
// distinct, each can be listened on, each is claimed by a file until its
// test ends, and they lie below the kernel's ephemeral range.
func TestPortsDistinctAndFree(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var claims []string
	t.Run("claim", func(t *testing.T) {
		for range 8 {
			t.Run("one", func(t *testing.T) {
				t.Parallel()
				addrs := Ports(t, 3)
				if len(addrs) != 3 {
					t.Fatalf("got %v, want 3 addresses", addrs)
				}
				for _, a := range addrs {
					ln, err := net.Listen("tcp", a)
					if err != nil {
						t.Fatalf("listen on %s: %v", a, err)
					}
					ln.Close()
					_, port, _ := net.SplitHostPort(a)
					claim := filepath.Join(os.TempDir(), "warren-test-ports", port)
					if _, err := os.Stat(claim); err != nil {
						t.Errorf("%s: no claim while the test runs: %v", a, err)
					}
					if !strings.HasPrefix(a, "127.0.0.1:") {
						t.Errorf("%s is not a loopback address", a)
					}
					if lo := ephemeralLow(); lo-lowest >= 1000 && (portOf(a) < lowest || portOf(a) >= lo) {
						t.Errorf("%s is not in [%d, %d)", a, lowest, lo)
					}
					mu.Lock()
					if seen[a] {
						t.Errorf("%s handed out twice", a)
					}
					seen[a] = true
					claims = append(claims, claim)
					mu.Unlock()
				}
			})
		}
	})
	if len(seen) != 24 {
		t.Errorf("%d distinct ports, want 24", len(seen))
	}
	for _, c := range claims {
		if _, err := os.Stat(c); err == nil {
			t.Errorf("claim %s left after its test ended", c)
		}
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}
