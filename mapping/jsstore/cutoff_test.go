package jsstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestWriteCtxEndsWhenCutOff: a write's context ends with the reason
// when the node is cut off (also one made before), not after
// apiTimeout; once the node is back a new write's context is live, and
// CutOff says which state holds.
func TestWriteCtxEndsWhenCutOff(t *testing.T) {
	s := &Store{}
	if err := s.CutOff(); err != nil {
		t.Fatalf("CutOff before any SetCutOff: %v", err)
	}
	ctx, cancel := s.writeCtx()
	defer cancel()
	if cutOffCause(ctx) != nil || ctx.Err() != nil {
		t.Fatalf("a fresh write context is done: %v", ctx.Err())
	}
	reason := fmt.Errorf("%w: n3 hears nobody", ErrCutOff)
	s.SetCutOff(reason)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the write in progress did not end when the node was cut off")
	}
	if c := cutOffCause(ctx); c != reason {
		t.Fatalf("cause %v, want %v", c, reason)
	}
	if err := s.CutOff(); err != reason {
		t.Fatalf("CutOff() = %v, want the reason", err)
	}
	s.SetCutOff(fmt.Errorf("%w: again", ErrCutOff)) // the first reason stays
	ctx2, cancel2 := s.writeCtx()
	defer cancel2()
	select {
	case <-ctx2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a write made while cut off did not end")
	}
	if c := cutOffCause(ctx2); c != reason {
		t.Fatalf("cause of a write made while cut off: %v, want %v", c, reason)
	}

	s.SetCutOff(nil)
	if err := s.CutOff(); err != nil {
		t.Fatalf("CutOff() after the node is back: %v", err)
	}
	ctx3, cancel3 := s.writeCtx()
	if ctx3.Err() != nil || cutOffCause(ctx3) != nil {
		t.Fatalf("a write after the node is back: %v", ctx3.Err())
	}
	if d, ok := ctx3.Deadline(); !ok || time.Until(d) > apiTimeout {
		t.Fatalf("deadline %v, want within apiTimeout", d)
	}
	cancel3()
	if !errors.Is(ctx3.Err(), context.Canceled) || cutOffCause(ctx3) != nil {
		t.Fatalf("after cancel: %v (cause %v)", ctx3.Err(), context.Cause(ctx3))
	}
}
