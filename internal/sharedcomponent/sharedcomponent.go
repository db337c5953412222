// Package sharedcomponent keeps one instance per component id for the
// components that several pipelines share (the correlation processor in
// the traces, metrics and logs pipelines; the junction_ruler receiver in
// the logs and metrics pipelines): the collector creates the component once
// per pipeline, and each creation must get the same instance.
package sharedcomponent

import (
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds the live instances by component id. The zero value is ready.
type Map[T comparable] struct {
	mu sync.Mutex
	m  map[component.ID]T
}

// Get returns the instance of id, creating it with create the first time
// (and again after Remove). A failed create stores nothing.
func (s *Map[T]) Get(id component.ID, create func() (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[id]; ok {
		return v, nil
	}
	v, err := create()
	if err != nil {
		return v, err
	}
	if s.m == nil {
		s.m = map[component.ID]T{}
	}
	s.m[id] = v
	return v, nil
}

// Remove forgets id's instance if it is still v (a newer instance of the
// same id stays), so that the next Get creates a fresh one: a collector
// reloading its config shuts the old instances down and creates new ones.
func (s *Map[T]) Remove(id component.ID, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[id]; ok && cur == v {
		delete(s.m, id)
	}
}

// Has reports whether id has a live instance.
func (s *Map[T]) Has(id component.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}
