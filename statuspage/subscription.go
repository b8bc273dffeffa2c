package statuspage

import "sync"

// maxPending bounds the changed jobs a live stream collects between two
// sends; past it, the stream sends the whole view instead.
const maxPending = 256

// subscription collects the jobs changed since its last take.
type subscription struct {
	mu       sync.Mutex
	keys     map[jobKey]struct{}
	overflow bool
	ready    chan struct{} // holds a token when something changed
}

func (s *subscription) add(k jobKey) {
	s.mu.Lock()
	switch {
	case s.overflow:
	case len(s.keys) >= maxPending:
		s.overflow, s.keys = true, map[jobKey]struct{}{}
	default:
		s.keys[k] = struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// take returns the changed jobs and whether more changed than were kept.
func (s *subscription) take() ([]jobKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]jobKey, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	overflow := s.overflow
	s.keys, s.overflow = map[jobKey]struct{}{}, false
	return keys, overflow
}

func (ix *Index) subscribe() *subscription {
	s := &subscription{keys: map[jobKey]struct{}{}, ready: make(chan struct{}, 1)}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.subs[s] = struct{}{}
	return s
}

func (ix *Index) unsubscribe(s *subscription) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.subs, s)
}

// Version changes with every change of the index.
func (ix *Index) Version() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.version
}
