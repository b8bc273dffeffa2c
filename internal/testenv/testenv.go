// Package testenv runs the worker's real parts for tests: an embedded
// nats-server, the Campaign simulator over real HTTP, and an event recorder.
package testenv

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/worker"
)

// NATS starts an embedded JetStream server on a free loopback port with its
// storage in a temporary directory. It stops at the end of the test.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir(), LazySync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect connects to s; the connection closes at the end of the test.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Simulator serves a simulator with mappings over real HTTP.
func Simulator(t testing.TB, mappings ...campaignsim.Mapping) (*campaignsim.Server, string) {
	t.Helper()
	sim := campaignsim.New(campaignsim.Options{})
	for _, m := range mappings {
		sim.PutMapping(m)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// Events records every event of INGEST_EVENTS from its start.
type Events struct {
	mu     sync.Mutex
	cond   *sync.Cond
	events []Received
}

// Received is an event with its headers and subject.
type Received struct {
	ingest.Event
	Subject string
	Header  nats.Header
}

// RecordEvents starts recording; the stream must exist.
func RecordEvents(t testing.TB, js jetstream.JetStream) *Events {
	t.Helper()
	ctx := context.Background()
	s, err := js.CreateOrUpdateStream(ctx, layout.EventStreamConfig(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &Events{}
	e.cond = sync.NewCond(&e.mu)
	cc, err := c.Consume(func(m jetstream.Msg) {
		var ev ingest.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Errorf("event on %s is not JSON: %v", m.Subject(), err)
			return
		}
		e.mu.Lock()
		e.events = append(e.events, Received{Event: ev, Subject: m.Subject(), Header: m.Headers()})
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return e
}

// For returns the events of a command so far.
func (e *Events) For(commandID string) []Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Received
	for _, ev := range e.events {
		if ev.CommandID == commandID {
			out = append(out, ev)
		}
	}
	return out
}

// All returns every event so far.
func (e *Events) All() []Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Received(nil), e.events...)
}

// WaitFor waits until ok holds for the events so far, or fails the test
// after timeout.
func (e *Events) WaitFor(t testing.TB, timeout time.Duration, what string, ok func([]Received) bool) []Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
	defer stop.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for !ok(e.events) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; events: %+v", what, timeout, e.events)
		}
		e.cond.Wait()
	}
	return append([]Received(nil), e.events...)
}

// Terminal waits for the terminal event of a command.
func (e *Events) Terminal(t testing.TB, commandID string, timeout time.Duration) Received {
	t.Helper()
	var found Received
	e.WaitFor(t, timeout, "terminal event of "+commandID, func(evs []Received) bool {
		for _, ev := range evs {
			if ev.CommandID == commandID && ev.Type.Terminal() {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// Calls returns the simulator's calls of one operation on one mapping.
func Calls(sim *campaignsim.Server, org, mapping string, op campaignsim.Operation) []campaignsim.Call {
	var out []campaignsim.Call
	for _, c := range sim.Calls() {
		if c.Op == op && (op == campaign.OpToken || c.Org == org && c.Mapping == mapping) {
			out = append(out, c)
		}
	}
	return out
}

// WorkerConfig is the worker's configuration for tests against nats at
// natsURL and the simulator at simURL with its demo credential: fast polls
// and retries, a short AckWait, metrics on a free port.
func WorkerConfig(natsURL, simURL string) worker.Config {
	cfg := worker.DefaultConfig()
	cfg.NATS.URL = natsURL
	cfg.CampaignURL = simURL
	cfg.IMS.URL = simURL + "/ims/token/v3"
	cfg.IMS.ClientID, cfg.IMS.ClientSecret = campaignsim.DemoClientID, campaignsim.DemoClientSecret
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PollInitial, cfg.PollMax = 20*time.Millisecond, 100*time.Millisecond
	cfg.APIRetryInitial, cfg.APIRetryMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.APITimeout = 2 * time.Second
	cfg.RedeliverDelay = 100 * time.Millisecond
	cfg.AckWait = 3 * time.Second
	cfg.MaxDeliver = 5
	return cfg
}

// RunWorker starts a worker with cfg and runs it until the end of the
// test, when it is stopped and must end without an error within 30 s.
func RunWorker(t testing.TB, cfg worker.Config, opts worker.Options) *worker.Worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker ended with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	})
	return w
}
