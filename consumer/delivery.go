package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// delivery is a command being worked on.
type delivery struct {
	msg       jetstream.Msg
	published time.Time
}

// arrive takes a pulled command: it keeps its lease from now on, and runs
// it at once or parks it until its organization has a free slot. A valid
// first delivery is admitted once its record is read (with the next
// batch): the read's round trip, which under load is the longest wait of
// a job that ends at its first status check, is not spent in a job slot.
// Redeliveries read their record from the store's leader in their slot
// (ingest.Runner.Admit).
func (c *Consumer) arrive(ctx context.Context, msg jetstream.Msg, slots *slots, first *starters, wg *sync.WaitGroup) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata", "subject", msgSubject(msg), "err", err)
		_ = msg.Term()
		return
	}
	org, _, _ := layout.SplitCommandSubject(msg.Subject())
	d := &delivery{msg: msg, published: meta.Timestamp}
	in := decode(msg, meta)
	c.track(d, true)
	wg.Add(1)
	cmd := parkedCmd{
		start: func() {
			first.run(func() {
				c.handle(ctx, msg, meta, in, func() {
					c.track(d, false)
					slots.release(org)
					wg.Done()
				})
			})
		},
		giveBack: func() {
			c.handBack(msg, "shutdown")
			c.track(d, false)
			wg.Done()
		},
	}
	if in.err != nil || in.panic != nil || meta.NumDelivered > 1 {
		slots.admit(org, cmd)
		return
	}
	slots.expect()
	if !c.store.Prefetch(in.cmd.Organization, in.cmd.ID, func(p *layout.Prefetch) {
		in.record = p
		slots.arrived(org, cmd)
	}) {
		slots.arrived(org, cmd)
	}
}

// arrival is a delivery's command as decoded when it arrived, with, for a
// valid first delivery, the read of its record made before it was
// admitted.
type arrival struct {
	env    ingest.Envelope
	cmd    ingest.Command
	err    error
	panic  any
	record *layout.Prefetch
}

// prefetchFresh is how old the record read made before a command was
// admitted may be when its job starts: older (the command waited parked
// for its organization's turn), the job reads the record again. The record
// a first delivery looks for was written long before (the done record of a
// command republished after the command stream's duplicate window) or is
// another message's claim, which races with the delivery anyway (see
// internal/reliability's known gaps): a read sent a second before the job
// starts answers as well as one sent at its start.
const prefetchFresh = time.Second

// decode decodes a delivery's command on the pull's goroutine. A panic is
// kept for the job's first step to raise again, where it is recovered and
// the command handed back, as if it had happened there.
func decode(msg jetstream.Msg, meta *jetstream.MsgMetadata) (in *arrival) {
	in = &arrival{}
	defer func() {
		if p := recover(); p != nil {
			in.panic = fmt.Sprintf("%v (decoding the command)\n%s", p, debug.Stack())
		}
	}()
	in.env = layout.Envelope(msg.Subject(), msg.Headers().Get, meta.Stream, meta.Sequence.Stream)
	in.cmd, in.err = ingest.ParseCommand(in.env, msg.Data())
	return in
}

// records is the store as ingest.Runner.Admit reads it: Load takes the
// answer of the read made before the command was admitted while it is
// fresh.
type records struct {
	*layout.Store
	pre *layout.Prefetch
}

func (r records) Load(ctx context.Context, org, commandID string) (*ingest.Record, error) {
	return r.pre.Load(ctx, r.Store, org, commandID, prefetchFresh)
}

// handle makes one delivery's first step, on one of the starters; end is
// called once the delivery is settled. The job holds no goroutine while it
// waits between status checks (ingest.Runner.Start). A worker that stopped
// while the step was queued hands the command back. A panic is recovered
// and the command handed back.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, in *arrival, end func()) {
	if ctx.Err() != nil {
		c.handBack(msg, "shutdown")
		end()
		return
	}
	started := false
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("job panicked; handing the command back", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.handBack(msg, "panic")
		}
		if !started {
			end()
		}
	}()
	job, ok := c.begin(ctx, msg, meta, in)
	if !ok {
		return
	}
	inFlight := c.m.InFlight.WithLabelValues(c.label(job.Command.Organization))
	inFlight.Inc()
	started = true
	c.runner.Start(ctx, c.journal(job.Logger), job, func(res ingest.Result) {
		defer end()
		inFlight.Dec()
		if res.Panic != nil {
			job.Logger.Error("job panicked; handing the command back", "panic", res.Panic.String())
			c.handBack(msg, "panic")
			return
		}
		c.settle(ctx, job.Logger, msg, res)
	})
}

// label is the organization's metric label value.
func (c *Consumer) label(org string) string {
	if c.cfg.Organizations == nil {
		return otherLabel
	}
	return c.cfg.Organizations.Label(org)
}

// otherLabel is the label value of every organization without one of its own.
const otherLabel = "_other"

// commandLogger is log with a command's bounded attributes and extra, one
// more attribute (the delivery or the deliveries). Built from one slice of
// attributes: every job makes one, and Logger.With would box each value.
func commandLogger(log *slog.Logger, cmd ingest.Command, extra slog.Attr) *slog.Logger {
	attrs := append(make([]slog.Attr, 0, 5), slog.String("commandId", cmd.ID), slog.String("organization", cmd.Organization),
		slog.String("mappingId", cmd.MappingID), extra)
	if tid := cmd.Trace.TraceID(); tid != "" {
		attrs = append(attrs, slog.String("traceId", tid))
	}
	return slog.New(log.Handler().WithAttrs(attrs))
}

// begin makes a delivery's job and admits it. It settles the message
// itself and reports false when no job is to run.
func (c *Consumer) begin(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, in *arrival) (ingest.Job, bool) {
	kind := "first"
	if meta.NumDelivered > 1 {
		kind = "redelivery"
	}
	c.m.Deliveries.WithLabelValues(kind).Inc()
	if in.panic != nil {
		panic(in.panic)
	}
	cmd, err := in.cmd, in.err
	log := commandLogger(c.log, cmd, slog.Uint64("delivery", meta.NumDelivered))
	var rej *ingest.RejectError
	if errors.As(err, &rej) {
		log.Warn("command rejected", "reason", rej.Reason, "detail", rej.Detail)
		c.reject(ctx, log, msg, ingest.Rejected(cmd, rej, time.Now()))
		return ingest.Job{}, false
	}
	job := ingest.Job{
		Command:      cmd,
		Published:    meta.Timestamp,
		Delivery:     int(meta.NumDelivered),
		LastDelivery: c.js.Topology.MaxDeliver > 0 && int(meta.NumDelivered) >= c.js.Topology.MaxDeliver,
		Logger:       log,
	}
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	adm := c.runner.Admit(wctx, records{c.store, in.record}, job, in.env)
	switch adm.Verdict {
	case ingest.Done:
		log.Info("command already done; acknowledging", "outcome", adm.Record.Outcome, "recovered", adm.Recovered)
		c.ack(log, msg)
		return ingest.Job{}, false
	case ingest.Duplicate:
		log.Info("duplicate of a command already running; acknowledging")
		c.ack(log, msg)
		return ingest.Job{}, false
	case ingest.Later:
		log.Warn("cannot read or claim the job state; handing the command back", "err", adm.Err)
		c.nak(msg, adm.Retry, "nats")
		return ingest.Job{}, false
	}
	if adm.Recovered {
		log.Info("job state recovered from the command's events", "phase", adm.Record.Phase, "requestId", adm.Record.RequestID)
	}
	job.Record, job.Stored = adm.Record, adm.Stored
	return job, true
}
