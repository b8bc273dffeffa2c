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
