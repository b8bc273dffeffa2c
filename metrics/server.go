package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerConfig configures the HTTP server.
type ServerConfig struct {
	// Addr to listen on; default ":8080".
	Addr string
	// Ready reports whether the worker is ready (NATS connected, consumer
	// bound); nil error means ready. /readyz answers 503 with the error.
	Ready func() error
	// Healthy reports whether the worker can still make progress; nil
	// error means healthy. /healthz answers 503 with the error, so that an
	// orchestrator restarts a worker that stays alive but useless.
	Healthy func() error
	// Pprof mounts /debug/pprof/ when true; off by default.
	Pprof bool
	// Handlers are further routes (ServeMux patterns), e.g. the status page.
	Handlers map[string]http.Handler
}

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds the server's address. Serve then serves on it.
func Listen(cfg ServerConfig, gatherer prometheus.Gatherer) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", probe(cfg.Healthy, "unhealthy: ", "ok"))
	mux.HandleFunc("GET /readyz", probe(cfg.Ready, "not ready: ", "ready"))
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	return &Server{
		ln:  ln,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// probe answers 200 with ok when check passes (or is nil), else 503 with
// the error after prefix.
func probe(check func() error, prefix, ok string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if check != nil {
			if err := check(); err != nil {
				http.Error(w, prefix+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, ok)
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server at once and releases its listener, also when
// Serve never ran. It is safe to call after Serve returned.
func (s *Server) Close() error {
	err := s.srv.Close()
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}

// Serve serves until ctx ends, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
