package reliability_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/reliability"
)

// long runs the large versions (1,000 commands and more); also INGEST_LONG=1.
var long = flag.Bool("long", false, "run the large versions of the fault tests")

// workerBin is the ingest-worker binary built once for every test.
var workerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("INGEST_LONG") == "1" {
		*long = true
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ingest-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if workerBin, err = reliability.BuildWorker(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// size is n, or large with -long.
func size(n, large int) int {
	if *long {
		return large
	}
	return n
}

// Timing of every test's workers: short leases and polls.
const (
	ackWait = 3 * time.Second
	pollMax = 500 * time.Millisecond
	// slack covers a process start, a pull's wait and scheduling on a
	// loaded 2-core machine.
	slack = 3 * time.Second
)

func baseEnv() []string {
	return []string{
		"INGEST_ACK_WAIT=" + ackWait.String(),
		"INGEST_POLL_INITIAL=200ms",
		"INGEST_POLL_MAX=" + pollMax.String(),
		"INGEST_API_RETRY_INITIAL=50ms",
		"INGEST_API_RETRY_MAX=200ms",
		"INGEST_API_TIMEOUT=2s",
		"INGEST_REDELIVER_DELAY=200ms",
		"INGEST_MAX_IN_FLIGHT=500",
		"INGEST_LOG_LEVEL=info",
	}
}

// rig is a set of worker processes against NATS and the simulator.
type rig struct {
	t       *testing.T
	api     *reliability.API
	cfg     reliability.WorkerConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	nextID  int
	workers []*reliability.Worker
}

// newRig serves the simulator with mappings and prepares workers for
// natsURL. env adds to baseEnv.
func newRig(t *testing.T, natsURL string, mappings []campaignsim.Mapping, env ...string) *rig {
	t.Helper()
	api := reliability.StartAPI(mappings...)
	t.Cleanup(api.Close)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, api: api, nc: nc, js: js, cfg: reliability.WorkerConfig{
		Bin: workerBin, NATSURL: natsURL, API: api, LogDir: t.TempDir(), Env: append(baseEnv(), env...),
	}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, w := range r.workers {
				t.Logf("worker %d log (tail):\n%s", w.ID, w.Tail(30))
			}
		}
	})
	return r
}

// start starts a worker process and waits until it is ready.
func (r *rig) start() *reliability.Worker {
	r.t.Helper()
	r.nextID++
	w, err := reliability.StartWorker(r.cfg, r.nextID)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(w.Stop)
	r.workers = append(r.workers, w)
	addr, err := w.HTTPAddr(30 * time.Second)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.WaitReady(addr, true, 30*time.Second); err != nil {
		r.t.Fatal(err)
	}
	return w
}

func (r *rig) publish(cmds []ingest.Command) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := reliability.Publish(ctx, r.js, cmds); err != nil {
		r.t.Fatal(err)
	}
}

// polling waits until every command's request had at least two status
// checks answered In Progress: its request id is in KV (a job writes it
// before its second check) and it is mid-poll.
func (r *rig) polling(cmds []ingest.Command, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		checks := map[string]int{}
		for _, c := range r.api.Calls() {
			if c.Op == campaign.OpStatus && c.Status == "In Progress" {
				checks[c.Mapping]++
			}
		}
		n := 0
		for _, c := range cmds {
			if checks[c.MappingID] >= 2 {
				n++
			}
		}
		if n == len(cmds) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("only %d of %d commands mid-poll after %s", n, len(cmds), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish waits until the work queue is empty and checks the guarantees:
// one terminal event per command, one ingestion request per command.
func (r *rig) finish(cmds []ingest.Command, timeout time.Duration) (reliability.Report, []ingest.Event) {
	r.t.Helper()
	ctx := context.Background()
	if err := reliability.WaitDrained(ctx, r.js, timeout); err != nil {
		r.t.Fatal(err)
	}
	// Right after a leader was lost, the events stream may not answer for
	// a moment ("no responders"): read until it does, within 30 s.
	var evs []ingest.Event
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if evs, err = reliability.ReadEvents(ctx, r.js); err == nil {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatal(err)
		}
	}
	rep := reliability.Check(cmds, evs, r.api.Sim, 1)
	if !rep.OK() {
		var b strings.Builder
		rep.WriteTable(&b)
		r.t.Errorf("guarantees broken:\n%s\n%s", b.String(), strings.Join(rep.Problems, "\n"))
	}
	return rep, evs
}

// postsPerCommand fails the test unless every command's mapping saw
// exactly one POST.
func (r *rig) postsPerCommand(cmds []ingest.Command) {
	r.t.Helper()
	posts := map[string]int{}
	for _, c := range r.api.Sim.Calls() {
		if c.Op == campaign.OpTrigger {
			posts[c.Mapping]++
		}
	}
	var bad []string
	for _, c := range cmds {
		if posts[c.MappingID] != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d POSTs", c.ID, posts[c.MappingID]))
		}
	}
	if len(bad) > 0 {
		r.t.Errorf("want exactly one POST per command:\n%s", strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
}

// checkResumes fails the test unless every request that worker w was
// polling when it was stopped at `at` was checked by another process within
// bound.
// It fails too when w was polling nothing, unless mayBeIdle.
func (r *rig) checkResumes(w *reliability.Worker, at time.Time, evs []ingest.Event, bound time.Duration, mayBeIdle bool) []time.Duration {
	r.t.Helper()
	resumes, missing := reliability.Resumes(r.api.Calls(), w.ID, at, reliability.Finished(evs))
	if len(missing) > 0 {
		r.t.Errorf("requests of worker %d never checked again by another: %v", w.ID, missing)
	}
	if len(resumes) == 0 {
		if mayBeIdle {
			return nil
		}
		r.t.Errorf("worker %d was polling nothing when stopped", w.ID)
		return nil
	}
	if worst := slices.Max(resumes); worst > bound {
		r.t.Errorf("worker %d's requests resumed after up to %s, want at most %s (all: %v)", w.ID, worst, bound, resumes)
	}
	return resumes
}
