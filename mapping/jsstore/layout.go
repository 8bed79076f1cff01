package jsstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodeFile, in a cluster node's data directory, names the node the
// directory belongs to. The metadata buckets are shared by the cluster,
// so nothing in the JetStream files says which node wrote them.
const nodeFile = "warren-cluster-node"

// checkLayout refuses a data directory written in the other mode, or by
// another node, before nats-server touches it. Either mode would lose
// the other's data: a clustered server removes streams its meta group
// does not know of, and a single node would not find the cluster's
// buckets and would delete its logs as orphans. A cluster node's
// directory names its node (nodeFile); a directory of the previous
// cluster layout (one metadata bucket per node, "warren_meta_<node>")
// is refused too: its metadata cannot be merged into the shared bucket.
// A new cluster node's directory is marked as its own here.
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
	case c == nil:
		return nil
	}
	for _, e := range streams {
		if n := e.Name(); strings.HasPrefix(n, "KV_"+metaBucket+"_") {
			return fmt.Errorf("jsstore: data directory %s was written by an earlier Warren whose cluster nodes kept their own metadata (bucket %s); it cannot join a cluster with shared metadata: give the node an empty data directory (docs/cluster.md)", dir, strings.TrimPrefix(n, "KV_"))
		}
	}
	path := filepath.Join(dir, nodeFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if owner := strings.TrimSpace(string(b)); owner != c.NodeName {
			return fmt.Errorf("jsstore: data directory %s belongs to cluster node %q, not %q", dir, owner, c.NodeName)
		}
		return nil
	case !os.IsNotExist(err):
		return fmt.Errorf("jsstore: data directory %s: %w", dir, err)
	case clusterDir:
		return fmt.Errorf("jsstore: data directory %s holds a cluster node's data but does not say which node's (%s is missing); give the node an empty data directory", dir, nodeFile)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("jsstore: data directory %s: %w", dir, err)
	}
	if err := os.WriteFile(path, []byte(c.NodeName+"\n"), 0o644); err != nil {
		return fmt.Errorf("jsstore: data directory %s: %w", dir, err)
	}
	return nil
}
