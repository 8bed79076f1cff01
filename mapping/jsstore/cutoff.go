package jsstore

import (
	"context"
	"errors"
	"sync"
)

// ErrCutOff is the class of the error a metadata write fails with while
// the node is cut off from the rest of its cluster (SetCutOff).
var ErrCutOff = errors.New("jsstore: cut off from the cluster")

// cutOff is the state SetCutOff sets: a context cancelled, with the
// reason as its cause, while the node is cut off. Metadata writes watch
// it (writeCtx): a replicated bucket cannot take a write from a node
// that reaches none of its other replicas, and the write would
// otherwise wait out apiTimeout and fail with "context deadline
// exceeded", which tells the client nothing.
type cutOff struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// SetCutOff says whether this node is cut off from its cluster (who
// decides it: the router, from the heartbeats it hears and the routes).
// With a reason (wrapping ErrCutOff) metadata writes in progress and to
// come fail with it; with nil they go to the cluster again.
func (s *Store) SetCutOff(reason error) {
	c := &s.cut
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx := c.currentLocked()
	switch {
	case reason != nil && ctx.Err() == nil:
		c.cancel(reason)
	case reason == nil && ctx.Err() != nil:
		c.ctx = nil // a fresh one on next use
	}
}

// CutOff is the reason SetCutOff gave, nil while the node is not cut off.
func (s *Store) CutOff() error {
	ctx := s.cut.current()
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}

func (c *cutOff) current() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.currentLocked()
}

// currentLocked is the context writes watch now (made on first use, and
// again after the node is back).
func (c *cutOff) currentLocked() context.Context {
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancelCause(context.Background())
	}
	return c.ctx
}

// writeCtx is the context of one metadata write: apiTimeout, ended
// early (with the reason as its cause) once the node is cut off.
func (s *Store) writeCtx() (context.Context, context.CancelFunc) {
	base, cancelBase := context.WithCancelCause(context.Background())
	ctx, cancel := context.WithTimeout(base, apiTimeout)
	cut := s.cut.current()
	stop := context.AfterFunc(cut, func() { cancelBase(context.Cause(cut)) })
	return ctx, func() {
		stop()
		cancel()
		cancelBase(nil)
	}
}

// cutOffCause is the cut-off reason that ended ctx, or nil.
func cutOffCause(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	if c := context.Cause(ctx); errors.Is(c, ErrCutOff) {
		return c
	}
	return nil
}

// Routed reports whether this node has a route to another node of its
// cluster now (false on a single node).
func (s *Store) Routed() bool { return s.cluster != nil && s.ns.NumRoutes() > 0 }
