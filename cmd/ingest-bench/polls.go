package main

import (
	"fmt"
	"math"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// pollsPhase computes status checks and detection lag of the default
// schedule for a few ingestion durations (from Schedule.Polls, no waiting).
func pollsPhase(t *table) {
	var s ingest.Schedule // the defaults: 5s, ×1.5, 60s cap
	for _, d := range []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute, time.Hour} {
		polls, lag := s.Polls(d)
		label := "polls, default schedule, ingestion of " + fmtDur(d)
		target := pollsTarget(d)
		if uncapped, _ := (ingest.Schedule{Max: 1000 * time.Hour}).Polls(d); uncapped != polls {
			target = "none (waits capped at 60s)"
		}
		t.add(label, "status checks", fmt.Sprint(polls), target, "-")
		t.add(label, "detection lag", lag.Round(10*time.Millisecond).String(), "", "-")
	}
	// Every duration between Initial and 3 min, 10 ms apart: the worst
	// excess over the target and the worst lag relative to the duration.
	excess, worstLag, over := -1<<31, 0.0, 0
	for d := 5*time.Second + 10*time.Millisecond; d <= 3*time.Minute; d += 10 * time.Millisecond {
		polls, lag := s.Polls(d)
		bound := 1 + int(math.Ceil(math.Log(float64(d)/float64(5*time.Second))/math.Log(1.5)-1e-9))
		excess = max(excess, polls-bound)
		if polls > bound {
			over++
		}
		worstLag = max(worstLag, float64(lag)/float64(d))
	}
	label := "polls, default schedule, every duration in (5s, 3min]"
	t.add(label, "worst polls − target", fmt.Sprintf("%+d (%d of 17500 durations over)", excess, over), "≤ 0", "-")
	t.add(label, "worst lag / duration", fmt.Sprintf("%.0f %%", 100*worstLag), "", "-")
}

// pollsTarget is 1 + ⌈log1.5(d / 5s)⌉, the target below the cap.
func pollsTarget(d time.Duration) string {
	bound := 1 + int(math.Ceil(math.Log(float64(d)/float64(5*time.Second))/math.Log(1.5)-1e-9))
	return fmt.Sprintf("≤ %d", bound)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dmin", d/time.Minute)
	}
	return d.String()
}
