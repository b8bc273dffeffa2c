package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/metrics"
	"github.com/acme/campaign-ingest/publisher"
)

// Config tunes a Consumer.
type Config struct {
	// MaxInFlight is the number of jobs run at once; default 100. The
	// consumer pulls only as many commands as there are free slots.
	MaxInFlight int
	// FetchWait is how long one pull waits for commands; default 1s.
	FetchWait time.Duration
	// PendingEvery is how often commands_pending is refreshed; default 15s.
	PendingEvery time.Duration
	// WriteTimeout bounds each JetStream write; default 10s.
	WriteTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 100
	}
	if c.FetchWait <= 0 {
		c.FetchWait = time.Second
	}
	if c.PendingEvery <= 0 {
		c.PendingEvery = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	return c
}

// Consumer pulls commands and runs their jobs.
type Consumer struct {
	bound  *Bound
	store  *Store
	pub    *publisher.Publisher
	runner *ingest.Runner
	m      *metrics.Metrics
	log    *slog.Logger
	cfg    Config

	mu     sync.Mutex
	active map[*delivery]struct{}
	// pulling is set once a pull succeeded and cleared when Run returns.
	pulling atomic.Bool
}

// delivery is a command being worked on.
type delivery struct {
	msg       jetstream.Msg
	published time.Time
}

// New returns a Consumer. m and log may be nil.
func New(bound *Bound, pub *publisher.Publisher, runner *ingest.Runner, m *metrics.Metrics, log *slog.Logger, cfg Config) *Consumer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New(metricsSink{}, "")
	}
	return &Consumer{
		bound: bound, store: NewStore(bound.Jobs), pub: pub, runner: runner, m: m, log: log,
		cfg: cfg.withDefaults(), active: make(map[*delivery]struct{}),
	}
}

// Bound reports whether the consumer is pulling (for /readyz).
func (c *Consumer) Bound() bool { return c.pulling.Load() }

// Run pulls and runs commands until ctx ends. Then it stops pulling, hands
// every unfinished command back at once (Nak) so that another replica
// resumes it from its recorded state, waits for its jobs, and returns.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.pulling.Store(false)
	// Jobs stop once the pull in progress has returned, so that the
	// commands they hand back cannot come back to this worker's own pull.
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	wg.Go(func() { c.heartbeat(bgCtx) })
	wg.Go(func() { c.watchPending(bgCtx) })
	wg.Go(func() { c.watchExhausted(bgCtx) })

	slots := make(chan struct{}, c.cfg.MaxInFlight)
	released := make(chan struct{}, 1)
	var failures int
	for ctx.Err() == nil {
		free := cap(slots) - len(slots)
		if free == 0 {
			select {
			case <-ctx.Done():
			case <-released:
			}
			continue
		}
		batch, err := c.bound.Consumer.Fetch(free, jetstream.FetchMaxWait(c.cfg.FetchWait))
		if err != nil {
			failures++
			c.pulling.Store(false)
			c.log.WarnContext(ctx, "pull failed", "err", err)
			sleepCtx(ctx, min(time.Duration(failures)*250*time.Millisecond, 5*time.Second))
			continue
		}
		c.pulling.Store(true)
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				// Delayed past this pull's expiry: a plain Nak would
				// redeliver it into the same pull, again and again.
				c.nak(msg, c.cfg.FetchWait+time.Second, "shutdown")
				continue
			}
			slots <- struct{}{}
			wg.Add(1)
			go c.handle(jobCtx, msg, func() {
				<-slots
				select {
				case released <- struct{}{}:
				default:
				}
				wg.Done()
			})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			failures++
			c.pulling.Store(false)
			c.log.WarnContext(ctx, "pull ended with an error", "err", err)
			sleepCtx(ctx, min(time.Duration(failures)*250*time.Millisecond, 5*time.Second))
			continue
		}
		failures = 0
	}
	c.log.Info("stopping: handing unfinished jobs back", "inFlight", len(slots))
	stopJobs()
	stopBg()
	wg.Wait()
	return nil
}

