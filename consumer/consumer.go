// Package consumer drives jobs from JetStream: it pulls commands as job slots
// free up, keeps their leases with InProgress heartbeats, and acks, naks or
// terms each command once its outcome is safe. What becomes of a delivery
// and of its job is decided by ingest; where things live in JetStream is
// the layout's.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/metrics"
	"github.com/acme/campaign-ingest/publisher"
)

// Config tunes a Consumer.
type Config struct {
	// MaxInFlight is the number of jobs run at once; default 100. The
	// consumer pulls as many commands as there are free slots, and up to a
	// quarter of MaxInFlight more while jobs end often (pulls).
	MaxInFlight int
	// FetchWait is how long one pull waits for commands; default 1s.
	FetchWait time.Duration
	// PendingEvery is how often commands_pending is refreshed; default 15s.
	PendingEvery time.Duration
	// WriteTimeout bounds each JetStream write; default 10s.
	WriteTimeout time.Duration
	// StallAfter is how long pulls may keep failing before Healthy reports
	// the consumer stalled; default 30s.
	StallAfter time.Duration
	// Organizations gives each organization's share of MaxInFlight and
	// metric label; nil means every organization may use every slot and
	// is labelled "_other".
	Organizations Organizations
	// MaxParked bounds the commands held while their organization has used
	// up its share; default 10000.
	MaxParked int
	// MaxStarting is the number of goroutines that run jobs' first steps
	// (admission, the trigger and the first status check), and so bounds
	// the first steps made at once; default 128, twice the API connections
	// per host. A burst of commands waits in a queue instead of growing
	// thousands of stacks through the HTTP, JSON and NATS call chains at
	// once, and each first step runs on a stack that has already grown;
	// with MaxInFlight at or below it, nothing ever waits.
	MaxStarting int
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
	if c.StallAfter <= 0 {
		c.StallAfter = 30 * time.Second
	}
	if c.MaxParked <= 0 {
		c.MaxParked = 10000
	}
	if c.MaxStarting <= 0 {
		c.MaxStarting = 128
	}
	return c
}

// Consumer pulls commands and runs their jobs.
type Consumer struct {
	js     *layout.Handles
	store  *layout.Store
	pub    *publisher.Publisher
	runner *ingest.Runner
	m      *metrics.Metrics
	log    *slog.Logger
	cfg    Config

	mu     sync.Mutex
	active map[*delivery]struct{}
	// pulling is set once a pull succeeded and cleared when a pull fails or
	// Run returns; failingSince is when pulls started failing (unix nanos,
	// 0 while they succeed).
	pulling      atomic.Bool
	failingSince atomic.Int64
}

// New returns a Consumer. m and log may be nil.
func New(js *layout.Handles, pub *publisher.Publisher, runner *ingest.Runner, m *metrics.Metrics, log *slog.Logger, cfg Config) *Consumer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.Discard()
	}
	cfg = cfg.withDefaults()
	return &Consumer{
		js: js, store: layout.NewStore(js.Jobs, js.JetStream), pub: pub, runner: runner, m: m, log: log,
		cfg: cfg, active: make(map[*delivery]struct{}),
	}
}

// Pulling reports whether the consumer's last pull succeeded (for /readyz).
func (c *Consumer) Pulling() bool { return c.pulling.Load() }

// Healthy reports an error when pulls have been failing for longer than
// StallAfter: the worker can no longer make progress.
func (c *Consumer) Healthy() error {
	since := c.failingSince.Load()
	if since == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, since)); d > c.cfg.StallAfter {
		return errors.New("pulls have failed for " + d.Round(time.Second).String())
	}
	return nil
}

// Run pulls and runs commands until ctx ends. Then it stops pulling, hands
// every unfinished command back at once (Nak) so that another replica
// resumes it from its recorded state, waits for its jobs, and returns.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.pulling.Store(false)
	if err := c.store.StartBatchedReads(ctx, 0, 0); err != nil {
		c.log.Warn("job records are read one per request", "err", err)
	}
	defer c.store.StopBatchedReads()
	// Jobs stop once the pull in progress has returned, so that the
	// commands they hand back cannot come back to this worker's own pull.
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	wg.Go(func() { c.heartbeat(bgCtx) })
	wg.Go(func() { c.watchPending(bgCtx) })
	wg.Go(func() { c.watchExhausted(bgCtx) })
	slots := newSlots(c.cfg.MaxInFlight, c.cfg.MaxParked, c.cfg.Organizations)
	first := newStarters(min(c.cfg.MaxStarting, c.cfg.MaxInFlight), c.cfg.MaxInFlight)
	pulls := c.newPulls(slots)
	arrive := func(msg jetstream.Msg) { c.arrive(jobCtx, msg, slots, first, &wg) }
	for ctx.Err() == nil {
		if err := pulls.takeErr(); err != nil {
			c.pullFailed(ctx, err)
			continue
		}
		n := pulls.next()
		if n == 0 {
			pulls.waitChange(ctx)
			continue
		}
		if err := pulls.start(ctx, n, arrive); err != nil {
			c.pullFailed(ctx, err)
		}
	}
	pulls.wait()
	for _, giveBack := range slots.drain() {
		giveBack()
	}
	running, _ := slots.used()
	c.log.Info("stopping: handing unfinished jobs back", "inFlight", running)
	stopJobs()
	// A command whose record read is still on its way is given back when
	// the read ends: now, not at the read's timeout.
	c.store.StopBatchedReads()
	stopBg()
	wg.Wait()
	first.stop()
	return nil
}

// pullFailed notes a failed pull and waits before the next one, longer
// after each failure in a row (at most 5 s).
func (c *Consumer) pullFailed(ctx context.Context, err error) {
	c.pulling.Store(false)
	now := time.Now()
	c.failingSince.CompareAndSwap(0, now.UnixNano())
	c.log.WarnContext(ctx, "pull failed", "err", err)
	wait := min(time.Since(time.Unix(0, c.failingSince.Load()))/4+250*time.Millisecond, 5*time.Second)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (c *Consumer) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.WriteTimeout)
}
