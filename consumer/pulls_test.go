package consumer

import (
	"testing"
	"time"
)

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
