// Command campaign-sim runs the Campaign Standard XDM ingestion API
// simulator (package campaignsim) with its IMS token endpoint on a local
// address.
//
// Usage:
//
//	campaign-sim [-addr 127.0.0.1:8090] [-demo=true] [-preload FILE] [-token-ttl 24h] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "campaign-sim:", err)
		os.Exit(1)
	}
}

type config struct {
	addr     string
	preload  string
	demo     bool
	tokenTTL time.Duration
	verbose  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("campaign-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "listen address (port 0 picks a free port)")
	fs.StringVar(&cfg.preload, "preload", "", "preload file: JSON {\"clients\":[…],\"mappings\":[…],\"faults\":[…]}")
	fs.BoolVar(&cfg.demo, "demo", true, "load the demo mappings of organization \"acme\"")
	fs.DurationVar(&cfg.tokenTTL, "token-ttl", 24*time.Hour, "lifetime of issued tokens")
	fs.BoolVar(&cfg.verbose, "v", false, "log every API call (debug level)")
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, err
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	sim := campaignsim.New(campaignsim.Options{TokenTTL: cfg.tokenTTL, Logger: logger})
	if cfg.demo {
		for _, m := range campaignsim.DemoMappings("acme") {
			sim.PutMapping(m)
		}
	}
	if cfg.preload != "" {
		if err := sim.LoadFile(cfg.preload); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	printBanner(stdout, "http://"+ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("campaign-sim: listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("campaign-sim: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	logger.Info("campaign-sim: stopped")
	return err
}

func printBanner(w io.Writer, base string) {
	fmt.Fprintf(w, `campaign-sim: Campaign Standard XDM ingestion API simulator
  base URL   %[1]s   (INGEST_CAMPAIGN_URL)
  token URL  %[1]s/ims/token/v3   (INGEST_IMS_URL)
  client id  %[2]s
  secret     %[3]s
  API key    %[2]s
  admin API  %[1]s/_sim/mappings  /_sim/faults  /_sim/calls  /_sim/requests

Try:
  TOKEN=$(curl -s %[1]s/ims/token/v3 -d client_id=%[2]s -d client_secret=%[3]s \
    -d grant_type=client_credentials -d scope=campaign_sdk | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "X-Api-Key: %[2]s" \
    %[1]s/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest
  curl -s -H "Authorization: Bearer $TOKEN" -H "X-Api-Key: %[2]s" \
    '%[1]s/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest?requestId=3520'
  curl -s %[1]s/_sim/calls
`, base, campaignsim.DemoClientID, campaignsim.DemoClientSecret)
}
