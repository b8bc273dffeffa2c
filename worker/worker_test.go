package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/worker"
)

// harness is one worker against an embedded nats-server and the simulator
// over real HTTP.
type harness struct {
	t      *testing.T
	sim    *campaignsim.Server
	simURL string
	url    string
	nc     *nats.Conn
	js     jetstream.JetStream
	events *testenv.Events
	cfg    worker.Config
}

func newHarness(t *testing.T, mappings ...campaignsim.Mapping) *harness {
	t.Helper()
	ns := testenv.NATS(t)
	sim, simURL := testenv.Simulator(t, mappings...)
	h := &harness{t: t, sim: sim, simURL: simURL, url: ns.ClientURL()}
	h.nc, h.js = testenv.Connect(t, h.url)
	h.events = testenv.RecordEvents(t, h.js)
	h.cfg = testenv.WorkerConfig(h.url, simURL)
	return h
}

// running is a worker started by a harness.
type running struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop stops the worker gracefully and waits for it. It may be called
// more than once.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("worker ended with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	})
}

func (h *harness) start(mutate func(*worker.Config)) *running {
	h.t.Helper()
	cfg := h.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(ctx, cfg, worker.Options{Logger: testLogger(h.t)})
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	h.t.Cleanup(func() { r.stop(h.t) })
	return r
}

// publish publishes a raw command, like `nats pub` would.
func (h *harness) publish(subject, body string, header map[string]string) {
	h.t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	for k, v := range header {
		msg.Header.Set(k, v)
	}
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) calls(org, mapping string, op campaignsim.Operation) []campaignsim.Call {
	return testenv.Calls(h.sim, org, mapping, op)
}

// testLogger writes the worker's logs to the test log when -v and
// INGEST_TEST_LOGS=1.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("INGEST_TEST_LOGS") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func fmtCalls(cs []campaignsim.Call) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("\n  %s %s %s %d %s %s %s", c.Time.Format("15:04:05.000"), c.Method, c.Path, c.HTTPStatus, c.Status, c.ErrorCode, c.Fault)
	}
	return s
}

// settled waits until the work queue holds no command and none is out.
func (h *harness) settled() {
	h.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := h.js.Stream(ctx, "INGEST_COMMANDS")
		if err != nil {
			h.t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d commands still in the work queue", info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWaitsForNATS: a worker started before its NATS server connects once
// the server is up (compose and Kubernetes start them in any order).
func TestWaitsForNATS(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	_, simURL := testenv.Simulator(t)
	cfg := testenv.WorkerConfig(fmt.Sprintf("nats://127.0.0.1:%d", port), simURL)
	dir := t.TempDir()
	go func() {
		time.Sleep(time.Second)
		s, err := natsembed.Start(natsembed.Options{Port: port, StoreDir: dir, LazySync: true})
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := worker.New(ctx, cfg, worker.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("worker.New with NATS starting a second later: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	stop()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
