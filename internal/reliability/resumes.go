package reliability

import (
	"slices"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// Resumes measures, for every request that process proc was polling when it
// was stopped at `at` and that was not finished by then, how long it took
// until another process checked its status: the time from `at` to the
// first status call of that request by another process. done maps request
// ids to when their job finished (from the terminal events). A request
// never checked again is returned in missing.
func Resumes(calls []Call, proc int, at time.Time, done map[string]time.Time) (resumes []time.Duration, missing []string) {
	last := map[string]Call{}
	for _, c := range calls {
		if c.Op == campaign.OpStatus && c.Time.Before(at) && c.RequestID != "" {
			last[c.RequestID] = c
		}
	}
	for id, c := range last {
		if c.Proc != proc || c.Status != "In Progress" {
			continue
		}
		if t, ok := done[id]; ok && t.Before(at) {
			continue
		}
		// A process stopped with SIGTERM finishes the checks it is in (and
		// the pull it waits on) before it hands its jobs back: a request it
		// found finished itself was not handed over.
		if slices.ContainsFunc(calls, func(n Call) bool {
			return n.Op == campaign.OpStatus && n.RequestID == id && n.Proc == proc && !n.Time.Before(at) && terminalStatus(n.Status)
		}) {
			continue
		}
		i := slices.IndexFunc(calls, func(n Call) bool {
			return n.Op == campaign.OpStatus && n.RequestID == id && n.Proc != proc && !n.Time.Before(at)
		})
		if i < 0 {
			missing = append(missing, id)
			continue
		}
		resumes = append(resumes, calls[i].Time.Sub(at))
	}
	slices.Sort(resumes)
	return resumes, missing
}

func terminalStatus(s string) bool {
	return s == "Success" || s == "Failed" || s == "Aborted"
}

// Finished maps request ids to when their job finished.
func Finished(events []ingest.Event) map[string]time.Time {
	m := map[string]time.Time{}
	for _, ev := range events {
		if ev.Type.Terminal() && ev.RequestID != "" {
			m[ev.RequestID] = time.Time(ev.FinishedAt)
		}
	}
	return m
}