// handle starts one delivery's job; end is called once the delivery is
// settled. The job holds no goroutine while it waits between status checks
// (ingest.Runner.Start). A panic is recovered and the command handed back.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, end func()) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		end()
		return
	}
	d := &delivery{msg: msg, published: meta.Timestamp}
	c.track(d, true)
	finished := func() {
		c.track(d, false)
		end()
	}
	started := false
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("job panicked; handing the command back", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.handBack(msg, "panic")
		}
		if !started {
			finished()
		}
	}()
	job, ok := c.begin(ctx, msg, meta)
	if !ok {
		return
	}
	c.m.InFlight.Inc()
	started = true
	c.runner.Start(ctx, c.journal(job.Logger), job, func(res ingest.Result) {
		defer finished()
		c.m.InFlight.Dec()
		if res.Panic != nil {
			job.Logger.Error("job panicked; handing the command back", "panic", res.Panic.String())
			c.handBack(msg, "panic")
			return
		}
		c.settle(ctx, job.Logger, msg, res)
	})
}

// begin decodes a delivery into its job. It settles the message itself and
// reports false when no job is to run.
func (c *Consumer) begin(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) (ingest.Job, bool) {
	kind := "first"
	if meta.NumDelivered > 1 {
		kind = "redelivery"
	}
	c.m.Deliveries.WithLabelValues(kind).Inc()

	h := msg.Headers()
	env := ingest.Envelope{
		Subject:    msg.Subject(),
		MsgID:      h.Get(jetstream.MsgIDHeader),
		FallbackID: meta.Stream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10),
		Trace:      ingest.ParseTrace(h.Get(ingest.HeaderTraceParent), h.Get(ingest.HeaderTraceState)),
	}
	cmd, err := ingest.ParseCommand(env, msg.Data())
	log := c.log.With("commandId", cmd.ID, "organization", cmd.Organization, "mappingId", cmd.MappingID, "delivery", meta.NumDelivered)
	if tid := cmd.Trace.TraceID(); tid != "" {
		log = log.With("traceId", tid)
	}
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
		LastDelivery: c.bound.Topology.MaxDeliver > 0 && int(meta.NumDelivered) >= c.bound.Topology.MaxDeliver,
		Logger:       log,
	}
	if !c.prepare(ctx, log, msg, &job, env) {
		return ingest.Job{}, false
	}
	return job, true
}

// prepare loads the command's state and decides whether the job runs. It
// settles the message itself when it does not.
func (c *Consumer) prepare(ctx context.Context, log *slog.Logger, msg jetstream.Msg, job *ingest.Job, env ingest.Envelope) bool {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	rec, err := c.store.Load(wctx, job.Command.ID)
	if err != nil {
		log.Warn("cannot read job state; handing the command back", "err", err)
		c.nak(msg, c.runner.Config().RedeliverDelay, "nats")
		return false
	}
	if rec == nil && job.Delivery > 1 {
		// The previous delivery may have died between its POST and its
		// first state write: its events tell.
		if rec, err = c.recoverFromEvents(wctx, job.Command, job.Published); err != nil {
			log.Warn("cannot read the command's events; handing the command back", "err", err)
			c.nak(msg, c.runner.Config().RedeliverDelay, "nats")
			return false
		}
		if rec != nil {
			log.Info("job state recovered from the command's events", "phase", rec.Phase, "requestId", rec.RequestID)
		}
	}
	switch {
	case rec != nil && rec.Phase == ingest.PhaseDone:
		log.Info("command already done; acknowledging", "outcome", rec.Outcome)
		c.ack(log, msg)
		return false
	case rec != nil && job.Delivery == 1:
		// A first delivery cannot find its own record: another message
		// carries the same command id and owns the job.
		log.Info("duplicate of a command already running; acknowledging", "phase", rec.Phase, "requestId", rec.RequestID)
		c.ack(log, msg)
		return false
	case rec == nil && job.Command.ID != env.MsgID && job.Command.ID != env.FallbackID:
		// The stream could not deduplicate this id: claim it.
		claim := ingest.Record{
			CommandID: job.Command.ID, CorrelationID: job.Command.CorrelationID,
			Organization: job.Command.Organization, MappingID: job.Command.MappingID,
			Phase: ingest.PhaseClaimed, Attempt: 1, UpdatedAt: ingest.Time(time.Now()),
		}
		ok, err := c.store.Claim(wctx, claim)
		if err != nil {
			log.Warn("cannot claim the command id; handing the command back", "err", err)
			c.nak(msg, c.runner.Config().RedeliverDelay, "nats")
			return false
		}
		if !ok {
			log.Info("duplicate of a command already running; acknowledging")
			c.ack(log, msg)
			return false
		}
	}
	job.Record = rec
	return true
}

