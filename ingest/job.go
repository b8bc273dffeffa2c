package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

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
	// that waits for the publication to end: at most within (0: as long as
	// the journal bounds a write), nil once the event is stored,
	// ErrPublishing when within passed first (wait may then be called
	// again), another error when the event was not stored. The job makes
	// its first status check meanwhile, and waits before it acts on it. It
	// stores no state: the request id is stored by the first Progress; a
	// job whose first status check is already terminal stores none, its
	// terminal event being its witness (Result.Stored; one synchronous write
	// less per job, see BENCHMARKS.md).
	Triggered(ctx context.Context, ev Event) (wait func(within time.Duration) error)
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
	// TriggeredPatience is how long a job waits for its triggered event to
	// be stored before it also records its request in its state; default
	// 1s. A leader election of the events stream can hold the event for
	// seconds, and a worker that died meanwhile would leave the request
	// recorded nowhere: its redelivery would POST again.
	TriggeredPatience time.Duration
	Observer          Observer
	Logger            *slog.Logger
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
	if c.TriggeredPatience <= 0 {
		c.TriggeredPatience = time.Second
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
	// Stored: the command has a record in the store (Admission.Stored).
	Stored bool
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
	// Stored: a record of the job is in the store (found or claimed at
	// admission, or written by Progress), so the done record must replace
	// it. A job that ended without storing one leaves its terminal event
	// as its only trace: a redelivery finds that event (Records.Recover),
	// and a republish of its id within the command stream's duplicate
	// window is dropped by JetStream. No write is needed.
	Stored bool
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

// ErrUnknownOrganization is wrapped by an API whose caller has no
// credential for the command's organization: the command is rejected
// (unknown_organization).
var ErrUnknownOrganization = errors.New("no credential for the organization")

// ErrPublishing is what a Journal's triggered wait returns when its time
// passed before the publication ended.
var ErrPublishing = errors.New("the triggered event is still being published")

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
	j := &jobRun{Runner: r, journal: journal, job: job, log: job.Logger, stored: job.Stored}
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
	}
	var step func(first bool)
	step = func(first bool) {
		ev, p, err := j.step(jctx, first)
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
func (j *jobRun) step(ctx context.Context, first bool) (ev *Event, p *StepPanic, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &StepPanic{Value: v, Stack: debug.Stack()}
		}
	}()
	if first {
		ev, err = j.begin(ctx)
	} else {
		ev, err = j.poll(ctx)
	}
	return ev, nil, err
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
