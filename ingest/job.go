package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/acme/campaign-ingest/campaign"
)

// API is the part of the Campaign client a job uses.
type API interface {
	Trigger(ctx context.Context, org, mappingID string) (campaign.TriggerResponse, error)
	Status(ctx context.Context, org, mappingID, requestID string) (campaign.StatusResponse, error)
}

// Journal makes a job's progress durable and visible. The consumer
// implements it with the KV bucket and the event stream.
type Journal interface {
	// Triggered starts publishing ev, the triggered event, once the API
	// accepted a request (or the job adopted one), and returns a function
	// that waits for the publication to end. The job makes its first
	// status check meanwhile, and waits before it ends or hands back. It
	// stores no state: the request id is stored by the first Progress, or
	// by the done record when the first status check is already terminal
	// (one synchronous write less per job, see BENCHMARKS.md).
	Triggered(ctx context.Context, ev Event) (wait func() error)
	// Progress stores rec after a status check that was not terminal, when
	// the job starts waiting for another request of a busy mapping, and
	// before a job whose request is not stored yet hands its command back
	// or resubmits. Its writes must outlive ctx's cancellation.
	Progress(ctx context.Context, rec Record) error
}

// Observer sees every status check; metrics implement it.
type Observer interface {
	ObservePoll(status string, known bool)
}

// BusyPolicy says what a job does when its mapping is already ingesting.
type BusyPolicy string

// The busy policies.
const (
	// BusyWait polls the running request to its end, then triggers its own.
	BusyWait BusyPolicy = "wait"
	// BusyAttach adopts the running request as the job's own.
	BusyAttach BusyPolicy = "attach"
)

