package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/consumer"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/metrics"
	"github.com/acme/campaign-ingest/natsconn"
	"github.com/acme/campaign-ingest/orgs"
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
	// Handlers are served on the metrics listener besides /metrics,
	// /healthz and /readyz (ServeMux patterns).
	Handlers map[string]http.Handler
}

// Worker is a running set of the worker's parts.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics.Metrics
	nc   *nats.Conn
	js   jetstream.JetStream
	cons *consumer.Consumer
	http *metrics.Server
	orgs *orgs.Directory
	// transport is the API clients' base transport; Close closes its idle
	// connections.
	transport *http.Transport
	// lost is closed when the NATS connection is closed for good.
	lost      chan struct{}
	lostOnce  sync.Once
	closeOnce sync.Once
}

// New connects and prepares the worker's parts without consuming: the NATS
// connection, the streams, the consumer and the metrics listener. Run
// consumes; Close releases what New acquired.
func New(ctx context.Context, cfg Config, opts Options) (w *Worker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w = &Worker{cfg: cfg, log: opts.Logger, reg: opts.Registry, lost: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.reg == nil {
		w.reg = metrics.NewRegistry()
	}
	parts := w // the returns below set w to nil
	defer func() {
		if err != nil {
			parts.Close()
		}
	}()
	w.m = metrics.New(w.reg, opts.Version)
	if w.nc, err = w.connect(ctx); err != nil {
		return nil, err
	}
	if w.js, err = jetstream.New(w.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if w.orgs, err = w.organizations(); err != nil {
		return nil, err
	}
	w.m.Init(append(w.orgs.Names(), orgs.OtherLabel), outcomes(), reasons())
	handles, err := layout.Setup(ctx, w.js, layout.Topology{
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending,
		Replicas: cfg.Replicas, JobTTL: cfg.JobTTL, EventsMaxAge: cfg.EventsMaxAge, Create: cfg.CreateStreams,
	})
	if err != nil {
		return nil, err
	}
	w.cons = consumer.New(handles, publisher.New(w.js), ingest.NewRunner(w.orgs, w.runnerConfig()), w.m, w.log, consumer.Config{
		MaxInFlight: cfg.MaxInFlight, MaxParked: cfg.MaxParked, StallAfter: cfg.StallAfter, Organizations: w.orgs,
	})
	w.http, err = metrics.Listen(metrics.ServerConfig{
		Addr: cfg.HTTPAddr, Ready: w.ready, Healthy: w.healthy, Pprof: cfg.Pprof, Handlers: opts.Handlers,
	}, w.reg)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Worker) runnerConfig() ingest.Config {
	cfg := w.cfg
	return ingest.Config{
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
	}
}

// connectPatience is how long the worker waits for a NATS server that does
// not answer yet: in compose or Kubernetes it often starts first.
const connectPatience = time.Minute

// connect connects to NATS, retrying with backoff for connectPatience while
// no server answers. Other errors (authorization, TLS) end it at once.
func (w *Worker) connect(ctx context.Context) (*nats.Conn, error) {
	return backoff.Retry(ctx, func() (*nats.Conn, error) {
		nc, err := natsconn.Connect(w.cfg.NATS, "", w.log, nats.ClosedHandler(func(*nats.Conn) { w.lostOnce.Do(func() { close(w.lost) }) }))
		if err != nil && !errors.Is(err, nats.ErrNoServers) {
			return nil, backoff.Permanent(err)
		}
		if err != nil {
			w.log.Warn("NATS does not answer yet; retrying", "err", err)
		}
		return nc, err
	}, backoff.WithMaxElapsedTime(connectPatience))
}

// organizations builds the directory of the organizations' API clients:
// the organizations file's, and the default credential (INGEST_IMS_*) of
// the others when it is set.
func (w *Worker) organizations() (*orgs.Directory, error) {
	cfg := w.cfg
	roots, err := cfg.campaignRoots()
	if err != nil {
		return nil, err
	}
	w.transport = campaign.NewTransport(roots)
	transport := w.m.InstrumentTransport(w.transport, campaign.Operation)
	var def *orgs.Credential
	if cfg.IMS.ClientID != "" {
		def = &orgs.Credential{
			ClientID: cfg.IMS.ClientID, Secret: cfg.IMS.ClientSecret, SecretFile: cfg.IMS.ClientSecretFile,
			APIKey: cfg.APIKey, Scopes: cfg.IMS.Scopes, RateLimit: cfg.APIRateLimit,
		}
	}
	return orgs.New(orgs.Config{
		File: cfg.OrgsFile, Default: def, MaxInFlight: cfg.MaxInFlight, Logger: w.log, OnReload: w.m.ObserveReload,
		NewClient: func(c orgs.Credential) (orgs.API, error) {
			cl, err := campaign.New(campaign.Config{
				BaseURL:   cfg.CampaignURL,
				APIKey:    c.APIKey,
				IMS:       campaign.IMSConfig{TokenURL: cfg.IMS.URL, ClientID: c.ClientID, ClientSecret: c.Secret, Scopes: c.Scopes},
				Timeout:   cfg.APITimeout,
				RateLimit: rate.Limit(c.RateLimit),
				Transport: transport,
			})
			if err != nil {
				return nil, fmt.Errorf("campaign client: %w", err)
			}
			return cl, nil
		},
	})
}

// Reload rereads the organizations file and the secret files now (SIGHUP);
// running jobs keep running, new tokens use the new credentials.
func (w *Worker) Reload() error { return w.orgs.Reload() }

func (w *Worker) ready() error {
	switch {
	case !w.nc.IsConnected():
		return errors.New("NATS not connected")
	case !w.cons.Pulling():
		return errors.New("consumer not pulling")
	}
	return nil
}

// healthy fails when the worker can no longer make progress: its NATS
// connection is closed for good, or its pulls keep failing (the consumer
// was deleted, the stream is gone).
func (w *Worker) healthy() error {
	if w.nc.IsClosed() {
		return errors.New("NATS connection closed")
	}
	return w.cons.Healthy()
}

// ErrConnectionLost is returned by Run when the NATS connection was closed
// for good (by the server, or after reconnects ran out): the process should
// exit non-zero so that it is restarted.
var ErrConnectionLost = errors.New("NATS connection closed for good")

// Run consumes until ctx ends or the NATS connection is closed for good,
// then stops in order: stop pulling and hand unfinished jobs back, drain
// NATS, stop the HTTP server. It closes the worker.
func (w *Worker) Run(ctx context.Context) error {
	defer w.Close()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	var wg sync.WaitGroup
	var httpErr error
	wg.Go(func() { httpErr = w.http.Serve(httpCtx) })
	wg.Go(func() { w.watchConnection(httpCtx, func() { cancel(ErrConnectionLost) }) })
	wg.Go(func() { w.orgs.Watch(httpCtx, w.cfg.OrgsReloadEvery) })
	w.log.Info("worker running", "http", w.http.Addr().String(), "maxInFlight", w.cfg.MaxInFlight)
	err := w.cons.Run(runCtx)
	lost := errors.Is(context.Cause(runCtx), ErrConnectionLost)
	if lost {
		w.log.Error("the NATS connection is closed for good; stopping so that the worker is restarted")
		err = errors.Join(err, ErrConnectionLost)
	} else if derr := w.drain(); derr != nil {
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
	if err := w.nc.Drain(); err != nil {
		return err
	}
	select {
	case <-w.lost:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("drain did not finish within 10s")
	}
}

// watchConnection keeps nats_connected current and calls lost once the
// connection is closed for good.
func (w *Worker) watchConnection(ctx context.Context, lost func()) {
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
		case <-w.lost:
			w.m.NATSConnected.Set(0)
			if !w.nc.IsDraining() {
				lost()
			}
			return
		case <-t.C:
		}
	}
}

// Close releases what New acquired: the NATS connection. It is safe to
// call more than once, and after Run (which calls it).
func (w *Worker) Close() {
	w.closeOnce.Do(func() {
		if w.nc != nil {
			w.nc.Close()
		}
		if w.http != nil {
			_ = w.http.Close()
		}
		if w.transport != nil {
			w.transport.CloseIdleConnections()
		}
	})
}

// HTTPAddr is the metrics server's address.
func (w *Worker) HTTPAddr() string { return w.http.Addr().String() }

// Metrics is the worker's metric set.
func (w *Worker) Metrics() *metrics.Metrics { return w.m }

// Registry is the worker's metric registry.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

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
