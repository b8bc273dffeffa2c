package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/pause"
)

// ChaosConfig is a chaos/soak run. The zero value of a field means its
// default.
type ChaosConfig struct {
	// Commands to publish; default 1000. They are published evenly over
	// Duration.
	Commands int
	// Duration of the chaos: publishing, kills and faults; default 1m.
	// Then the run waits for every command to end (at most Drain).
	Duration time.Duration
	// Drain bounds the wait for the last commands; default 5m.
	Drain time.Duration
	// Workers is the number of worker processes; default 3.
	Workers int
	// KillEvery stops a random worker every KillEvery (every third time
	// with SIGTERM, else SIGKILL) and starts a new one; 0 = no kills.
	KillEvery time.Duration
	// Faults injects random API faults (5xx, drops, malformed answers,
	// throttling, latency beyond the client timeout, POST answers lost
	// after the request was submitted) at a few percent of the calls.
	Faults bool
	// Cluster runs a three-node JetStream cluster (R3) instead of a single
	// server.
	Cluster bool
	// NATSEvery stops NATS every NATSEvery for two seconds: the single
	// server, or the leader of the command stream and of the job bucket in
	// turn; 0 = never.
	NATSEvery time.Duration
	// IngestionTime is how long each ingestion runs in the simulator;
	// default 5s (longer than AckWait: see TestReplicasKilledAndRestarted).
	IngestionTime time.Duration
	// Bin is the ingest-worker binary; default: built into Dir.
	Bin string
	// Dir holds the NATS storage, the binary and the worker logs; default a
	// new temporary directory, removed at the end unless KeepDir.
	Dir     string
	KeepDir bool
	// Logf reports progress; default silent.
	Logf func(format string, args ...any)
}

// Chaos timing of the workers.
const (
	ChaosAckWait = 3 * time.Second
	ChaosPollMax = 2 * time.Second
)