// settle publishes the outcome and acks, or hands the command back.
func (c *Consumer) settle(ctx context.Context, log *slog.Logger, msg jetstream.Msg, res ingest.Result) {
	switch {
	case res.Event != nil:
		c.finish(ctx, log, msg, res)
	case res.Interrupted:
		log.Info("job interrupted; handing the command back")
		c.handBack(msg, "shutdown")
	default:
		log.Warn("API unavailable; handing the command back", "err", res.Err, "retryIn", res.Retry)
		c.nak(msg, res.Retry, "api")
	}
}

// finish publishes the terminal event, records the job as done and acks.
// The ack comes only after JetStream acknowledged the event.
func (c *Consumer) finish(ctx context.Context, log *slog.Logger, msg jetstream.Msg, res ingest.Result) {
	ev := res.Event
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	ack, err := c.pub.Publish(wctx, *ev)
	if err != nil {
		log.Warn("cannot publish the outcome; handing the command back", "err", err)
		c.nak(msg, time.Second, "nats")
		return
	}
	if err := c.store.Save(wctx, res.Record); err != nil {
		// The event is stored; a redelivery would poll once more and
		// publish a duplicate that the stream drops.
		log.Warn("cannot record the job as done", "err", err)
	}
	c.ack(log, msg)
	if ack.Duplicate {
		// An earlier delivery published this outcome and was counted.
		log.Info("command finished; its outcome was already published", "outcome", ev.Type, "requestId", ev.RequestID)
		return
	}
	c.m.Events.WithLabelValues(string(ev.Type)).Inc()
	c.m.ObserveOutcome(string(ev.Type), string(ev.Reason), ev.NumRecords, time.Time(ev.TriggeredAt), time.Time(ev.FinishedAt))
	log.Info("command finished", "outcome", ev.Type, "reason", ev.Reason, "requestId", ev.RequestID,
		"status", ev.Status, "numRecords", ev.NumRecords, "polls", ev.Polls, "attempt", ev.Attempt)
}

// reject publishes a rejected event for input that can never succeed and
// terminates the command.
func (c *Consumer) reject(ctx context.Context, log *slog.Logger, msg jetstream.Msg, ev ingest.Event) {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	if _, err := c.pub.Publish(wctx, ev); err != nil {
		log.Warn("cannot publish the rejection; handing the command back", "err", err)
		c.nak(msg, time.Second, "nats")
		return
	}
	c.m.Events.WithLabelValues(string(ev.Type)).Inc()
	if err := msg.TermWithReason(string(ev.Reason)); err != nil {
		log.Warn("cannot terminate the command", "err", err)
	}
	c.m.ObserveOutcome(string(ev.Type), string(ev.Reason), 0, time.Time{}, time.Time(ev.FinishedAt))
}

func (c *Consumer) ack(log *slog.Logger, msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		log.Warn("cannot acknowledge the command", "err", err)
	}
}

func (c *Consumer) nak(msg jetstream.Msg, delay time.Duration, reason string) {
	c.m.Naks.WithLabelValues(reason).Inc()
	if err := msg.NakWithDelay(delay); err != nil {
		c.log.Warn("cannot hand the command back", "subject", msg.Subject(), "err", err)
	}
}

// handBack returns a command for immediate redelivery.
func (c *Consumer) handBack(msg jetstream.Msg, reason string) {
	c.m.Naks.WithLabelValues(reason).Inc()
	if err := msg.Nak(); err != nil {
		c.log.Warn("cannot hand the command back", "subject", msg.Subject(), "err", err)
	}
}

func (c *Consumer) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.WriteTimeout)
}

func (c *Consumer) track(d *delivery, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.active[d] = struct{}{}
	} else {
		delete(c.active, d)
	}
}

// heartbeat tells JetStream every AckWait/3 that running jobs are alive, and
// refreshes oldest_in_flight_seconds.
func (c *Consumer) heartbeat(ctx context.Context) {
	t := time.NewTicker(c.bound.Topology.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(c.active))
		var oldest time.Time
		for d := range c.active {
			msgs = append(msgs, d.msg)
			if oldest.IsZero() || d.published.Before(oldest) {
				oldest = d.published
			}
		}
		c.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				c.log.Debug("heartbeat failed", "subject", m.Subject(), "err", err)
			}
		}
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		c.m.OldestInFlight.Set(age)
	}
}

// watchPending refreshes commands_pending.
func (c *Consumer) watchPending(ctx context.Context) {
	t := time.NewTicker(c.cfg.PendingEvery)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.bound.Consumer.Info(ictx)
		cancel()
		if err == nil {
			c.m.Pending.Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
