package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// waiter waits for the terminal event of one command.
//
// It cannot miss an event: before the publish it notes the events
// stream's next sequence, and reads from there (JetStream keeps the
// events, so the reader may start after the publish). A publish that was
// dropped as a duplicate, or a command id that already has a job record,
// may have ended long before: then it reads from further back (the
// record's times, or the default duplicate window, whichever is earlier;
// the whole mapping's events when a duplicate has no record) and picks
// that command's events out of its mapping's.
//
// It reads only ingest.events.<org>.<mapping>.* and the command's own job
// record, so a user confined to its organization can wait.
type waiter struct {
	a   *app
	s   *session
	cmd ingest.Command
	// nextSeq is the events stream's first sequence after the publish.
	nextSeq uint64
	// records reports whether the job record can be read (for the
	// progress line).
	records bool
	// prior is the command id's job record before the publish, if any.
	prior *ingest.Record
	// fromPast: read from lookback (and the prior record's times) instead
	// of nextSeq.
	fromPast bool
	lookback time.Time
}

// prepareWait notes where the events stream stands, before the publish,
// and reads the command's job record if it has one already. A job record
// that cannot be read is done without.
func (a *app) prepareWait(ctx context.Context, s *session, cmd ingest.Command) (*waiter, error) {
	seq, err := s.nextEventSeq(ctx, layout.MappingEvents(cmd.Organization, cmd.MappingID))
	if err != nil {
		return nil, err
	}
	w := &waiter{a: a, s: s, cmd: cmd, nextSeq: seq, records: true}
	w.prior, err = s.loadRecord(ctx, cmd.Organization, cmd.ID)
	switch {
	case errors.Is(err, errNoRecords):
		w.records = false
	case err != nil:
		return nil, err
	}
	return w, nil
}

// filter is the subject filter of the command's mapping's events.
func (w *waiter) filter() string {
	return layout.MappingEvents(w.cmd.Organization, w.cmd.MappingID)
}

// start is where reading begins.
func (w *waiter) start() startAt {
	switch {
	case !w.fromPast:
		return startAt{seq: w.nextSeq}
	case w.prior == nil:
		// A duplicate without a record: published within the command
		// stream's duplicate window, which may be longer than the default.
		return startAt{}
	}
	t := w.lookback
	for _, rt := range []ingest.Time{w.prior.TriggeredAt, w.prior.UpdatedAt} {
		if at := time.Time(rt).Add(-time.Minute); !rt.IsZero() && at.Before(t) {
			t = at
		}
	}
	return startAt{time: t}
}

// wait prints the command's events until its terminal one and returns that
// outcome's exit code, or gives up after limit.
func (w *waiter) wait(ctx context.Context, limit time.Duration, asJSON bool) error {
	org, mapping := w.cmd.Organization, w.cmd.MappingID
	r, err := w.s.open(ctx, layout.EventStream, w.filter(), w.start())
	if err != nil {
		if ctx.Err() != nil {
			return w.interrupted()
		}
		return err
	}
	wctx, cancel := context.WithTimeoutCause(ctx, limit, errNoAnswer)
	defer cancel()

	p := newProgress(w.a.stderr, w.a.progress(), w.a.now, org+"/"+mapping+" "+w.cmd.ID)
	pctx, stopProgress := context.WithCancel(wctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx, w.a.progressEvery, w.jobState) })
	defer func() { stopProgress(); wg.Wait(); p.done() }()

	out := eventPrinter{a: w.a, json: asJSON}
	for {
		ev, err := nextEvent(wctx, r)
		switch {
		case errors.Is(err, errNotEvent):
			p.around(func() { fmt.Fprintln(w.a.stderr, "ingestctl: skipped:", err) })
			continue
		case errors.Is(err, errNoAnswer):
			return withCode(exitNoAnswer, fmt.Errorf("no terminal event for command %s within %s; it may still end: ingestctl events --id %s --follow", w.cmd.ID, limit, w.cmd.ID))
		case ctx.Err() != nil:
			return w.interrupted()
		case err != nil:
			return err
		}
		if ev.CommandID != w.cmd.ID {
			continue
		}
		var perr error
		p.around(func() { perr = out.print(ev) })
		if perr != nil {
			return perr
		}
		if !ev.Type.Terminal() {
			p.set("triggered, request " + ev.RequestID)
			continue
		}
		if code := outcomeCode(ev.Type); code != exitOK {
			return withCode(code, nil)
		}
		return nil
	}
}

func (w *waiter) interrupted() error {
	return withCode(exitInterrupted, fmt.Errorf("interrupted; command %s goes on: ingestctl events --id %s --follow", w.cmd.ID, w.cmd.ID))
}

// jobState describes the command's job record for the progress line ("" to
// keep the last state).
func (w *waiter) jobState(ctx context.Context) string {
	if !w.records {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rec, err := w.s.loadRecord(ctx, w.cmd.Organization, w.cmd.ID)
	if errors.Is(err, errNoRecords) {
		w.records = false
	}
	if err != nil || rec == nil {
		return ""
	}
	return describe(*rec)
}

// describe is a record's phase in words.
func describe(rec ingest.Record) string {
	switch rec.Phase {
	case ingest.PhaseRunning:
		return fmt.Sprintf("running, request %s, %d polls", rec.RequestID, rec.Polls)
	case ingest.PhaseWaiting:
		return fmt.Sprintf("waiting for the mapping's running request %s", rec.RequestID)
	case ingest.PhaseClaimed:
		return "claimed by a worker"
	case ingest.PhaseDone:
		return "done: " + string(rec.Outcome)
	default:
		return string(rec.Phase)
	}
}
