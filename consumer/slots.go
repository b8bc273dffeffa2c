package consumer

import "context"

// slots bound the jobs running at once: the consumer pulls only as many
// commands as there are free slots, so that no pulled command waits for a
// slot while its AckWait runs.
type slots struct {
	sem      chan struct{}
	released chan struct{}
}

func newSlots(n int) *slots {
	return &slots{sem: make(chan struct{}, n), released: make(chan struct{}, 1)}
}

func (s *slots) free() int { return cap(s.sem) - len(s.sem) }
func (s *slots) used() int { return len(s.sem) }
func (s *slots) take()     { s.sem <- struct{}{} }

// release frees a slot and wakes waitRelease.
func (s *slots) release() {
	<-s.sem
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// waitRelease waits until a slot is released or ctx ends.
func (s *slots) waitRelease(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.released:
	}
}
