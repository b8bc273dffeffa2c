package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/worker"
)

// benchOrg is the organization of every benchmark command.
const benchOrg = "bench"

// env is what every phase shares: the simulator child and the options.
type env struct {
	o   options
	sim *simProc // shared by the copies of env a phase makes
	hc  *http.Client
	tmp string
}

// simProc is the simulator child and its base URL.
type simProc struct {
	c   *child
	url string
}

func newEnv(ctx context.Context, o options) (*env, error) {
	tmp, err := os.MkdirTemp("", "ingest-bench-")
	if err != nil {
		return nil, err
	}
	sim, err := startChild("-role", "sim")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &env{o: o, sim: &simProc{c: sim, url: sim.addr}, hc: &http.Client{Timeout: time.Minute}, tmp: tmp}, nil
}

func (e *env) close() {
	e.sim.c.stop()
	os.RemoveAll(e.tmp)
}

// freshSim replaces the simulator with a new one that holds the mappings
// ms (beside the instant mapping every simulator child starts with), so
// that each side of a throughput pair starts from the same simulator, as
// it does from a fresh nats-server. One simulator kept across the runs
// (its call log and requests growing by ~40,000 entries a run) took 70 %
// more CPU per job in whichever side of a pair ran first (2026-12-07:
// 170–177 against 94–102 µs), which moved each pair's ratio by ±0.2.
func (e *env) freshSim(ms []campaignsim.Mapping) error {
	e.sim.c.stop()
	e.hc.CloseIdleConnections()
	c, err := startChild("-role", "sim")
	if err != nil {
		return err
	}
	e.sim.c, e.sim.url = c, c.addr
	if len(ms) == 0 {
		return nil
	}
	return e.putMappings(ms)
}

// natsRun is the NATS server of one run.
type natsRun struct {
	url string
	// pid is the nats child's process id, 0 for an external server.
	pid int
	// monitor is the base URL of the server's monitoring endpoint ("" when
	// unknown: an external server without -nats-monitor).
	monitor string
	stop    func()
}

// natsServer returns a fresh server for one run (fsync mode "always" or
// "lazy"), or the external one.
func (e *env) natsServer(mode string) (*natsRun, error) {
	if e.o.natsURL != "" {
		return &natsRun{url: e.o.natsURL, monitor: e.o.natsMonitor, stop: func() {}}, nil
	}
	dir, err := os.MkdirTemp(e.tmp, "js-")
	if err != nil {
		return nil, err
	}
	args := []string{"-role", "nats", "-store", dir}
	if mode == "lazy" {
		args = append(args, "-lazy")
	}
	c, err := startChild(args...)
	if err != nil {
		return nil, err
	}
	url, monitor, _ := strings.Cut(c.addr, " ")
	return &natsRun{url: url, pid: c.cmd.Process.Pid, monitor: monitor, stop: func() { c.stop(); os.RemoveAll(dir) }}, nil
}

// workerConfig is the worker's default configuration pointed at natsURL and
// the simulator.
func (e *env) workerConfig(natsURL string, maxInFlight int) worker.Config {
	cfg := worker.DefaultConfig()
	cfg.NATS.URL = natsURL
	cfg.CampaignURL = e.sim.url
	cfg.IMS.URL = e.sim.url + "/ims/token/v3"
	cfg.IMS.ClientID, cfg.IMS.ClientSecret = campaignsim.DemoClientID, campaignsim.DemoClientSecret
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MaxInFlight = maxInFlight
	cfg.NATS.CoalesceWrites = e.o.coalesce
	return cfg
}

// runningWorker is a worker run in process.
type runningWorker struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

func startWorker(ctx context.Context, cfg worker.Config) (*runningWorker, error) {
	w, err := worker.New(ctx, cfg, worker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(rctx) }()
	return r, nil
}

func (r *runningWorker) stop() error {
	r.cancel()
	return <-r.done
}
