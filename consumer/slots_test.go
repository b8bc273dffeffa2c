package consumer

import (
	"slices"
	"testing"
	"time"
)

type shares map[string]int

func (s shares) Limit(org string) int    { return s[org] }
func (s shares) Label(org string) string { return org }

// TestSlots is the specification of job slots: a global limit, each
// organization's share, parking, and organizations taking turns.
func TestSlots(t *testing.T) {
	s := newSlots(4, 10, shares{"acme": 2})
	var started []string
	admit := func(org, name string) {
		s.admit(org, parkedCmd{start: func() { started = append(started, name) }, giveBack: func() {}})
	}
	for _, n := range []string{"a1", "a2", "a3", "a4"} {
		admit("acme", n)
	}
	admit("globex", "g1")
	if want := []string{"a1", "a2", "g1"}; !slices.Equal(started, want) {
		t.Fatalf("started %v, want %v: acme runs its share, globex is not held up", started, want)
	}
	if running, parked := s.used(); running != 3 || parked != 2 {
		t.Fatalf("running %d, parked %d; want 3 and 2", running, parked)
	}
	if room := s.room(); room != 1 {
		t.Errorf("room %d, want the one free slot", room)
	}
	admit("initech", "i1")
	admit("initech", "i2") // the global limit is reached: parked
	if running, parked := s.used(); running != 4 || parked != 3 {
		t.Fatalf("running %d, parked %d; want 4 and 3", running, parked)
	}
	s.release("globex") // a free slot: acme's turn comes first, but acme is at its share
	if want := []string{"a1", "a2", "g1", "i1", "i2"}; !slices.Equal(started, want) {
		t.Fatalf("started %v, want %v", started, want)
	}
	s.release("acme") // now acme may run its next
	if want := []string{"a1", "a2", "g1", "i1", "i2", "a3"}; !slices.Equal(started, want) {
		t.Fatalf("started %v, want %v", started, want)
	}
	if gb := s.drain(); len(gb) != 1 {
		t.Errorf("drain gave back %d commands, want the one still parked", len(gb))
	}
	if _, parked := s.used(); parked != 0 {
		t.Errorf("parked %d after drain", parked)
	}
}

// TestSlotsParkingFull: a full parking stops pulling.
func TestSlotsParkingFull(t *testing.T) {
	s := newSlots(2, 2, shares{"acme": 1})
	for range 3 {
		s.admit("acme", parkedCmd{start: func() {}, giveBack: func() {}})
	}
	if room := s.room(); room != 0 {
		t.Errorf("room %d with the parking full, want 0", room)
	}
}

// TestPullsNext is the specification of how much a pull asks for: the free
// slots not already asked for, plus, while jobs end often (a slot released
// within aheadWindow), a quarter of the slots less what is already parked;
// a second pull only for an eighth of the slots at least, and at most
// maxPulls at once.
func TestPullsNext(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		running, outstanding int
		parked               int
		in                   int           // pulls in progress
		released             time.Duration // since the last release; 0: never
		want                 int
	}{
		{name: "idle: every slot", want: 100},
		{name: "all running", running: 100},
		{name: "all asked for", outstanding: 100},
		{name: "no pull in progress: any room", running: 97, want: 3},
		{name: "a pull in progress: too little room", running: 80, outstanding: 10, in: 1},
		{name: "a pull in progress: an eighth of the slots", running: 80, outstanding: 8, in: 1, want: 12},
		{name: "jobs end often: ahead of the free slots", running: 100, released: time.Millisecond, want: 25},
		{name: "ahead, less what is asked for", running: 95, outstanding: 10, released: time.Millisecond, want: 20},
		{name: "ahead, less what waits parked", running: 100, parked: 5, released: time.Millisecond, want: 20},
		{name: "ahead: never more than a quarter parked", running: 100, parked: 25, released: time.Millisecond},
		{name: "jobs end seldom: not ahead", running: 100, released: time.Second},
		{name: "at most maxPulls", outstanding: 10, in: maxPulls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Consumer{cfg: Config{MaxInFlight: 100}.withDefaults()}
			s := newSlots(100, 10, nil)
			for range tc.running {
				s.take("acme")
			}
			for range tc.parked {
				s.admit("acme", parkedCmd{start: func() {}, giveBack: func() {}})
			}
			if tc.released > 0 {
				s.releasedAt.Store(time.Now().Add(-tc.released).UnixNano())
			}
			p := c.newPulls(s)
			p.outstanding, p.running = tc.outstanding, tc.in
			if got := p.next(); got != tc.want {
				t.Errorf("next() = %d, want %d", got, tc.want)
			}
		})
	}
}
