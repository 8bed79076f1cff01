package mapping_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// TestDamagedStoreStillStarts: a truncated or corrupted block file of one
// queue's log is reported, the router still opens, the other queue is
// served in full and the damaged one keeps what can be read.
func TestDamagedStoreStillStarts(t *testing.T) {
	for _, damage := range []string{"truncate", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			r := openRouterAt(t, dir)
			c := connect(t, r)
			c.declareQueue(t, mapping.QueueSpec{Name: "good", Durable: true})
			c.declareQueue(t, mapping.QueueSpec{Name: "bad", Durable: true})
			var bodies []string
			for i := range 200 {
				bodies = append(bodies, fmt.Sprintf("m%03d-%0100d", i, i))
			}
			publishPersistent(t, c, "", "good", bodies...)
			publishPersistent(t, c, "", "bad", bodies...)
			r.Close()

			blocks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", "WL_bad*", "msgs", "*.blk"))
			if len(blocks) == 0 {
				t.Fatal("no block files for queue 'bad'")
			}
			for _, b := range blocks {
				fi, err := os.Stat(b)
				if err != nil {
					t.Fatal(err)
				}
				switch damage {
				case "truncate":
					os.Truncate(b, fi.Size()/2)
				case "corrupt":
					f, _ := os.OpenFile(b, os.O_RDWR, 0)
					junk := make([]byte, 64)
					for i := range junk {
						junk[i] = 0xA5
					}
					f.WriteAt(junk, fi.Size()/2)
					f.Close()
				}
			}
			// Index files describe the old block; remove them as a crash might.
			idx, _ := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", "WL_bad*", "msgs", "index.db"))
			for _, f := range idx {
				os.Remove(f)
			}

			r2 := openRouterAt(t, dir)
			c2 := connect(t, r2)
			got := c2.drain(t, "good")
			if len(got) != len(bodies) {
				t.Fatalf("intact queue: %d of %d messages", len(got), len(bodies))
			}
			bad := c2.drain(t, "bad")
			for _, b := range bad {
				found := false
				for _, w := range bodies {
					if b == w {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("damaged queue served a message that was never published: %q", b)
				}
			}
			t.Logf("%s: damaged queue kept %d of %d messages", damage, len(bad), len(bodies))
		})
	}
}
