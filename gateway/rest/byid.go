package rest

import "sync"

// byID is a set of live objects by id, safe for concurrent use: the
// asynchronous RPC calls and the SSE sessions. Its zero value is ready.
type byID[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

func (b *byID[T]) add(id string, v T) {
	b.mu.Lock()
	if b.m == nil {
		b.m = map[string]T{}
	}
	b.m[id] = v
	b.mu.Unlock()
}

// get returns the object with id, or the zero T.
func (b *byID[T]) get(id string) T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[id]
}

func (b *byID[T]) remove(id string) {
	b.mu.Lock()
	delete(b.m, id)
	b.mu.Unlock()
}

// takeAll empties the set and returns what it held, so that the caller
// can close them without holding the lock.
func (b *byID[T]) takeAll() []T {
	b.mu.Lock()
	all := make([]T, 0, len(b.m))
	for _, v := range b.m {
		all = append(all, v)
	}
	clear(b.m)
	b.mu.Unlock()
	return all
}
