package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Organizations tells each organization's share of a worker's jobs and its
// metric label value.
type Organizations interface {
	// Limit is the most jobs of org that run at once in this worker.
	Limit(org string) int
	// Label is org's metric label value, from a bounded set.
	Label(org string) string
}

// slots bound the jobs running at once, in all and per organization. The
// consumer pulls as many commands as there are free slots in all, and a few
// more only while jobs end often (pulls), so that no pulled command waits
// long for a slot; a command that finds no free slot, or whose organization
// has used up its share, is parked (it keeps its lease with heartbeats)
// until a slot it may use is released, so that one organization's backlog
// never stands in front of another's commands. At most maxParked commands
// are parked; then pulling waits.
type slots struct {
	orgs      Organizations
	max       int
	maxParked int
	released  chan struct{}
	// releasedAt is when a slot was last released (unix nanoseconds).
	releasedAt atomic.Int64

	mu      sync.Mutex
	running int
	// arriving is the commands pulled whose record read is on its way
	// (expect); they count against the room to pull like running jobs.
	arriving int
	// closed is set by drain: a command admitted after it is given back.
	closed  bool
	perOrg  map[string]int
	parked  map[string][]parkedCmd
	nParked int
	// turn is the organizations with parked commands, in round-robin order.
	turn []string
}

func newSlots(max, maxParked int, orgs Organizations) *slots {
	return &slots{
		orgs: orgs, max: max, maxParked: maxParked, released: make(chan struct{}, 1),
		perOrg: map[string]int{}, parked: map[string][]parkedCmd{},
	}
}

// room is how many commands the consumer may pull now: the free slots,
// or none while the parking is full.
func (s *slots) room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nParked >= s.maxParked && s.maxParked > 0 {
		return 0
	}
	return s.max - s.running - s.arriving
}

// expect counts a pulled command that is not admitted yet: its record is
// being read. arrived admits it.
func (s *slots) expect() {
	s.mu.Lock()
	s.arriving++
	s.mu.Unlock()
}

// arrived admits a command counted by expect. One that parks leaves room
// to pull that was not there, so it wakes waitRelease: the pull loop may
// be waiting on that room, and with every slot of the organizations that
// have commands held by long ingestions, no release would come to wake it
// (another organization's command behind the parked ones waited for the
// end of a 30 s ingestion).
func (s *slots) arrived(org string, cmd parkedCmd) {
	s.mu.Lock()
	s.arriving--
	if s.admitLocked(org, cmd) {
		s.notify()
	}
}

func (s *slots) used() (running, parked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.nParked
}

// parkedCmd is a command waiting for its organization's turn: start runs
// it, giveBack hands it back when the worker stops first.
type parkedCmd struct {
	start, giveBack func()
}

// admit starts cmd now when org has a free slot, else parks it. start is
// called without the lock held.
func (s *slots) admit(org string, cmd parkedCmd) {
	s.mu.Lock()
	s.admitLocked(org, cmd)
}

// admitLocked is admit with the lock held; it unlocks. It reports whether
// cmd was parked.
func (s *slots) admitLocked(org string, cmd parkedCmd) (parked bool) {
	if s.closed {
		s.mu.Unlock()
		cmd.giveBack()
		return false
	}
	if s.running < s.max && s.perOrg[org] < s.limit(org) {
		s.take(org)
		s.mu.Unlock()
		cmd.start()
		return false
	}
	if len(s.parked[org]) == 0 {
		s.turn = append(s.turn, org)
	}
	s.parked[org] = append(s.parked[org], cmd)
	s.nParked++
	s.mu.Unlock()
	return true
}

func (s *slots) limit(org string) int {
	if s.orgs == nil {
		return s.max
	}
	if n := s.orgs.Limit(org); n > 0 {
		return n
	}
	return s.max
}

func (s *slots) take(org string) {
	s.running++
	s.perOrg[org]++
}

// release frees org's slot, starts the next parked command that may run
// (organizations take turns), and wakes waitRelease.
func (s *slots) release(org string) {
	s.releasedAt.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.running--
	if s.perOrg[org]--; s.perOrg[org] <= 0 {
		delete(s.perOrg, org)
	}
	next := s.unpark()
	s.mu.Unlock()
	if next != nil {
		next()
	}
	s.notify()
}

// lastRelease is when a slot was last released (zero time when never).
func (s *slots) lastRelease() time.Time {
	if ns := s.releasedAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// notify wakes waitRelease: a slot was released, or the room to pull
// changed otherwise (a pull ended).
func (s *slots) notify() {
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// unpark takes the first parked command, in turn, whose organization has a
// free slot. The caller holds the lock.
func (s *slots) unpark() func() {
	if s.running >= s.max {
		return nil
	}
	for i, org := range s.turn {
		if s.perOrg[org] >= s.limit(org) {
			continue
		}
		q := s.parked[org]
		start := q[0].start
		s.parked[org] = q[1:]
		s.nParked--
		s.turn = append(s.turn[:i:i], s.turn[i+1:]...)
		if len(s.parked[org]) > 0 {
			s.turn = append(s.turn, org) // its next command waits for its next turn
		} else {
			delete(s.parked, org)
		}
		s.take(org)
		return start
	}
	return nil
}

// drain returns every parked command's hand-back, emptying the parking;
// a command admitted after it is given back at once.
func (s *slots) drain() []func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var out []func()
	for _, q := range s.parked {
		for _, p := range q {
			out = append(out, p.giveBack)
		}
	}
	s.parked, s.turn, s.nParked = map[string][]parkedCmd{}, nil, 0
	return out
}

// waitRelease waits until a slot is released, notify is called, or ctx
// ends.
func (s *slots) waitRelease(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.released:
	}
}
