package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/consumer"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/metrics"
	"github.com/acme/campaign-ingest/natsconn"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/publisher"
)

// Options are for programs that run a worker in process.
type Options struct {
	// Logger; default discards.
	Logger *slog.Logger
	// Version is reported in build_info.
	Version string
	// Registry receives the metrics; default a new one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// Simulator, with Config.Simulate, is served instead of a new one with
	// the demo mappings.
	Simulator *campaignsim.Server
}

// Worker is a running set of the worker's parts.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	m       *metrics.Metrics
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	cons    *consumer.Consumer
	http    *metrics.Server
	sim     *campaignsim.Server
	simSrv  *http.Server
	simAddr string
	closers []func()
}

// New starts the worker's parts without consuming: the embedded NATS
// server when no URL is set, the simulator when asked, the NATS connection,
// the streams, and the metrics listener. Run consumes.
func New(ctx context.Context, cfg Config, opts Options) (w *Worker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w = &Worker{cfg: cfg, log: opts.Logger, reg: opts.Registry}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.reg == nil {
		w.reg = metrics.NewRegistry()
	}
	parts := w // the returns below set w to nil
	defer func() {
		if err != nil {
			parts.close()
		}
	}()
	w.m = metrics.New(w.reg, opts.Version)
	w.m.Init(outcomes(), reasons())
	natsURL, err := w.startNATS()
	if err != nil {
		return nil, err
	}
	if w.nc, err = w.connect(ctx, natsURL); err != nil {
		return nil, err
	}
	w.closers = append(w.closers, w.nc.Close)
	if w.js, err = jetstream.New(w.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	api, err := w.campaignClient(opts.Simulator)
	if err != nil {
		return nil, err
	}
	bound, err := consumer.Setup(ctx, w.js, consumer.Topology{
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending,
		Replicas: cfg.Replicas, JobTTL: cfg.JobTTL, EventsMaxAge: cfg.EventsMaxAge, Create: cfg.CreateStreams,
	})
	if err != nil {
		return nil, err
	}
	runner := ingest.NewRunner(api, ingest.Config{
		Schedule:        ingest.Schedule{Initial: cfg.PollInitial, Max: cfg.PollMax},
		JobTimeout:      cfg.JobTimeout,
		BusyPolicy:      ingest.BusyPolicy(cfg.BusyPolicy),
		ResubmitAborted: cfg.ResubmitAborted,
		RetryAttempts:   cfg.APIRetries,
		RetryInitial:    cfg.APIRetryInitial,
		RetryMax:        cfg.APIRetryMax,
		RedeliverDelay:  cfg.RedeliverDelay,
		Observer:        w.m,
		Logger:          w.log,
	})
	w.cons = consumer.New(bound, publisher.New(w.js), runner, w.m, w.log, consumer.Config{MaxInFlight: cfg.MaxInFlight})
	w.http, err = metrics.Listen(metrics.ServerConfig{Addr: cfg.HTTPAddr, Ready: w.ready, Pprof: cfg.Pprof}, w.reg)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// startNATS starts the embedded server when no URL is configured and
// returns its URL ("" when an external server is used).
func (w *Worker) startNATS() (string, error) {
	if w.cfg.NATS.URL != "" {
		return "", nil
	}
	host, port, err := splitHostPort(w.cfg.EmbeddedListen)
	if err != nil {
		return "", fmt.Errorf("INGEST_EMBEDDED_LISTEN: %w", err)
	}
	w.ns, err = natsembed.Start(natsembed.Options{
		Host: host, Port: port, StoreDir: filepath.Join(w.cfg.DataDir, "jetstream"), LazySync: w.cfg.EmbeddedLazySync,
	})
	if err != nil {
		return "", err
	}
	w.closers = append(w.closers, func() { w.ns.Shutdown(); w.ns.WaitForShutdown() })
	w.log.Info("embedded NATS server started", "url", w.ns.ClientURL(), "storeDir", w.cfg.DataDir, "fsyncEveryWrite", !w.cfg.EmbeddedLazySync)
	return w.ns.ClientURL(), nil
}

// connectPatience is how long the worker waits for a NATS server that does
// not answer yet: in compose or Kubernetes it often starts first.
const connectPatience = time.Minute

// connect connects to NATS, retrying with backoff for connectPatience while
// no server answers. Other errors (authorization, TLS) end it at once.
func (w *Worker) connect(ctx context.Context, url string) (*nats.Conn, error) {
	return backoff.Retry(ctx, func() (*nats.Conn, error) {
		nc, err := natsconn.Connect(w.cfg.NATS, url, w.log)
		if err != nil && !errors.Is(err, nats.ErrNoServers) {
			return nil, backoff.Permanent(err)
		}
		if err != nil {
			w.log.Warn("NATS does not answer yet; retrying", "err", err)
		}
		return nc, err
	}, backoff.WithMaxElapsedTime(connectPatience))
}

// campaignClient builds the API client, pointed at the in-process
// simulator when Simulate is set.
func (w *Worker) campaignClient(sim *campaignsim.Server) (*campaign.Client, error) {
	cfg := w.cfg
	cc := campaign.Config{
		BaseURL:   cfg.CampaignURL,
		APIKey:    cfg.APIKey,
		IMS:       campaign.IMSConfig{TokenURL: cfg.IMS.URL, ClientID: cfg.IMS.ClientID, ClientSecret: cfg.IMS.ClientSecret, Scopes: cfg.IMS.Scopes},
		Timeout:   cfg.APITimeout,
		RateLimit: rate.Limit(cfg.APIRateLimit),
	}
	if cfg.Simulate {
		base, err := w.startSimulator(sim)
		if err != nil {
			return nil, err
		}
		cc.BaseURL, cc.APIKey = base, campaignsim.DemoClientID
		cc.IMS = campaign.IMSConfig{TokenURL: base + "/ims/token/v3", ClientID: campaignsim.DemoClientID, ClientSecret: campaignsim.DemoClientSecret}
	}
	roots, err := cfg.campaignRoots()
	if err != nil {
		return nil, err
	}
	cc.Transport = w.m.InstrumentTransport(campaign.NewTransport(roots), campaign.Operation)
	c, err := campaign.New(cc)
	if err != nil {
		return nil, fmt.Errorf("campaign client: %w", err)
	}
	return c, nil
}

func (w *Worker) startSimulator(sim *campaignsim.Server) (string, error) {
	if sim == nil {
		sim = campaignsim.New(campaignsim.Options{Logger: w.log.With("component", "campaign-sim")})
		for _, m := range campaignsim.DemoMappings("acme") {
			sim.PutMapping(m)
		}
	}
	ln, err := net.Listen("tcp", w.cfg.SimulateAddr)
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	w.sim, w.simAddr = sim, ln.Addr().String()
	w.simSrv = &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.simSrv.Serve(ln)
	}()
	w.closers = append(w.closers, func() { _ = w.simSrv.Close(); <-done })
	base := "http://" + w.simAddr
	w.log.Info("Campaign simulator started", "url", base, "calls", base+"/_sim/calls")
	return base, nil
}

func (w *Worker) ready() error {
	switch {
	case !w.nc.IsConnected():
		return errors.New("NATS not connected")
	case !w.cons.Bound():
		return errors.New("consumer not bound")
	}
	return nil
}

// Run consumes until ctx ends, then stops in order: stop pulling and hand
// unfinished jobs back, drain NATS, stop the HTTP server and the embedded
// parts. It closes the worker.
func (w *Worker) Run(ctx context.Context) error {
	defer w.close()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	var wg sync.WaitGroup
	var httpErr error
	wg.Go(func() { httpErr = w.http.Serve(httpCtx) })
	wg.Go(func() { w.watchConnection(httpCtx) })
	w.log.Info("worker running", "http", w.http.Addr().String(), "maxInFlight", w.cfg.MaxInFlight)
	err := w.cons.Run(ctx)
	if derr := w.drain(); derr != nil {
		w.log.Warn("drain NATS", "err", derr)
	}
	stopHTTP()
	wg.Wait()
	w.log.Info("worker stopped")
	return errors.Join(err, httpErr)
}

// drain flushes what the worker published (acks, naks) and closes the
// connection, waiting at most 10 s.
func (w *Worker) drain() error {
	closed := make(chan struct{})
	w.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := w.nc.Drain(); err != nil {
		return err
	}
	select {
	case <-closed:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("drain did not finish within 10s")
	}
}

// watchConnection keeps nats_connected current.
func (w *Worker) watchConnection(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		v := 0.0
		if w.nc.IsConnected() {
			v = 1
		}
		w.m.NATSConnected.Set(v)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// NATSURL is the URL of the embedded server, or "" with an external one.
func (w *Worker) NATSURL() string {
	if w.ns == nil {
		return ""
	}
	return w.ns.ClientURL()
}

// HTTPAddr is the metrics server's address.
func (w *Worker) HTTPAddr() string { return w.http.Addr().String() }

// SimulatorURL is the in-process simulator's base URL, or "".
func (w *Worker) SimulatorURL() string {
	if w.simAddr == "" {
		return ""
	}
	return "http://" + w.simAddr
}

// Simulator is the in-process simulator, or nil.
func (w *Worker) Simulator() *campaignsim.Server { return w.sim }

// Metrics is the worker's metric set.
func (w *Worker) Metrics() *metrics.Metrics { return w.m }

// Registry is the worker's metric registry.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}

func outcomes() []string {
	var out []string
	for _, t := range ingest.EventTypes {
		if t.Terminal() {
			out = append(out, string(t))
		}
	}
	return out
}

func reasons() []string {
	out := make([]string, len(ingest.Reasons))
	for i, r := range ingest.Reasons {
		out[i] = string(r)
	}
	return out
}
