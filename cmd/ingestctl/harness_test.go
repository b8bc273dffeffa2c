package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/worker"
)

// env is a worker running in process against an embedded nats-server and
// the simulator over real HTTP, as ingestctl meets it.
type env struct {
	url    string
	sim    *campaignsim.Server
	js     jetstream.JetStream
	events *testenv.Events
}

// testConfig is testenv.WorkerConfig without resubmits after Aborted.
func testConfig(natsURL, simURL string) worker.Config {
	cfg := testenv.WorkerConfig(natsURL, simURL)
	cfg.ResubmitAborted = 0
	return cfg
}

// newEnv starts a worker with the simulator's mappings (all of org acme).
func newEnv(t *testing.T, mappings ...campaignsim.Mapping) *env {
	t.Helper()
	ns := testenv.NATS(t)
	for i := range mappings {
		mappings[i].Org = "acme"
	}
	sim, simURL := testenv.Simulator(t, mappings...)
	e := &env{url: ns.ClientURL(), sim: sim}
	_, e.js = testenv.Connect(t, e.url)
	testenv.RunWorker(t, testConfig(e.url, simURL), worker.Options{})
	e.events = testenv.RecordEvents(t, e.js)
	return e
}

// result is what one ingestctl invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs ingestctl in process against the env's server.
func (e *env) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return e.ctlWith(t, nil, args...)
}

// ctlWith runs ingestctl with its app changed by mutate first.
func (e *env) ctlWith(t *testing.T, mutate func(*app), args ...string) result {
	t.Helper()
	return ctlAt(t, e.url, mutate, args...)
}

func ctlAt(t *testing.T, url string, mutate func(*app), args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newTestApp(&stdout, &stderr)
	if mutate != nil {
		mutate(a)
	}
	if len(args) > 0 && url != "" {
		args = append(args, "--server", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// newTestApp is newApp with an empty environment: no INGEST_NATS_*,
// NATS_* or nats CLI context of the machine running the tests.
func newTestApp(stdout, stderr io.Writer) *app {
	a := newApp(stdout, stderr)
	a.getenv = func(string) string { return "" }
	return a
}

// jsonLine is an event line of --json.
type jsonLine struct {
	Subject    string `json:"subject"`
	Type       string `json:"type"`
	CommandID  string `json:"commandId"`
	MappingID  string `json:"mappingId"`
	RequestID  string `json:"requestId"`
	Status     string `json:"status"`
	NumRecords int64  `json:"numRecords"`
	Reason     string `json:"reason"`
}

// parseLines decodes JSON lines strictly: every line one object.
func parseLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var got []T
	for l := range strings.Lines(out) {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v\noutput:\n%s", l, err, out)
		}
		got = append(got, v)
	}
	return got
}

func types(lines []jsonLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Type
	}
	return out
}

// publishRaw publishes a command like `nats pub` would.
func (e *env) publishRaw(t *testing.T, subject, body, msgID string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
