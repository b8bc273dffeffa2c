package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/worker"
)

// TestHealthConnectionClosedByServer: the server removes the worker's user
// (a config reload) and disconnects it; its reconnects then fail with
// authorization violations until nats.go closes the connection for good.
// /healthz and /readyz must then answer 503, and Run must return an error
// wrapping worker.ErrConnectionLost so that the process exits non-zero.
//
// Run stops its HTTP server as soon as it learns that the connection is
// closed, so /healthz is looked at in between: the worker learns it from
// nats.go's closed callback, which runs on the connection's callback
// goroutine after the callback that logs the authorization violation. The
// test's logger holds that log call until /healthz has been seen failing.
func TestHealthConnectionClosedByServer(t *testing.T) {
	admin := &server.User{Username: "admin", Password: adminPassword}
	wu := &server.User{Username: "worker", Password: workerPassword}
	var opts *server.Options
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir(), LazySync: true, Config: func(o *server.Options) {
		o.Users = []*server.User{admin, wu}
		opts = o
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	sim, simURL := testenv.Simulator(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 2}})
	h := &harness{t: t, sim: sim, simURL: simURL, url: ns.ClientURL()}
	h.nc, h.js = testenv.Connect(t, h.url, nats.UserInfo("admin", adminPassword))
	h.events = testenv.RecordEvents(t, h.js)
	cfg := testenv.WorkerConfig(h.url, simURL)
	cfg.NATS.User, cfg.NATS.Password = "worker", workerPassword

	gate := newAuthErrorGate(testLogger(t).Handler())
	t.Cleanup(gate.release)
	w, err := worker.New(context.Background(), cfg, worker.Options{Logger: slog.New(gate)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	base := "http://" + w.HTTPAddr()
	waitProbe(t, base+"/readyz", http.StatusOK, "ready")
	waitProbe(t, base+"/healthz", http.StatusOK, "ok")
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "before-close"})
	if ev := h.events.Terminal(t, "before-close", 15*time.Second); ev.Type != ingest.EventSucceeded {
		t.Fatalf("before-close: %s/%s, want succeeded", ev.Type, ev.Reason)
	}

	// The server forgets the worker's user and drops its connection.
	reload := opts.Clone()
	reload.Users = []*server.User{admin}
	if err := ns.ReloadOptions(reload); err != nil {
		t.Fatalf("reload without the worker user: %v", err)
	}
	connz, err := ns.Connz(&server.ConnzOptions{User: "worker", Username: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range connz.Conns {
		// The reload may have dropped it already.
		_ = ns.DisconnectClientByID(c.Cid)
	}

	select {
	case <-gate.held:
	case err := <-done:
		t.Fatalf("Run returned (%v) before the authorization violation was logged", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no authorization violation logged within 30s of the user's removal")
	}
	waitProbe(t, base+"/healthz", http.StatusServiceUnavailable, "NATS connection closed")
	waitProbe(t, base+"/readyz", http.StatusServiceUnavailable, "not connected")
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while the closed callback was held", err)
	default:
	}
	gate.release()

	select {
	case err := <-done:
		if !errors.Is(err, worker.ErrConnectionLost) {
			t.Errorf("Run returned %v, want an error wrapping worker.ErrConnectionLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of the connection's closing")
	}
	w.Close() // idempotent after Run
}

// TestHealthConsumerDeleted: the durable consumer is deleted under a
// running worker; its pulls keep failing, and /healthz answers 503 once
// they have failed for longer than StallAfter (INGEST_STALL_AFTER).
func TestHealthConsumerDeleted(t *testing.T) {
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 2}})
	const stallAfter = 2 * time.Second
	r := h.start(func(c *worker.Config) { c.StallAfter = stallAfter })
	base := "http://" + r.w.HTTPAddr()
	waitProbe(t, base+"/readyz", http.StatusOK, "ready")
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "before-delete"})
	if ev := h.events.Terminal(t, "before-delete", 15*time.Second); ev.Type != ingest.EventSucceeded {
		t.Fatalf("before-delete: %s/%s, want succeeded", ev.Type, ev.Reason)
	}
	waitProbe(t, base+"/healthz", http.StatusOK, "ok")

	if err := h.js.DeleteConsumer(context.Background(), layout.CommandStream, layout.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	waitProbe(t, base+"/readyz", http.StatusServiceUnavailable, "not pulling")
	waitProbe(t, base+"/healthz", http.StatusServiceUnavailable, "pulls have failed")
	// Still failing: nothing brings the consumer back by itself.
	if code, body := probe(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz went back to %d %q with the consumer still deleted", code, body)
	}
}

// probe GETs url and returns the status code and body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitProbe waits up to 30s until url answers code with a body holding
// want.
func waitProbe(t *testing.T, url string, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, body := probe(t, url)
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %q for 30s, want %d with %q", url, got, strings.TrimSpace(body), code, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authErrorGate is a slog handler that holds the first log call reporting
// an authorization violation until release: nats.go's callbacks run one at
// a time on one goroutine, so the connection's closed callback waits too.
type authErrorGate struct {
	next slog.Handler
	*gateState
}

type gateState struct {
	holdOnce, releaseOnce sync.Once
	held                  chan struct{} // closed when a call is held
	released              chan struct{}
}

func newAuthErrorGate(next slog.Handler) *authErrorGate {
	return &authErrorGate{next: next, gateState: &gateState{held: make(chan struct{}), released: make(chan struct{})}}
}

func (g *gateState) release() { g.releaseOnce.Do(func() { close(g.released) }) }

func (g *authErrorGate) Enabled(context.Context, slog.Level) bool { return true }

func (g *authErrorGate) Handle(ctx context.Context, r slog.Record) error {
	if reportsAuthError(r) {
		hold := false
		g.holdOnce.Do(func() { hold = true })
		if hold {
			close(g.held)
			<-g.released
		}
	}
	if g.next.Enabled(ctx, r.Level) {
		return g.next.Handle(ctx, r)
	}
	return nil
}

func reportsAuthError(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = strings.Contains(strings.ToLower(a.Value.String()), "authorization violation")
		return !found
	})
	return found
}

func (g *authErrorGate) WithAttrs(as []slog.Attr) slog.Handler {
	return &authErrorGate{next: g.next.WithAttrs(as), gateState: g.gateState}
}

func (g *authErrorGate) WithGroup(name string) slog.Handler {
	return &authErrorGate{next: g.next.WithGroup(name), gateState: g.gateState}
}
