package mapping

// AdoptQueueForTest creates, on r, the copy of a queue homed on node home:
// for tests (this package's and cmd/warren's) until replicated metadata
// creates the copies on every node for real; the merge replaces it with
// that code. The copy holds no messages: the link serves it through home.
func (r *Router) AdoptQueueForTest(vhost string, s QueueSpec, home string) error {
	vh, err := r.VHost(vhost)
	if err != nil {
		return err
	}
	q := newQueue(vh, s)
	q.setHome(home)
	vh.mu.Lock()
	vh.queues[s.Name] = q
	vh.mu.Unlock()
	return nil
}
