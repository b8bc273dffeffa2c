package reliability

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
)

// Report is what a run proved.
type Report struct {
	Commands       int
	TerminalEvents int
	// Lost counts commands without a terminal event.
	Lost int
	// DuplicateEvents counts terminal events beyond the first of a command.
	DuplicateEvents int
	// POSTs counts trigger calls; DuplicatePOSTs the ingestion requests a
	// command's mapping got beyond the expected (a second real ingestion).
	// A POST answered "In Progress" (a redelivery adopting its own request)
	// is a call but no new request.
	POSTs          int
	DuplicatePOSTs int
	// Outcomes counts terminal events by type.
	Outcomes map[ingest.EventType]int
	// Resumes are the measured resume or hand-over times (see Resumes).
	Resumes   []time.Duration
	MaxResume time.Duration
	// HandOvers are the measured hand-over times after a SIGTERM (from the
	// signal to the next check by another process).
	HandOvers   []time.Duration
	MaxHandOver time.Duration
	// Kills and Terms count the worker processes killed and stopped.
	Kills, Terms int
	// EventFaults counts the events-stream faults (publishes to
	// INGEST_EVENTS failing for EventFaultFor); TriggeredNotStored the
	// jobs whose triggered event was not stored and that recorded their
	// request in KV instead (worker log lines TriggeredNotStoredLog);
	// TriggeredSlow the jobs whose triggered event was not stored within
	// the patience and that recorded their request in KV too
	// (TriggeredSlowLog).
	EventFaults, TriggeredNotStored, TriggeredSlow int
	// Elapsed is the run's duration.
	Elapsed time.Duration
	// Problems names the first commands that broke a guarantee.
	Problems []string
}

// OK reports whether every command ended exactly once with one request.
func (r Report) OK() bool {
	return r.Lost == 0 && r.DuplicateEvents == 0 && r.DuplicatePOSTs == 0 && r.TerminalEvents == r.Commands
}

// Check compares the commands with the events and the simulator's
// requests. wantRequests is how many ingestion requests one command makes
// (1, or more with resubmits after Aborted).
func Check(cmds []ingest.Command, events []ingest.Event, sim *campaignsim.Server, wantRequests int) Report {
	r := Report{Commands: len(cmds), Outcomes: map[ingest.EventType]int{}}
	terminal := map[string]int{}
	for _, ev := range events {
		if !ev.Type.Terminal() {
			continue
		}
		r.TerminalEvents++
		r.Outcomes[ev.Type]++
		terminal[ev.CommandID]++
	}
	requests := map[string]int{}
	for _, q := range sim.Requests() {
		requests[q.Org+"/"+q.Mapping]++
	}
	for _, c := range sim.Calls() {
		if c.Op == campaign.OpTrigger {
			r.POSTs++
		}
	}
	problem := func(format string, args ...any) {
		if len(r.Problems) < 20 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, c := range cmds {
		switch n := terminal[c.ID]; {
		case n == 0:
			r.Lost++
			problem("%s: no terminal event", c.ID)
		case n > 1:
			r.DuplicateEvents += n - 1
			problem("%s: %d terminal events", c.ID, n)
		}
		if n := requests[c.Organization+"/"+c.MappingID]; n > wantRequests {
			r.DuplicatePOSTs += n - wantRequests
			problem("%s: %d ingestion requests on %s", c.ID, n, c.MappingID)
		}
	}
	return r
}

// AddResumes records resume times and keeps the largest.
func (r *Report) AddResumes(ds ...time.Duration) {
	r.Resumes = append(r.Resumes, ds...)
	for _, d := range ds {
		r.MaxResume = max(r.MaxResume, d)
	}
}

// AddHandOvers records hand-over times and keeps the largest.
func (r *Report) AddHandOvers(ds ...time.Duration) {
	r.HandOvers = append(r.HandOvers, ds...)
	for _, d := range ds {
		r.MaxHandOver = max(r.MaxHandOver, d)
	}
}

// WriteTable writes the report as the README's table.
func (r Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("commands", r.Commands)
	row("terminal events", r.TerminalEvents)
	row("lost", r.Lost)
	row("duplicate events", r.DuplicateEvents)
	row("duplicate POSTs", r.DuplicatePOSTs)
	row("POST calls", r.POSTs)
	row("workers killed / stopped", fmt.Sprintf("%d / %d", r.Kills, r.Terms))
	row("events-stream faults", r.EventFaults)
	row("triggered events not stored", r.TriggeredNotStored)
	row("triggered events slow", r.TriggeredSlow)
	row("resumes measured (SIGKILL)", len(r.Resumes))
	row("max resume time", r.MaxResume.Round(time.Millisecond))
	row("hand-overs measured (SIGTERM)", len(r.HandOvers))
	row("max hand-over time", r.MaxHandOver.Round(time.Millisecond))
	row("elapsed", r.Elapsed.Round(time.Second))
	var outs []string
	for t, n := range r.Outcomes {
		outs = append(outs, fmt.Sprintf("%s=%d", t, n))
	}
	slices.Sort(outs)
	row("outcomes", strings.Join(outs, " "))
	tw.Flush()
}
