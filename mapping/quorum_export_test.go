package mapping

import "fmt"

// Test-only hooks for replicated quorum queues (ownership.go).

// QuorumLogName is quorumLogName.
func QuorumLogName(vhost, queue string) string { return quorumLogName(vhost, queue) }

// TookOverForTest reports whether r has loaded the quorum queue (it is
// its home and dispatches it).
func TookOverForTest(r *Router, vhost, queue string) bool {
	r.mu.RLock()
	vh := r.vhosts[vhost]
	r.mu.RUnlock()
	if vh == nil {
		return false
	}
	q := vh.queue(queue)
	if q == nil {
		return false
	}
	r.own.mu.Lock()
	defer r.own.mu.Unlock()
	_, ok := r.own.loaded[q]
	return ok
}

// LogCountForTest is the number of records in the queue's log.
func LogCountForTest(r *Router, vhost, queue string) (uint64, error) {
	_, _, n, err := r.store.LogState(quorumLogName(vhost, queue))
	return n, err
}

// CrashForTest stops r's embedded server as a killed process would
// (jsstore Store.Crash); the router is unusable afterwards.
func CrashForTest(r *Router) { r.store.Crash() }

// QuorumOnlineForTest is how many members of the queue's replicated log
// are current, as r sees it.
func QuorumOnlineForTest(r *Router, vhost, queue string) (int, string) {
	l, m, online, err := r.store.LogMembers(quorumLogName(vhost, queue))
	if err != nil {
		return 0, err.Error()
	}
	return len(online), fmt.Sprintf("leader %s members %v online %v", l, m, online)
}

// StepDownForTest asks the queue's log for another leader, as a
// rebalance or a partition would move it away from a live node.
func StepDownForTest(r *Router, vhost, queue string) error {
	return r.store.StepDownLog(quorumLogName(vhost, queue), "")
}
