package mapping

import "time"

// SetMetaApplyDelay makes r's metadata watcher wait d before each change
// it applies (tests only).
func SetMetaApplyDelay(r *Router, d time.Duration) { r.meta.applyDelay.Store(int64(d)) }
