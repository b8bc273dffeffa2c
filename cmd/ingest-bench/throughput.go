package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// throughputMappings returns the mapping of command i: one instant
// mapping for all, or with -duration one mapping per command (a mapping runs
// one request at a time).
func (e *env) throughputMappings(mode string) (func(int) string, error) {
	if e.o.duration <= 0 {
		return func(int) string { return "INSTANT" }, e.putMappings([]campaignsim.Mapping{{Org: benchOrg, ID: "INSTANT", Script: campaignsim.Script{Records: 1}}})
	}
	ms := make([]campaignsim.Mapping, e.o.n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("T%s%06d", mode, i),
			Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(e.o.duration)}}
	}
	return func(i int) string { return ms[i].ID }, e.putMappings(ms)
}

// throughputPhase runs the worker and then the floor on fresh servers of
// one fsync mode and adds both rates and their ratio to t. With -duration
// only the worker runs: the floor is defined for instant ingestions.
func throughputPhase(ctx context.Context, e *env, t *table, mode string, prof *os.File) error {
	mapping, err := e.throughputMappings(mode)
	if err != nil {
		return err
	}
	if e.o.duration > 0 {
		load := loadAvg()
		wr, err := throughputWorker(ctx, e, mode, mapping, prof)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("throughput, fsync %s, %d cmds of %s, %d in flight", mode, e.o.n, e.o.duration, e.o.concurrency)
		t.add(label, "worker", fmt.Sprintf("%.0f /s", wr.rate), "", load)
		t.add(label, "worker: JetStream writes / job", wr.writes, "", "-")
		t.add(label, "worker: CPU µs / job (bench / nats / sim)", wr.cpu, "", "-")
		return nil
	}
	load := loadAvg()
	wr, err := throughputWorker(ctx, e, mode, mapping, prof)
	if err != nil {
		return err
	}
	fr, err := throughputFloor(ctx, e, mode, mapping)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("throughput, fsync %s, %d cmds, %d in flight", mode, e.o.n, e.o.concurrency)
	t.add(label, "worker", fmt.Sprintf("%.0f /s", wr.rate), "≥ 3000 /s", load)
	t.add(label, "floor (bare loop)", fmt.Sprintf("%.0f /s", fr.rate), "", load)
	t.add(label, "worker / floor", fmt.Sprintf("%.2f", wr.rate/fr.rate), "≥ 0.80", loadAvg())
	t.add(label, "worker: JetStream writes / job", wr.writes, "", "-")
	t.add(label, "worker: CPU µs / job (bench / nats / sim)", wr.cpu, "", "-")
	t.add(label, "floor: CPU µs / job (bench / nats / sim)", fr.cpu, "", "-")
	return nil
}

// result is one throughput run.
type result struct {
	rate   float64
	cpu    string // CPU per job of the processes
	writes string // synchronous JetStream writes per job, by stream
}

// writesPerJob reads how many messages the streams took per job: the
// event stream, the job state bucket (each put is one message) and the
// command stream.
func writesPerJob(ctx context.Context, js jetstream.JetStream, n int) string {
	var out []string
	for _, s := range []struct{ name, label string }{
		{layout.CommandStream, "commands"}, {layout.EventStream, "events"}, {"KV_INGEST_JOBS", "KV"},
	} {
		st, err := js.Stream(ctx, s.name)
		if err != nil {
			out = append(out, s.label+" ?")
			continue
		}
		out = append(out, fmt.Sprintf("%s %.2f", s.label, float64(st.CachedInfo().State.LastSeq)/float64(n)))
	}
	return strings.Join(out, ", ")
}

