package mapping

// ShadowCountForTest is how many shadow channels r's link keeps.
func (r *Router) ShadowCountForTest() int {
	if r.link == nil {
		return 0
	}
	r.link.shadowMu.Lock()
	defer r.link.shadowMu.Unlock()
	return len(r.link.shadows)
}

// MoveHomeForTest moves the home of r's copy of a queue, as the quorum
// code does when the stream's leader changes.
func (r *Router) MoveHomeForTest(vhost, name, to string) {
	vh, _ := r.VHost(vhost)
	q := vh.queue(name)
	from := q.homeNode()
	q.setHome(to)
	r.homeMoved(q, from, to)
}
