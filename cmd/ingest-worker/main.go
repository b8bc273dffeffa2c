// Command ingest-worker consumes Campaign ingestion commands from NATS
// JetStream, triggers and polls the ingestions, and publishes their outcome
// events. Configuration comes from INGEST_* variables; -h lists them.
//
// For development it can also start an embedded NATS server
// (INGEST_EMBEDDED_NATS=true) and the Campaign simulator in process
// (INGEST_SIMULATE=true, which implies the embedded server when
// INGEST_NATS_URL is empty): the quick start runs on these.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/acme/campaign-ingest/statuspage"
	"github.com/acme/campaign-ingest/worker"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-worker:", err)
		os.Exit(1)
	}
}

// config is the program's configuration: the worker's, the development
// tools it can start, and the status page (INGEST_STATUS_*).
type config struct {
	worker.Config
	Development
	Status statuspage.Config
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(stdout) }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return nil
	}
	var cfg config
	if err := envconfig.Process("ingest", &cfg); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level(cfg.LogLevel)}))
	if gogc, set := worker.TuneGC(); set {
		log.Debug("garbage collector target set (GOGC unset)", "GOGC", gogc)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dev, err := startDevelopment(&cfg, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	pages, stopPage, err := statuspage.Mount(ctx, cfg.Status, cfg.NATS, log)
	if err != nil {
		return err
	}
	defer stopPage()
	w, err := worker.New(ctx, cfg.Config, worker.Options{Logger: log, Version: version, Handlers: pages})
	if err != nil {
		return err
	}
	stopHUP := reloadOnHUP(w, log)
	defer stopHUP()
	return w.Run(ctx)
}

// reloadOnHUP reloads the organizations on every SIGHUP until the returned
// function is called (which waits for a reload in progress).
func reloadOnHUP(w *worker.Worker, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range hup {
			log.Info("SIGHUP: reloading the organizations")
			_ = w.Reload()
		}
	}()
	return func() {
		signal.Stop(hup)
		close(hup)
		<-done
	}
}

func level(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}
