package jsstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkLayout refuses a data directory written in the other mode, before
// nats-server touches it. Either way round the data would be lost: a
// clustered server removes streams its meta group does not know of, and
// a single node would not find a cluster node's metadata bucket and
// would delete its logs as orphans. A cluster node also refuses another
// node's directory (its bucket carries the node name).
func checkLayout(dir string, c *ClusterConfig) error {
	js := filepath.Join(dir, "jetstream")
	_, err := os.Stat(filepath.Join(js, "$SYS", "_js_", "_meta_"))
	clusterDir := err == nil
	streams, _ := os.ReadDir(filepath.Join(js, "$G", "streams"))
	switch {
	case c == nil && clusterDir:
		return fmt.Errorf("jsstore: data directory %s belongs to a cluster node; start it with its cluster settings (--node-name, --cluster-addr, --cluster-peers, --cluster-secret)", dir)
	case c != nil && !clusterDir && len(streams) > 0:
		return fmt.Errorf("jsstore: data directory %s holds a single node's data, which cannot become a cluster node's yet (see docs/cluster.md); give the node an empty data directory", dir)
	case c != nil:
		own := "KV_" + bucketName(c)
		for _, e := range streams {
			if n := e.Name(); strings.HasPrefix(n, "KV_"+metaBucket+"_") && n != own {
				return fmt.Errorf("jsstore: data directory %s belongs to cluster node %q, not %q", dir, strings.TrimPrefix(n, "KV_"+metaBucket+"_"), c.NodeName)
			}
		}
	}
	return nil
}
