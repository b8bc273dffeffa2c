package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/pause"
)

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
	if cfg.EventFaultEvery > 0 {
		wg.Go(func() { ch.eventFaultLoop(runCtx) })
	}
	wg.Go(func() { ch.progressLoop(runCtx) })
	wg.Wait()
	if pubErr != nil {
		return rep, pubErr
	}
	cfg.Logf("chaos over after %s; waiting for the last commands", time.Since(start).Round(time.Second))
	drainErr := WaitDrained(ctx, ch.js, cfg.Drain)
	// A stream whose leader was just stopped may not answer at once.
	evs, err := ReadEvents(ctx, ch.js)
	for try := 1; err != nil && try < 5; try++ {
		cfg.Logf("read the events: %v; again in 2s", err)
		if pause.For(ctx, 2*time.Second) != nil {
			break
		}
		evs, err = ReadEvents(ctx, ch.js)
	}
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
	if err := writeWitness(cfg.Dir, calls, ch.stops); err != nil {
		cfg.Logf("write the call log: %v", err)
	}
	rep.EventFaults = ch.eventFaults
	rep.TriggeredNotStored = countLogged(logs, TriggeredNotStoredLog)
	rep.TriggeredSlow = countLogged(logs, TriggeredSlowLog)
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
	// eventFaults counts the events-stream faults run.
	eventFaults int
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
