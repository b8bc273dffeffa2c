package consumer

import (
	"slices"
	"testing"
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

// TestSlotsArriving: a command whose record is being read counts against
// the room to pull from expect on, and takes a slot, or parks, only once
// it arrived. After drain, a command that arrives is given back.
func TestSlotsArriving(t *testing.T) {
	s := newSlots(2, 10, nil)
	var started, givenBack []string
	cmd := func(name string) parkedCmd {
		return parkedCmd{
			start:    func() { started = append(started, name) },
			giveBack: func() { givenBack = append(givenBack, name) },
		}
	}
	s.expect()
	s.expect()
	if room := s.room(); room != 0 {
		t.Errorf("room %d with two commands arriving for two slots, want 0", room)
	}
	if running, parked := s.used(); running != 0 || parked != 0 {
		t.Errorf("running %d, parked %d while both arrive; want 0 and 0", running, parked)
	}
	s.arrived("acme", cmd("a1"))
	if running, _ := s.used(); running != 1 || s.room() != 0 {
		t.Errorf("running %d, room %d after one arrived; want 1 and 0", running, s.room())
	}
	s.expect()
	s.arrived("acme", cmd("a2"))
	s.arrived("acme", cmd("a3")) // both slots taken: parked
	if running, parked := s.used(); running != 2 || parked != 1 {
		t.Errorf("running %d, parked %d; want 2 and 1", running, parked)
	}
	if gb := s.drain(); len(gb) != 1 {
		t.Errorf("drain gave back %d, want the parked one", len(gb))
	}
	s.expect()
	s.arrived("acme", cmd("a4"))
	if want := []string{"a1", "a2"}; !slices.Equal(started, want) {
		t.Errorf("started %v, want %v", started, want)
	}
	if want := []string{"a4"}; !slices.Equal(givenBack, want) {
		t.Errorf("given back at once %v, want %v: it arrived after drain", givenBack, want)
	}
}

// TestSlotsArrivedParkedWakes: a command that parks when its record read
// has come gives back the room it held, and wakes the pull loop waiting on
// it; one that takes a slot changes no room and wakes nothing.
func TestSlotsArrivedParkedWakes(t *testing.T) {
	s := newSlots(4, 10, shares{"acme": 1})
	noop := parkedCmd{start: func() {}, giveBack: func() {}}
	woken := func() bool {
		select {
		case <-s.released:
			return true
		default:
			return false
		}
	}
	s.expect()
	s.expect()
	s.arrived("acme", noop) // acme's one slot
	if woken() {
		t.Error("a command that took a slot woke the pull loop")
	}
	if room := s.room(); room != 2 {
		t.Errorf("room %d with one running and one arriving of 4, want 2", room)
	}
	s.arrived("acme", noop) // over acme's share: parked
	if !woken() {
		t.Error("a command that parked on arrival did not wake the pull loop")
	}
	if room := s.room(); room != 3 {
		t.Errorf("room %d with one running and one parked of 4, want 3", room)
	}
}
