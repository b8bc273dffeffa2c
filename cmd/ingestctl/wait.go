package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// waiter waits for the terminal event of one command.
//
// It cannot miss an event: before the publish it notes the events stream's
// last sequence, and reads from the next one (JetStream keeps the events,
// so the reader may start after the publish). A publish that was dropped as
// a duplicate, or a command id that already has a job record, may have
// ended long before: then it reads from further back in time (the command
// stream's duplicate window, or the record's times) and picks that
// command's events out of its mapping's.
type waiter struct {
	a      *app
	cmd    ingest.Command
	events jetstream.Stream
	// nextSeq is the events stream's first sequence after the publish.
	nextSeq uint64
	// jobs is the job bucket, for progress; nil when missing.
	jobs jetstream.KeyValue
	// prior is the command id's job record before the publish, if any.
	prior *ingest.Record
	// fromPast: read from lookback (and the prior record's times) instead
	// of nextSeq.
	fromPast bool
	lookback time.Time
}

// prepareWait notes where the events stream stands, before the publish.
func (a *app) prepareWait(ctx context.Context, s *session, cmd ingest.Command) (*waiter, error) {
	st, err := s.stream(ctx, layout.EventStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", layout.EventStream, err)
	}
	w := &waiter{a: a, cmd: cmd, events: st, nextSeq: info.State.LastSeq + 1}
	if kv, err := s.js.KeyValue(ctx, layout.DefaultBucket); err == nil {
		w.jobs = kv
		if w.prior, err = layout.LoadRecord(ctx, kv, cmd.Organization, cmd.ID); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// start is where reading begins.
func (w *waiter) start() startAt {
	if !w.fromPast {
		return startAt{seq: w.nextSeq}
	}
	t := w.lookback
	if w.prior != nil {
		for _, rt := range []ingest.Time{w.prior.TriggeredAt, w.prior.UpdatedAt} {
			if at := time.Time(rt).Add(-time.Minute); !rt.IsZero() && at.Before(t) {
				t = at
			}
		}
	}
	return startAt{time: t}
}

// wait prints the command's events until its terminal one and returns that
// outcome's exit code, or gives up after limit.
func (w *waiter) wait(ctx context.Context, limit time.Duration, asJSON bool) error {
	org, mapping := w.cmd.Organization, w.cmd.MappingID
	r, err := openEvents(ctx, w.events, []string{layout.EventPrefix + org + "." + mapping + ".*"}, w.start())
	if err != nil {
		if ctx.Err() != nil {
			return w.interrupted()
		}
		return err
	}
	defer r.close()
	wctx, cancel := context.WithTimeoutCause(ctx, limit, errNoAnswer)
	defer cancel()

	p := newProgress(w.a.stderr, w.a.progress(), w.a.now, org+"/"+mapping+" "+w.cmd.ID)
	pctx, stopProgress := context.WithCancel(wctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx, w.a.progressEvery, w.jobState) })
	defer func() { stopProgress(); wg.Wait(); p.done() }()

	out := eventPrinter{a: w.a, json: asJSON}
	for {
		ev, err := r.next(wctx)
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
	if w.jobs == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rec, err := layout.LoadRecord(ctx, w.jobs, w.cmd.Organization, w.cmd.ID)
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