func (c ChaosConfig) withDefaults() ChaosConfig {
	if c.Commands <= 0 {
		c.Commands = 1000
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 3
	}
	if c.IngestionTime <= 0 {
		c.IngestionTime = 5 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Chaos runs a chaos/soak run and reports what it proved. The error is
// about the harness (a server that does not start, commands not drained);
// broken guarantees are in the Report (Report.OK).
func Chaos(ctx context.Context, cfg ChaosConfig) (rep Report, err error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "ingest-chaos-"); err != nil {
			return rep, err
		}
		if !cfg.KeepDir {
			defer os.RemoveAll(cfg.Dir)
		}
	}
	if cfg.Bin == "" {
		cfg.Logf("building ingest-worker")
		if cfg.Bin, err = BuildWorker(ctx, cfg.Dir); err != nil {
			return rep, err
		}
	}
	ch := &chaos{cfg: cfg}
	defer ch.close()
	if err := ch.startNATS(); err != nil {
		return rep, err
	}
	cmds := Commands("chaos", cfg.Commands)
	ch.api = StartAPI(Mappings(cmds, campaignsim.Script{Records: 15, Duration: campaignsim.Duration(cfg.IngestionTime)})...)
	if cfg.Faults {
		injectFaults(ch.api.Sim)
	}
	if err := ch.connect(); err != nil {
		return rep, err
	}
	logs := filepath.Join(cfg.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return rep, err
	}
	ch.wcfg = WorkerConfig{Bin: cfg.Bin, NATSURL: ch.natsURL, API: ch.api, LogDir: logs, Env: ch.env()}
	for range cfg.Workers {
		if _, err := ch.startWorker(); err != nil {
			return rep, err
		}
	}
	cfg.Logf("%d workers running against %s; logs in %s", cfg.Workers, ch.natsURL, logs)

	start := time.Now()
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	var pubErr error
	wg.Go(func() { pubErr = ch.publish(runCtx, cmds) })
	if cfg.KillEvery > 0 {
		wg.Go(func() { ch.killLoop(runCtx) })
	}
	if cfg.NATSEvery > 0 {
		wg.Go(func() { ch.natsLoop(runCtx) })
	}
	wg.Go(func() { ch.progressLoop(runCtx) })
	wg.Wait()
	if pubErr != nil {
		return rep, pubErr
	}
	cfg.Logf("chaos over after %s; waiting for the last commands", time.Since(start).Round(time.Second))
	drainErr := WaitDrained(ctx, ch.js, cfg.Drain)
	evs, err := ReadEvents(ctx, ch.js)
	if err != nil {
		return rep, err
	}
	rep = Check(cmds, evs, ch.api.Sim, 1)
	done := Finished(evs)
	calls := ch.api.Calls()
	for _, s := range ch.stops {
		rs, missing := Resumes(calls, s.proc, s.at, done)
		if s.term {
			rep.Terms++
			rep.AddHandOvers(rs...)
		} else {
			rep.Kills++
			rep.AddResumes(rs...)
		}
		for _, id := range missing {
			rep.Problems = append(rep.Problems, fmt.Sprintf("request %s of stopped worker %d never checked again", id, s.proc))
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, drainErr
}

// chaos is one run's state.
type chaos struct {
	cfg     ChaosConfig
	single  *NATS
	cluster *Cluster
	natsURL string
	api     *API
	nc      *nats.Conn
	js      jetstream.JetStream
	wcfg    WorkerConfig

	mu      sync.Mutex
	nextID  int
	workers []*Worker
	stops   []stopped
}

// stopped is a worker stopped by the chaos.
type stopped struct {
	proc int
	at   time.Time
	term bool
}

func (ch *chaos) startNATS() error {
	dir := filepath.Join(ch.cfg.Dir, "nats")
	if ch.cfg.Cluster {
		c, err := StartCluster(dir, 3)
		if err != nil {
			return err
		}
		ch.cluster, ch.natsURL = c, c.URLs()
		return c.WaitReady(30 * time.Second)
	}
	n, err := StartNATS(dir)
	if err != nil {
		return err
	}
	ch.single, ch.natsURL = n, n.URL()
	return nil
}

func (ch *chaos) connect() error {
	nc, err := nats.Connect(ch.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	ch.nc = nc
	ch.js, err = jetstream.New(nc)
	return err
}

func (ch *chaos) env() []string {
	env := []string{
		"INGEST_ACK_WAIT=" + ChaosAckWait.String(),
		"INGEST_POLL_INITIAL=500ms",
		"INGEST_POLL_MAX=" + ChaosPollMax.String(),
		"INGEST_API_RETRY_INITIAL=50ms",
		"INGEST_API_RETRY_MAX=500ms",
		"INGEST_API_TIMEOUT=2s",
		"INGEST_REDELIVER_DELAY=500ms",
		"INGEST_MAX_IN_FLIGHT=2000",
		"INGEST_MAX_DELIVER=20",
	}
	if ch.cfg.Cluster {
		env = append(env, "INGEST_REPLICAS=3")
	}
	return env
}

func (ch *chaos) startWorker() (*Worker, error) {
	ch.mu.Lock()
	ch.nextID++
	id := ch.nextID
	ch.mu.Unlock()
	w, err := StartWorker(ch.wcfg, id)
	if err != nil {
		return nil, err
	}
	ch.mu.Lock()
	ch.workers = append(ch.workers, w)
	ch.mu.Unlock()
	if _, err := w.HTTPAddr(30 * time.Second); err != nil {
		return nil, err
	}
	return w, nil
}

// publish publishes cmds evenly over the chaos's duration, in batches of
// 100, retrying while NATS is away.
func (ch *chaos) publish(ctx context.Context, cmds []ingest.Command) error {
	const batch = 100
	n := (len(cmds) + batch - 1) / batch
	every := ch.cfg.Duration * 8 / 10 / time.Duration(n)
	for i := 0; i < len(cmds); i += batch {
		part := cmds[i:min(i+batch, len(cmds))]
		for {
			pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := Publish(pctx, ch.js, part)
			cancel()
			if err == nil {
				break
			}
			ch.cfg.Logf("publish: %v (retrying)", err)
			time.Sleep(500 * time.Millisecond)
		}
		if ctx.Err() == nil {
			_ = pause.For(ctx, every)
		}
	}
	return nil
}

func (ch *chaos) killLoop(ctx context.Context) {
	t := time.NewTicker(ch.cfg.KillEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ch.mu.Lock()
		var live []*Worker
		for _, w := range ch.workers {
			if !w.Exited() {
				live = append(live, w)
			}
		}
		ch.mu.Unlock()
		if len(live) == 0 {
			continue
		}
		w := live[rand.IntN(len(live))]
		s := stopped{proc: w.ID, term: n%3 == 0}
		if s.term {
			s.at = w.Term()
			if err := w.Wait(30 * time.Second); err != nil {
				ch.cfg.Logf("worker %d after SIGTERM: %v", w.ID, err)
				w.Kill()
			}
		} else {
			s.at = w.Kill()
		}
		ch.mu.Lock()
		ch.stops = append(ch.stops, s)
		ch.mu.Unlock()
		if _, err := ch.startWorker(); err != nil {
			ch.cfg.Logf("restart a worker: %v", err)
		}
	}
}

func (ch *chaos) natsLoop(ctx context.Context) {
	t := time.NewTicker(ch.cfg.NATSEvery)
	defer t.Stop()
	streams := []string{"INGEST_COMMANDS", "KV_INGEST_JOBS"}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		victim := ch.single
		what := "the server"
		if ch.cluster != nil {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			l, err := ch.cluster.Leader(lctx, ch.js, streams[n%2])
			cancel()
			if err != nil {
				ch.cfg.Logf("leader of %s: %v", streams[n%2], err)
				continue
			}
			victim, what = l, fmt.Sprintf("%s (leader of %s)", l.Name(), streams[n%2])
		}
		ch.cfg.Logf("stopping NATS %s for 2s", what)
		victim.Stop()
		time.Sleep(2 * time.Second)
		if err := victim.Start(); err != nil {
			ch.cfg.Logf("restart NATS %s: %v", what, err)
		}
	}
}

func (ch *chaos) progressLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := ReadProgress(pctx, ch.js)
		cancel()
		if err == nil {
			ch.cfg.Logf("queued %d, events %d", p.Queued, p.Events)
		}
	}
}

func (ch *chaos) close() {
	ch.mu.Lock()
	ws := ch.workers
	ch.mu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
	if ch.nc != nil {
		ch.nc.Close()
	}
	if ch.api != nil {
		ch.api.Close()
	}
	if ch.single != nil {
		ch.single.Stop()
	}
	if ch.cluster != nil {
		ch.cluster.Stop()
	}
}

// injectFaults makes a few percent of the API's calls fail in every way
// the simulator knows.
func injectFaults(sim *campaignsim.Server) {
	for _, f := range []campaignsim.Fault{
		{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 503, Rate: 0.03},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultDrop, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultMalformed, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultLatency, Latency: 2500 * time.Millisecond, Rate: 0.005},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 502, Rate: 0.02},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultDrop, Rate: 0.02, AfterProcessing: true},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Rate: 0.01},
	} {
		sim.InjectFault(f)
	}
}
