package mapping

import "time"

// SetMetaApplyDelay makes r's metadata watcher wait d before each change
// it applies (tests only).
func SetMetaApplyDelay(r *Router, d time.Duration) { r.meta.applyDelay.Store(int64(d)) }

// DropAtStartForTest makes node's start-up listings leave out the
// records whose key drop reports, as a replica that still lags would;
// DropAtStartForTest("", nil) ends it. Set it only while no node opens
// but the one meant.
func DropAtStartForTest(node string, drop func(key string) bool) {
	if drop == nil {
		listFilterForTest = nil
		return
	}
	listFilterForTest = func(n, _ string, l []loaded) []loaded {
		if n != node {
			return l
		}
		var out []loaded
		for _, it := range l {
			if !drop(it.e.Key) {
				out = append(out, it)
			}
		}
		return out
	}
}