// throughputWorker publishes n commands and measures commands/s from the
// first publish to the last terminal event, the worker running in process.
func throughputWorker(ctx context.Context, e *env, mode string, mapping func(int) string, prof *os.File) (result, error) {
	url, pid, stopNATS, err := e.natsServerPID(mode)
	if err != nil {
		return result{}, err
	}
	defer stopNATS()
	w, err := startWorker(ctx, e.workerConfig(url, e.o.concurrency))
	if err != nil {
		return result{}, err
	}
	defer w.stop()
	nc, js, err := connect(url)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	tc, err := countTerminal(nc, e.o.n, nil)
	if err != nil {
		return result{}, err
	}
	stopProf, err := startCPUProfile(prof)
	if err != nil {
		return result{}, err
	}
	defer stopProf()
	cpu := startCPU(pid, e.sim.cmd.Process.Pid)
	start := time.Now()
	if err := publishAll(ctx, js, e.o.n, "tp", mapping); err != nil {
		return result{}, err
	}
	if err := tc.wait(ctx, e.o.timeout); err != nil {
		return result{}, err
	}
	r := result{rate: float64(e.o.n) / tc.last.Sub(start).Seconds(), cpu: cpu.perJob(e.o.n)}
	time.Sleep(200 * time.Millisecond) // the last done records
	r.writes = writesPerJob(ctx, js, e.o.n)
	return r, nil
}

// throughputFloor does what a job needs and nothing else: the same API
// calls (POST, one GET, a static token) and the same NATS round trips
// (command publish, pull, triggered event, terminal event, ack) with the
// same concurrency, none of the worker's machinery.
func throughputFloor(ctx context.Context, e *env, mode string, mapping func(int) string) (result, error) {
	url, pid, stopNATS, err := e.natsServerPID(mode)
	if err != nil {
		return result{}, err
	}
	defer stopNATS()
	nc, js, err := connect(url)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	for _, sc := range []jetstream.StreamConfig{layout.CommandStreamConfig(1), layout.EventStreamConfig(0, 1)} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return result{}, err
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, layout.CommandStream, jetstream.ConsumerConfig{
		Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 10000,
	})
	if err != nil {
		return result{}, err
	}
	tok, err := e.token()
	if err != nil {
		return result{}, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = e.o.concurrency
	f := &floor{mapping: mapping(0), hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, js: js, token: tok,
		base: e.simURL + "/" + benchOrg + "/campaign/dataIngestion/xdmIngestion/" + mapping(0) + "/ingest"}
	tc, err := countTerminal(nc, e.o.n, nil)
	if err != nil {
		return result{}, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(e.o.concurrency))
	if err != nil {
		return result{}, err
	}
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	})
	errs := make(chan error, e.o.concurrency)
	for range e.o.concurrency {
		wg.Go(func() {
			for m := range msgs {
				if err := f.job(ctx, m); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	cpu := startCPU(pid, e.sim.cmd.Process.Pid)
	start := time.Now()
	perr := publishAll(ctx, js, e.o.n, "fl", mapping)
	if perr == nil {
		perr = tc.wait(ctx, e.o.timeout)
	}
	it.Stop()
	wg.Wait()
	select {
	case err := <-errs:
		return result{}, fmt.Errorf("floor job: %w", err)
	default:
	}
	if perr != nil {
		return result{}, perr
	}
	return result{rate: float64(e.o.n) / tc.last.Sub(start).Seconds(), cpu: cpu.perJob(e.o.n)}, nil
}

type floor struct {
	hc      *http.Client
	js      jetstream.JetStream
	token   string
	base    string
	mapping string
}

func (f *floor) job(ctx context.Context, m jetstream.Msg) error {
	var tr campaign.TriggerResponse
	if err := f.call(ctx, http.MethodPost, f.base, &tr); err != nil {
		return err
	}
	id := string(tr.RequestID)
	cmdID := m.Headers().Get(jetstream.MsgIDHeader)
	ev := ingest.Event{Type: ingest.EventTriggered, CommandID: cmdID, Organization: benchOrg, MappingID: f.mapping, RequestID: id, Attempt: 1}
	if err := f.publish(ctx, ev); err != nil {
		return err
	}
	var st campaign.StatusResponse
	if err := f.call(ctx, http.MethodGet, f.base+"?requestId="+id, &st); err != nil {
		return err
	}
	ev.Type, ev.Status, ev.Polls = ingest.EventSucceeded, string(st.Status), 1
	if err := f.publish(ctx, ev); err != nil {
		return err
	}
	return m.Ack()
}

func (f *floor) publish(ctx context.Context, ev ingest.Event) error {
	msg, err := publisher.EventMsg(ev)
	if err != nil {
		return err
	}
	_, err = f.js.PublishMsg(ctx, msg)
	return err
}

func (f *floor) call(ctx context.Context, method, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("X-Api-Key", campaignsim.DemoClientID)
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", method, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}
