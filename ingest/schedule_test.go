package ingest

import (
	"math"
	"testing"
	"time"
)

func TestScheduleBase(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 60 * time.Second}
	want := []time.Duration{0, 5 * time.Second, 7500 * time.Millisecond, 11250 * time.Millisecond,
		16875 * time.Millisecond, 25312500 * time.Microsecond, 37968750 * time.Microsecond, 56953125 * time.Microsecond,
		60 * time.Second, 60 * time.Second}
	for n, w := range want {
		if got := s.Base(n); got != w {
			t.Errorf("Base(%d) = %s, want %s", n, got, w)
		}
	}
	if got := s.Base(10_000); got != 60*time.Second {
		t.Errorf("Base(10000) = %s, want the cap", got)
	}
}

func TestScheduleJitter(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 60 * time.Second, Jitter: 0.1}
	for n := 1; n < 12; n++ {
		for range 100 {
			d, base := s.Next(n), s.Base(n)
			if d > base || d < base-base/10 {
				t.Fatalf("Next(%d) = %s outside [%s, %s]", n, d, base-base/10, base)
			}
		}
	}
}

// TestSchedulePolls pins the polls a job makes below the cap against the
// target 1 + ⌈log1.5(T / 5 s)⌉ (+1 for the immediate first check).
func TestSchedulePolls(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 60 * time.Second}
	tests := []struct {
		d        time.Duration
		polls    int
		maxLag   time.Duration
		capBound bool
	}{
		{d: 0, polls: 1},
		{d: 5 * time.Second, polls: 2},
		{d: time.Minute, polls: 6, maxLag: 30 * time.Second},
		{d: 10 * time.Minute, polls: 16, maxLag: time.Minute},
		{d: time.Hour, polls: 66, maxLag: time.Minute},
	}
	for _, tt := range tests {
		polls, lag := s.Polls(tt.d)
		if polls != tt.polls {
			t.Errorf("Polls(%s) = %d, want %d", tt.d, polls, tt.polls)
		}
		if lag < 0 || lag > s.Max {
			t.Errorf("Polls(%s) lag %s outside [0, %s]", tt.d, lag, s.Max)
		}
		if tt.d >= 5*time.Second && tt.d <= time.Minute {
			bound := 1 + int(math.Ceil(math.Log(tt.d.Seconds()/5)/math.Log(1.5)))
			if polls > bound+1 {
				t.Errorf("Polls(%s) = %d, above the target %d (+1 immediate check)", tt.d, polls, bound)
			}
		}
	}
}
