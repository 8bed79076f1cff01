package mapping

// StepDownToForTest asks the queue's log for a new leader on node to, as
// the balancer or a rolling restart moves a quorum queue.
func StepDownToForTest(r *Router, vhost, queue, to string) error {
	return r.store.StepDownLog(quorumLogName(vhost, queue), to)
}
