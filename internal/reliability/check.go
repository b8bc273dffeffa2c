package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// Org is the organization of the harness's commands.
const Org = "acme"

// Commands returns n commands, each on its own mapping (M00000, M00001, …)
// so that they can all run at once: the API allows one running request per
// mapping.
func Commands(prefix string, n int) []ingest.Command {
	cmds := make([]ingest.Command, n)
	for i := range cmds {
		cmds[i] = ingest.Command{
			ID: fmt.Sprintf("%s-%05d", prefix, i), Organization: Org, MappingID: fmt.Sprintf("M%05d", i),
		}
	}
	return cmds
}

// Mappings returns the mapping of every command, all with script.
func Mappings(cmds []ingest.Command, script campaignsim.Script) []campaignsim.Mapping {
	ms := make([]campaignsim.Mapping, len(cmds))
	for i, c := range cmds {
		ms[i] = campaignsim.Mapping{Org: c.Organization, ID: c.MappingID, Script: script}
	}
	return ms
}

// Publish publishes cmds (with Nats-Msg-Id = id) and waits for every
// acknowledgement.
func Publish(ctx context.Context, js jetstream.JetStream, cmds []ingest.Command) error {
	const window = 256
	var acks []jetstream.PubAckFuture
	wait := func() error {
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				return fmt.Errorf("publish %s: %w", a.Msg().Header.Get(jetstream.MsgIDHeader), err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		acks = acks[:0]
		return nil
	}
	for _, c := range cmds {
		msg, err := publisher.CommandMsg(c)
		if err != nil {
			return err
		}
		a, err := js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s: %w", c.ID, err)
		}
		if acks = append(acks, a); len(acks) == window {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}

// Progress is how far a run is, read from JetStream.
type Progress struct {
	Queued uint64 // commands still in the work queue (not acked nor termed)
	Events uint64 // events stored
}

// ReadProgress reads the streams' state.
func ReadProgress(ctx context.Context, js jetstream.JetStream) (Progress, error) {
	var p Progress
	for name, n := range map[string]*uint64{layout.CommandStream: &p.Queued, layout.EventStream: &p.Events} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return p, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return p, err
		}
		*n = info.State.Msgs
	}
	return p, nil
}

// WaitDrained waits until the work queue is empty (every command acked or
// terminated, so its terminal event is stored), at most timeout. Errors of
// an unreachable server are retried until the timeout.
func WaitDrained(ctx context.Context, js jetstream.JetStream, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := ReadProgress(rctx, js)
		rcancel()
		if err == nil && p.Queued == 0 {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("%d commands still queued", p.Queued)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("work queue not drained within %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ReadEvents reads every event of INGEST_EVENTS from the start.
func ReadEvents(ctx context.Context, js jetstream.JetStream) ([]ingest.Event, error) {
	s, err := js.Stream(ctx, layout.EventStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var evs []ingest.Event
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev ingest.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				return nil, fmt.Errorf("event on %s: %w", m.Subject(), err)
			}
			evs = append(evs, ev)
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if meta.Sequence.Stream >= last {
				return evs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("events stream ended before sequence %d (%d read)", last, len(evs))
		}
	}
}

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
