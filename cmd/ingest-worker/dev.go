package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/natsembed"
)

// Development configures the tools ingest-worker can start for trying it
// out: an embedded NATS server and the Campaign simulator. Neither is for
// production: the embedded server has no authentication.
type Development struct {
	Simulate     bool   `split_words:"true" default:"false" desc:"run the Campaign simulator in process (demo mappings for org acme) and call it; implies INGEST_EMBEDDED_NATS when INGEST_NATS_URL is empty"`
	SimulateAddr string `split_words:"true" default:"127.0.0.1:8090" desc:"where the in-process simulator listens (its /_sim/calls shows the call log)"`

	EmbeddedNATS     bool   `envconfig:"EMBEDDED_NATS" default:"false" desc:"start an embedded NATS server without authentication (development only) and connect to it; needs INGEST_NATS_URL empty"`
	DataDir          string `split_words:"true" default:"./data" desc:"the embedded NATS server's storage"`
	EmbeddedListen   string `split_words:"true" default:"127.0.0.1:4222" desc:"where the embedded NATS server listens"`
	EmbeddedLazySync bool   `split_words:"true" default:"false" desc:"embedded server: do not fsync every write (faster, loses acknowledged writes on power loss)"`
}

// devTools are the development tools started for one run.
type devTools struct {
	closers []func()
}

// startDevelopment starts what cfg asks for and points cfg's worker
// configuration at it.
func startDevelopment(cfg *config, log *slog.Logger) (*devTools, error) {
	d := &devTools{}
	embedded := cfg.EmbeddedNATS || cfg.Simulate && cfg.NATS.URL == ""
	if cfg.EmbeddedNATS && cfg.NATS.URL != "" {
		return nil, errors.New("INGEST_EMBEDDED_NATS=true and INGEST_NATS_URL are exclusive")
	}
	if embedded {
		ns, err := d.startNATS(cfg.Development, log)
		if err != nil {
			d.Close()
			return nil, err
		}
		cfg.NATS.URL = ns.ClientURL()
	}
	if cfg.Simulate {
		base, err := d.startSimulator(cfg.SimulateAddr, log)
		if err != nil {
			d.Close()
			return nil, err
		}
		cfg.CampaignURL, cfg.APIKey = base, campaignsim.DemoClientID
		cfg.IMS.URL = base + "/ims/token/v3"
		cfg.IMS.ClientID, cfg.IMS.ClientSecret, cfg.IMS.ClientSecretFile = campaignsim.DemoClientID, campaignsim.DemoClientSecret, ""
	}
	return d, nil
}

func (d *devTools) startNATS(dev Development, log *slog.Logger) (*server.Server, error) {
	host, port, err := splitHostPort(dev.EmbeddedListen)
	if err != nil {
		return nil, fmt.Errorf("INGEST_EMBEDDED_LISTEN: %w", err)
	}
	ns, err := natsembed.Start(natsembed.Options{
		Host: host, Port: port, StoreDir: filepath.Join(dev.DataDir, "jetstream"), LazySync: dev.EmbeddedLazySync,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	log.Warn("embedded NATS server started, without authentication: for development only",
		"url", ns.ClientURL(), "storeDir", dev.DataDir, "fsyncEveryWrite", !dev.EmbeddedLazySync)
	return ns, nil
}

func (d *devTools) startSimulator(addr string, log *slog.Logger) (string, error) {
	sim := campaignsim.New(campaignsim.Options{Logger: log.With("component", "campaign-sim")})
	for _, m := range campaignsim.DemoMappings("acme") {
		sim.PutMapping(m)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	d.closers = append(d.closers, func() { _ = srv.Close(); <-done })
	base := "http://" + ln.Addr().String()
	log.Info("Campaign simulator started", "url", base, "calls", base+"/_sim/calls")
	return base, nil
}

// Close stops what was started, last first.
func (d *devTools) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

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
