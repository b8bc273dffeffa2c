package consumer

import "sync"

// starters run jobs' first steps (admission, the trigger and the first
// status check) on a fixed set of long-lived goroutines. A first step goes
// through deep HTTP, JSON and NATS call chains; on a goroutine started per
// job it would grow a fresh stack every time, on these it runs on stacks
// that have grown once. A burst waits in the queue as closures, not as
// goroutines.
type starters struct {
	queue chan func()
	wg    sync.WaitGroup
}

// newStarters starts n goroutines. queued bounds the first steps waiting
// at once: the consumer admits at most MaxInFlight jobs, so with queued
// at MaxInFlight, run never blocks.
func newStarters(n, queued int) *starters {
	s := &starters{queue: make(chan func(), queued)}
	for range n {
		s.wg.Go(func() {
			for step := range s.queue {
				step()
			}
		})
	}
	return s
}

// run queues step for the next free goroutine.
func (s *starters) run(step func()) { s.queue <- step }

// stop runs what is queued, then stops the goroutines and waits for them.
// Nothing may be queued after it is called.
func (s *starters) stop() {
	close(s.queue)
	s.wg.Wait()
}
