package statuspage

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/natsconn"
)

// Mount starts the page for a program that runs a worker, with a NATS
// connection of its own (the worker's settings, named "<name> status
// page"; it keeps trying in the background while no server answers). It
// returns the routes to serve beside the worker's (nil when cfg.Page is
// false) and stop, which stops the page, waits for it and closes its
// connection. The page also stops when ctx ends.
func Mount(ctx context.Context, cfg Config, nc natsconn.Config, log *slog.Logger) (map[string]http.Handler, func(), error) {
	if !cfg.Page || nc.URL == "" {
		// Without a URL the worker refuses to start and says why.
		return nil, func() {}, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	nc.Name = pageConnName(nc.Name)
	conn, err := natsconn.Connect(nc, "", log, nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, nil, fmt.Errorf("status page: %w", err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("status page: jetstream: %w", err)
	}
	page, err := New(js, cfg, log)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { page.Run(runCtx) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			conn.Close()
		})
	}
	return page.Handlers(), stop, nil
}

func pageConnName(name string) string {
	if name == "" {
		name = "ingest-worker"
	}
	return name + " status page"
}
