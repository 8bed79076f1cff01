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

// MetaRecordsForTest lists the cluster buckets' records whose key starts
// with prefix, as key → JSON value.
func MetaRecordsForTest(r *Router, prefix string) (map[string]string, error) {
	l, err := r.listRecords(prefix)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, it := range l {
		out[it.e.Key] = string(it.e.Value)
	}
	return out, nil
}

// CutOffForTest is what the router last told its store (SetCutOff).
func CutOffForTest(r *Router) error { return r.store.CutOff() }