// Config tunes a Runner. The zero value works: defaults are given per field.
type Config struct {
	Schedule Schedule
	// JobTimeout is the default and largest job deadline; default 6h.
	JobTimeout time.Duration
	// BusyPolicy; default BusyWait.
	BusyPolicy BusyPolicy
	// ResubmitAborted is how many times an Aborted ingestion is triggered
	// again before the job ends aborted; 0 means never.
	ResubmitAborted int
	// RetryAttempts bounds the calls of one operation that fail for a
	// transient reason (429, 5xx, network, timeout, malformed answer) within
	// one delivery; default 4. Then the command is handed back for a later
	// delivery (Result.Retry).
	RetryAttempts int
	// RetryInitial and RetryMax shape the jittered exponential backoff
	// between those calls; defaults 1s and 30s. A Retry-After is honoured
	// instead when the API sends one.
	RetryInitial, RetryMax time.Duration
	// RedeliverDelay is the delay asked for when a command is handed back;
	// default 15s.
	RedeliverDelay time.Duration
	Observer       Observer
	Logger         *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Schedule = c.Schedule.withDefaults()
	if c.JobTimeout <= 0 {
		c.JobTimeout = 6 * time.Hour
	}
	if c.BusyPolicy == "" {
		c.BusyPolicy = BusyWait
	}
	if c.RetryAttempts <= 0 {
		c.RetryAttempts = 4
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = time.Second
	}
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = max(30*time.Second, c.RetryInitial)
	}
	if c.RedeliverDelay <= 0 {
		c.RedeliverDelay = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Runner runs jobs. It is safe for concurrent use.
type Runner struct {
	api API
	cfg Config
}

// NewRunner returns a Runner calling api.
func NewRunner(api API, cfg Config) *Runner {
	return &Runner{api: api, cfg: cfg.withDefaults()}
}

// Config returns the runner's configuration with defaults applied.
func (r *Runner) Config() Config { return r.cfg }

// Job is one delivery of a command.
type Job struct {
	Command Command
	// Published is when the command was stored; its deadline counts from it.
	Published time.Time
	// Delivery is 1 for the first delivery of the command.
	Delivery int
	// LastDelivery: no redelivery will follow, so a transient failure ends
	// the job (failed, api_unavailable) instead of handing it back.
	LastDelivery bool
	// Record is the state found for the command, nil if none.
	Record *Record
	// Logger carries the command's attributes; default the runner's.
	Logger *slog.Logger
}

// Result is how a job ended.
type Result struct {
	// Event is the terminal event to publish, nil when the command is
	// handed back.
	Event *Event
	// Record is the job's final state (Phase done when Event is set).
	Record Record
	// Retry > 0 hands the command back to be redelivered after Retry.
	Retry time.Duration
	// Interrupted hands the command back at once: the worker is stopping.
	Interrupted bool
	// Err is the cause of a hand-back.
	Err error
	// Panic is set when the job panicked (Start only; Run panics again).
	// The command should be handed back.
	Panic *StepPanic
}

var errDeadline = errors.New("job deadline exceeded")

// Run runs one delivery of a job to its end or to a hand-back, and returns
// how it ended. ctx cancelled means the worker is stopping: the job returns
// Interrupted at its next step; its state is already in the journal. A
// panic in the job is raised again in the caller.
func (r *Runner) Run(ctx context.Context, journal Journal, job Job) Result {
	ch := make(chan Result, 1)
	r.Start(ctx, journal, job, func(res Result) { ch <- res })
	res := <-ch
	if res.Panic != nil {
		panic(res.Panic)
	}
	return res
}

// Start runs one delivery of a job like Run, but holds no goroutine while
// the job waits between status checks: the wait is a timer, and each later
// step (a status check) runs on a goroutine that ends with it. A waiting job
// costs its state only, not a goroutine stack grown by the HTTP, JSON and
// NATS call chains. The first step (the trigger and the first check) runs
// on the calling goroutine: Start returns when the job first waits, or has
// ended. done is called exactly once, maybe before Start returns; a panic in
// a step is recovered and reported in Result.Panic.
func (r *Runner) Start(ctx context.Context, journal Journal, job Job, done func(Result)) {
	deadline := job.Command.Deadline(job.Published, r.cfg.JobTimeout)
	jctx, cancel := context.WithDeadlineCause(ctx, deadline, errDeadline)
	j := &run{Runner: r, journal: journal, job: job, log: job.Logger}
	if j.log == nil {
		j.log = r.cfg.Logger
	}
	j.rec = Record{
		CommandID: job.Command.ID, CorrelationID: job.Command.CorrelationID,
		Organization: job.Command.Organization, MappingID: job.Command.MappingID,
		Attempt: 1,
	}
	if job.Record != nil {
		j.rec = *job.Record
		j.resumed = j.rec.RequestID != ""
	}
	var step func(first bool)
	step = func(first bool) {
		ev, err, p := j.step(jctx, first)
		if p != nil {
			cancel()
			done(Result{Record: j.rec, Panic: p})
			return
		}
		var w waitError
		if errors.As(err, &w) {
			after(jctx, w.d, func() { step(false) }, func() {
				res := j.result(ctx, jctx, nil, context.Cause(jctx))
				cancel()
				done(res)
			})
			return
		}
		res := j.result(ctx, jctx, ev, err)
		cancel()
		done(res)
	}
	step(true)
}

// step runs the job from its start (first) or makes its next status check,
// recovering a panic.
func (j *run) step(ctx context.Context, first bool) (ev *Event, err error, p *StepPanic) {
	defer func() {
		if v := recover(); v != nil {
			p = &StepPanic{Value: v, Stack: debug.Stack()}
		}
	}()
	if first {
		ev, err = j.run(ctx)
	} else {
		ev, err = j.poll(ctx)
	}
	return ev, err, nil
}

// after calls then once d has passed, or stopped once ctx has ended, on a
// goroutine of its own; whichever comes first, never both.
func after(ctx context.Context, d time.Duration, then, stopped func()) {
	var (
		claimed atomic.Bool
		mu      sync.Mutex
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	stopCtx := context.AfterFunc(ctx, func() {
		if !claimed.CompareAndSwap(false, true) {
			return
		}
		mu.Lock()
		t.Stop()
		mu.Unlock()
		stopped()
	})
	t = time.AfterFunc(d, func() {
		if claimed.CompareAndSwap(false, true) {
			stopCtx()
			then()
		}
	})
}

// waitError asks for the next status check after d.
type waitError struct{ d time.Duration }

func (w waitError) Error() string { return "next status check in " + w.d.String() }

// StepPanic is a panic of a job step.
type StepPanic struct {
	Value any
	// Stack is where the step panicked.
	Stack []byte
}

func (p *StepPanic) String() string { return fmt.Sprintf("%v\n%s", p.Value, p.Stack) }

// run is one job delivery in progress.
type run struct {
	*Runner
	journal Journal
	job     Job
	log     *slog.Logger
	rec     Record
	resumed bool
	// pending waits for the triggered event's publication in flight.
	pending func() error
	// unsaved: the job's request is not stored in the journal yet.
	unsaved bool
}

func (j *run) run(ctx context.Context) (*Event, error) {
	if j.rec.Phase == PhaseRunning && j.rec.RequestID != "" {
		j.log.InfoContext(ctx, "resuming", "requestId", j.rec.RequestID, "polls", j.rec.Polls)
		return j.poll(ctx)
	}
	if j.rec.Phase == PhaseWaiting && j.rec.RequestID != "" {
		if err := j.waitOther(ctx, j.rec.RequestID); err != nil {
			return nil, err
		}
	}
	return j.trigger(ctx)
}

// trigger POSTs until the job has a request of its own (or adopts one), then polls.
func (j *run) trigger(ctx context.Context) (*Event, error) {
	for {
		// lost: a POST of this loop failed in a way that may have
		// submitted the request all the same (answer dropped, spoiled or
		// too late, 5xx): a retry answered In Progress is then our own.
		lost := false
		res, err := retry(ctx, j.cfg, func() (campaign.TriggerResponse, error) {
			res, err := j.api.Trigger(ctx, j.rec.Organization, j.rec.MappingID)
			lost = lost || mayHaveSubmitted(err)
			return res, err
		})
		if err != nil {
			typ := EventRejected
			if j.rec.Attempt > 1 {
				typ = EventFailed
			}
			return j.apiFailure(ctx, err, typ)
		}
		switch res.Kind() {
		case campaign.TriggerAccepted:
			return j.accepted(ctx, res, false)
		case campaign.TriggerBusy:
			other := string(res.RequestID)
			if j.job.Delivery > 1 && !j.resumed || lost || j.cfg.BusyPolicy == BusyAttach {
				// On a redelivery without a record, or after a POST whose
				// answer was lost, the running request is almost surely
				// this job's own.
				return j.accepted(ctx, res, true)
			}
			j.log.InfoContext(ctx, "mapping busy, waiting for its running request", "otherRequestId", other)
			j.rec.Phase, j.rec.RequestID, j.rec.UpdatedAt = PhaseWaiting, other, Time(j.cfg.Now())
			if err := j.journal.Progress(ctx, j.rec); err != nil {
				return nil, fmt.Errorf("record waiting state: %w", err)
			}
			if err := j.waitOther(ctx, other); err != nil {
				return nil, err
			}
		case campaign.TriggerNotStopped:
			return j.triggerRefused(res, ReasonMappingNotStopped), nil
		case campaign.TriggerNotPublished:
			return j.triggerRefused(res, ReasonMappingNotPublished), nil
		default:
			if res.RequestID != "" {
				j.log.WarnContext(ctx, "unknown trigger status with a request id: polling it", "status", res.Status)
				return j.accepted(ctx, res, false)
			}
			ev := j.event(EventFailed, ReasonIngestionFailed)
			ev.Status, ev.Info, ev.ErrorCode = string(res.Status), res.Info, campaign.ErrorCode(res.Info)
			return ev, nil
		}
	}
}

func (j *run) triggerRefused(res campaign.TriggerResponse, reason Reason) *Event {
	ev := j.event(EventRejected, reason)
	ev.Status, ev.Info, ev.ErrorCode = string(res.Status), res.Info, campaign.ErrorCode(res.Info)
	ev.Detail = res.Info
	return ev
}

// accepted takes the request as the job's own and makes the first status
// check; the triggered event is published alongside it. The request is
// stored with the first check that is not terminal (or with the done
// record), and before any hand-back.
func (j *run) accepted(ctx context.Context, res campaign.TriggerResponse, adopted bool) (*Event, error) {
	requestID := string(res.RequestID)
	now := j.cfg.Now()
	j.rec.Phase, j.rec.RequestID, j.rec.Polls, j.rec.Status = PhaseRunning, requestID, 0, ""
	j.rec.TriggeredAt, j.rec.UpdatedAt = Time(now), Time(now)
	ev := j.event(EventTriggered, "")
	ev.Status, ev.Info, ev.FinishedAt = string(res.Status), res.Info, Time{}
	j.log.InfoContext(ctx, "ingestion triggered", "requestId", requestID, "attempt", j.rec.Attempt, "adopted", adopted)
	j.pending, j.unsaved = j.journal.Triggered(ctx, *ev), true
	return j.poll(ctx)
}

// save stores the job's request if it is not stored yet, so that a
// redelivery resumes it instead of triggering again.
func (j *run) save(ctx context.Context) error {
	if !j.unsaved {
		return nil
	}
	j.rec.UpdatedAt = Time(j.cfg.Now())
	if err := j.journal.Progress(ctx, j.rec); err != nil {
		return fmt.Errorf("record triggered request: %w", err)
	}
	j.unsaved = false
	return nil
}

// flush waits for the triggered journal write.
func (j *run) flush() error {
	if j.pending == nil {
		return nil
	}
	err := j.pending()
	j.pending = nil
	if err != nil {
		return fmt.Errorf("record triggered request: %w", err)
	}
	return nil
}

// poll checks the job's request once. An ingestion still running returns
// a waitError with the time to the next check: Start waits on a timer, then
// polls again.
// The first check is at once, also when a redelivered job resumes.
func (j *run) poll(ctx context.Context) (*Event, error) {
	st, err := retry(ctx, j.cfg, func() (campaign.StatusResponse, error) {
		return j.api.Status(ctx, j.rec.Organization, j.rec.MappingID, j.rec.RequestID)
	})
	if err != nil {
		return j.apiFailure(ctx, err, EventFailed)
	}
	j.rec.Polls++
	j.rec.Status = string(st.Status)
	j.observe(st.Status)
	if !st.Status.Terminal() {
		if !st.Status.Known() {
			j.log.WarnContext(ctx, "unknown ingestion status, polling on", "status", st.Status, "info", st.Info)
		}
		if err := j.flush(); err != nil {
			return nil, err
		}
		j.rec.UpdatedAt = Time(j.cfg.Now())
		if err := j.journal.Progress(ctx, j.rec); err != nil {
			return nil, fmt.Errorf("record poll: %w", err)
		}
		j.unsaved = false
		return nil, waitError{d: j.cfg.Schedule.Next(j.rec.Polls)}
	}
	if err := j.flush(); err != nil {
		return nil, err
	}
	if st.Status == campaign.StatusAborted && j.rec.Attempt <= j.cfg.ResubmitAborted {
		j.log.WarnContext(ctx, "ingestion aborted, submitting a new request", "requestId", j.rec.RequestID, "attempt", j.rec.Attempt)
		if err := j.save(ctx); err != nil {
			return nil, err
		}
		j.rec.Attempt++
		return j.trigger(ctx)
	}
	return j.finished(st), nil
}

// waitOther polls another request of the mapping to its end (busy policy wait).
func (j *run) waitOther(ctx context.Context, requestID string) error {
	for n := 1; ; n++ {
		st, err := retry(ctx, j.cfg, func() (campaign.StatusResponse, error) {
			return j.api.Status(ctx, j.rec.Organization, j.rec.MappingID, requestID)
		})
		if err != nil && !campaign.Permanent(err) {
			return err
		}
		// A permanent error (the request is unknown) means there is
		// nothing to wait for.
		if err != nil || st.Status.Terminal() {
			return nil
		}
		if err := sleep(ctx, j.cfg.Schedule.Next(n)); err != nil {
			return err
		}
	}
}

func (j *run) finished(st campaign.StatusResponse) *Event {
	var ev *Event
	switch st.Status {
	case campaign.StatusSuccess:
		ev = j.event(EventSucceeded, "")
		ev.NumRecords = st.NumRecords
	case campaign.StatusAborted:
		ev = j.event(EventAborted, ReasonAborted)
	default:
		reason := ReasonIngestionFailed
		switch st.ErrorCode() {
		case campaign.CodeFetchFailed:
			reason = ReasonFetchFailed
		case campaign.CodeUploadFailed:
			reason = ReasonUploadFailed
		}
		ev = j.event(EventFailed, reason)
	}
	ev.Status, ev.Info, ev.BatchID, ev.ErrorCode = string(st.Status), st.Info, st.BatchID, st.ErrorCode()
	return ev
}

// apiFailure turns an error of the API into a terminal event or a hand-back.
// typ is the event type of a permanent failure (rejected before the
// ingestion ran, failed after).
func (j *run) apiFailure(ctx context.Context, err error, typ EventType) (*Event, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	switch {
	case campaign.Unauthorized(err):
		return j.failure(typ, ReasonUnauthorized, err), nil
	case isForbidden(err):
		return j.failure(typ, ReasonForbidden, err), nil
	case campaign.Permanent(err) || isServerError500(err):
		return j.failure(typ, ReasonAPIError, err), nil
	}
	return nil, err
}

func (j *run) failure(typ EventType, reason Reason, err error) *Event {
	ev := j.event(typ, reason)
	ev.Detail = err.Error()
	var ae *campaign.APIError
	if errors.As(err, &ae) {
		ev.ErrorCode = ae.ErrorCode
	}
	return ev
}

func (j *run) event(t EventType, reason Reason) *Event {
	ev := NewEvent(t, j.job.Command)
	ev.RequestID, ev.Attempt, ev.Polls = j.rec.RequestID, j.rec.Attempt, j.rec.Polls
	ev.TriggeredAt, ev.FinishedAt, ev.Reason = j.rec.TriggeredAt, Time(j.cfg.Now()), reason
	return &ev
}

func (j *run) observe(s campaign.Status) {
	if j.cfg.Observer != nil {
		j.cfg.Observer.ObservePoll(string(s), s.Known())
	}
}

// result turns the end of run into a Result.
func (j *run) result(parent, jctx context.Context, ev *Event, err error) Result {
	if ferr := j.flush(); err == nil && ev != nil && ferr != nil {
		// The triggered write failed: the job's state is not safe, hand
		// the command back rather than end it.
		ev, err = nil, ferr
	}
	if ev == nil && j.rec.Phase != PhaseDone {
		// A hand-back: the redelivery must find the request to resume
		// it (the journal's writes outlive the stopping worker).
		if serr := j.save(parent); serr != nil {
			j.log.Warn("cannot record the triggered request before handing the command back", "err", serr)
		}
	}
	switch {
	case ev != nil:
		return j.done(ev)
	case parent.Err() == nil && errors.Is(context.Cause(jctx), errDeadline):
		ev := j.event(EventTimedOut, ReasonDeadlineExceeded)
		ev.Status = j.rec.Status
		ev.Detail = fmt.Sprintf("the ingestion did not end before the job's deadline (%s after the command)", j.deadline())
		return j.done(ev)
	case parent.Err() != nil:
		return Result{Record: j.rec, Interrupted: true, Err: err}
	case j.job.LastDelivery:
		ev := j.event(EventFailed, ReasonAPIUnavailable)
		ev.Status = j.rec.Status
		ev.Detail = fmt.Sprintf("the API stayed unusable through the last delivery (%d): %v", j.job.Delivery, err)
		return j.done(ev)
	}
	delay := j.cfg.RedeliverDelay
	if ra, ok := campaign.RetryAfterOf(err); ok && ra > delay {
		delay = ra
	}
	return Result{Record: j.rec, Retry: delay, Err: err}
}

func (j *run) deadline() time.Duration {
	return j.job.Command.Deadline(j.job.Published, j.cfg.JobTimeout).Sub(j.job.Published)
}

func (j *run) done(ev *Event) Result {
	j.rec.Phase, j.rec.Outcome, j.rec.Reason = PhaseDone, ev.Type, ev.Reason
	j.rec.Status, j.rec.UpdatedAt = ev.Status, ev.FinishedAt
	return Result{Event: ev, Record: j.rec}
}

// mayHaveSubmitted reports whether a failed POST may have submitted a
// request: the API failed transiently, other than by throttling it.
func mayHaveSubmitted(err error) bool {
	var ae *campaign.APIError
	return campaign.Retryable(err) && !(errors.As(err, &ae) && ae.StatusCode == 429)
}

func isForbidden(err error) bool {
	var ae *campaign.APIError
	return errors.As(err, &ae) && ae.StatusCode == 403
}

// isServerError500 is Campaign's "Oops. Something went wrong. Check your URI"
// answer: retried a few times within the delivery, then final.
func isServerError500(err error) bool {
	var ae *campaign.APIError
	return errors.As(err, &ae) && ae.StatusCode == 500
}

// retry calls op until it succeeds, fails permanently, or fails transiently
// cfg.RetryAttempts times, with jittered exponential backoff (or the
// answer's Retry-After) between calls.
func retry[T any](ctx context.Context, cfg Config, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = cfg.RetryInitial, cfg.RetryMax
	return backoff.Retry(ctx, func() (T, error) {
		v, err := op()
		switch {
		case err == nil:
			return v, nil
		case !campaign.Retryable(err):
			return v, backoff.Permanent(err)
		}
		if ra, ok := campaign.RetryAfterOf(err); ok {
			return v, errors.Join(err, &backoff.RetryAfterError{Duration: ra})
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(cfg.RetryAttempts)), backoff.WithMaxElapsedTime(0))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
