package ingest

import (
	"math"
	"testing"
	"time"
)

func TestScheduleBase(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 60 * time.Second}
	// Checks at 0, 7.5s, 11.25s, 16.875s, … (×1.5 since the trigger).
	want := []time.Duration{0, 7500 * time.Millisecond, 3750 * time.Millisecond, 5625 * time.Millisecond,
		8437500 * time.Microsecond, 12656250 * time.Microsecond, 18984375 * time.Microsecond, 28476562500 * time.Nanosecond,
		42714843750 * time.Nanosecond, 60 * time.Second, 60 * time.Second}
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
// target 1 + ⌈log1.5(T / 5 s)⌉ for T > 5 s, with a detection lag of at
// most T/2; only an ingestion of at most 5 s that was not over at the
// immediate first check pays one check more.
func TestSchedulePolls(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 60 * time.Second}
	tests := []struct {
		d     time.Duration
		polls int
	}{
		{d: 0, polls: 1},
		{d: 5 * time.Second, polls: 2},
		{d: 6 * time.Second, polls: 2},
		{d: 8 * time.Second, polls: 3},
		{d: 30 * time.Second, polls: 6},
		{d: time.Minute, polls: 8},
		{d: 2 * time.Minute, polls: 9},
		{d: 10 * time.Minute, polls: 17},
		{d: time.Hour, polls: 67},
	}
	for _, tt := range tests {
		polls, lag := s.Polls(tt.d)
		if polls != tt.polls {
			t.Errorf("Polls(%s) = %d, want %d", tt.d, polls, tt.polls)
		}
		if lag < 0 || lag > s.Max {
			t.Errorf("Polls(%s) lag %s outside [0, %s]", tt.d, lag, s.Max)
		}
		if tt.d > 5*time.Second && tt.d <= 2*time.Minute {
			bound := 1 + int(math.Ceil(math.Log(tt.d.Seconds()/5)/math.Log(1.5)))
			if polls > bound {
				t.Errorf("Polls(%s) = %d, above the target %d", tt.d, polls, bound)
			}
			if lag > tt.d/2 {
				t.Errorf("Polls(%s) lag %s, more than half the duration", tt.d, lag)
			}
		}
	}
	// The target holds for every duration between Initial and the cap.
	for d := 5*time.Second + time.Millisecond; d <= 2*time.Minute; d += 97 * time.Millisecond {
		polls, lag := s.Polls(d)
		bound := 1 + int(math.Ceil(math.Log(d.Seconds()/5)/math.Log(1.5)))
		if polls > bound || lag > d/2 {
			t.Fatalf("Polls(%s) = %d, lag %s; want at most %d and %s", d, polls, lag, bound, d/2)
		}
	}
}
