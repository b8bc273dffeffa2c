package ingest

import (
	"math"
	"math/rand/v2"
	"time"
)

// Schedule is the status polling schedule: the first status check right
// after the trigger (an instant ingestion is noticed at once), the second
// Initial·Factor after it, and each later one at Factor times the time
// since the trigger, the waits capped at Max. Below the cap an ingestion
// that takes T > Initial is checked at most 1 + ⌈log_Factor(T/Initial)⌉
// times and noticed at most (Factor-1)·T after its end; the immediate check
// costs one check more only to ingestions of at most Initial that were not
// over at once. Each wait is shortened by up to Jitter (a fraction) at
// random so that many jobs started together spread out.
type Schedule struct {
	Initial time.Duration // default 5s
	Max     time.Duration // default 60s
	Factor  float64       // default 1.5
	Jitter  float64       // default 0.1
}

func (s Schedule) withDefaults() Schedule {
	if s.Initial <= 0 {
		s.Initial = 5 * time.Second
	}
	if s.Max < s.Initial {
		s.Max = max(60*time.Second, s.Initial)
	}
	if s.Factor < 1 {
		s.Factor = 1.5
	}
	if s.Jitter < 0 || s.Jitter >= 1 {
		s.Jitter = 0.1
	}
	return s
}

// Base is the wait before status check n+1 once n checks (n ≥ 1) were made,
// without jitter: Initial·Factor after the immediate first check, then
// Initial·Factor^(n-1)·(Factor-1) (check n+1 at Initial·Factor^n after the
// trigger), capped by Max. With Factor 1 every wait is Initial.
func (s Schedule) Base(n int) time.Duration {
	s = s.withDefaults()
	if n < 1 {
		return 0
	}
	d := float64(s.Initial) * s.Factor
	if n > 1 && s.Factor > 1 {
		d = float64(s.Initial) * math.Pow(s.Factor, float64(n-1)) * (s.Factor - 1)
	}
	if d > float64(s.Max) || math.IsInf(d, 0) {
		return s.Max
	}
	return time.Duration(d)
}

// Next is Base(n) with jitter applied.
func (s Schedule) Next(n int) time.Duration {
	s = s.withDefaults()
	d := s.Base(n)
	return d - time.Duration(rand.Float64()*s.Jitter*float64(d))
}

// Polls returns how many status checks a job makes for an ingestion that
// takes d, and how long after d the job notices its end (the detection lag),
// using the schedule without jitter.
func (s Schedule) Polls(d time.Duration) (polls int, lag time.Duration) {
	var at time.Duration
	for n := 1; ; n++ {
		if at >= d {
			return n, at - d
		}
		at += s.Base(n)
	}
}
