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
	o      options
	sim    *child
	simURL string
	hc     *http.Client
	tmp    string
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
	return &env{o: o, sim: sim, simURL: sim.addr, hc: &http.Client{Timeout: time.Minute}, tmp: tmp}, nil
}

func (e *env) close() {
	e.sim.stop()
	os.RemoveAll(e.tmp)
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
	cfg.CampaignURL = e.simURL
	cfg.IMS.URL = e.simURL + "/ims/token/v3"
	cfg.IMS.ClientID, cfg.IMS.ClientSecret = campaignsim.DemoClientID, campaignsim.DemoClientSecret
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MaxInFlight = maxInFlight
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
