package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/pause"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// throughputFloor runs the bare loop: what the contract makes every
// implementation do for one instant ingestion, and nothing else. Per
// command: pull it, read it (ingest.ParseCommand: the command id, the
// organization and mapping), POST, publish the triggered event (the request
// id is durable before any status of it is acted on; the publish overlaps
// the first GET, as the worker's does), GET, publish the terminal event,
// ack. Both events are the contract's full JSON with CloudEvents headers
// and Nats-Msg-Id, built by publisher.EventMsg: the bytes are the worker's
// own. It runs with the worker's concurrency, on its own connection (as the
// worker has), with a static token; none of the worker's machinery (job
// records, recovery, heartbeats, metrics, retries, per-organization
// clients).
func throughputFloor(ctx context.Context, e *env, mode string, mapping func(int) string, prof *os.File) (result, error) {
	ns, err := e.natsServer(mode)
	if err != nil {
		return result{}, err
	}
	defer ns.stop()
	nc, js, err := connect(ns.url)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	if err := createStreams(ctx, js); err != nil {
		return result{}, err
	}
	f, err := newFloor(ctx, e, ns.url, e.instantFloor())
	if err != nil {
		return result{}, err
	}
	defer f.close()
	tc, err := countTerminal(nc, e.o.n, nil)
	if err != nil {
		return result{}, err
	}
	stop, errs, err := f.run(ctx, e.o.concurrency)
	if err != nil {
		return result{}, err
	}
	stopProf, err := startCPUProfile(prof)
	if err != nil {
		return result{}, err
	}
	defer stopProf()
	m := startMeters(e, ns)
	start := time.Now()
	perr := publishAll(ctx, js, e.o.n, "fl", mapping)
	if perr == nil {
		perr = tc.wait(ctx, e.o.timeout)
	}
	time.Sleep(200 * time.Millisecond) // the last acks
	r := m.result(e.o.n, start, tc.last)
	stop()
	select {
	case err := <-errs:
		return result{}, fmt.Errorf("floor job: %w", err)
	default:
	}
	if perr != nil {
		return result{}, perr
	}
	r.writes = writesPerJob(ctx, js, e.o.n)
	return r, nil
}

// createStreams creates the command and event streams on a fresh server,
// as the worker does at its start.
func createStreams(ctx context.Context, js jetstream.JetStream) error {
	for _, sc := range []jetstream.StreamConfig{layout.CommandStreamConfig(1), layout.EventStreamConfig(0, 1)} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// floorConfig is what differs between the floors of the phases.
type floorConfig struct {
	// concurrency is the jobs run at once.
	concurrency int
	// perJob starts a goroutine per job (long ingestions: the memory
	// phase) instead of a pool of concurrency goroutines.
	perJob  bool
	ackWait time.Duration
	tr      *http.Transport
}

// instantFloor is the floor of instant ingestions (throughput, latency):
// -c goroutines, AckWait 30 s (the worker's default), one kept HTTP
// connection per goroutine.
func (e *env) instantFloor() floorConfig {
	return floorConfig{concurrency: e.o.concurrency, ackWait: 30 * time.Second, tr: e.floorTransport()}
}

// longFloor is the floor of long ingestions: n jobs at once, each on a
// goroutine started for it that sleeps between status checks, as a
// hand-rolled loop would; the worker's HTTP limit (campaign.NewTransport:
// 64 connections per host). It signals InProgress after every status check,
// so its AckWait is longer than the schedule's longest wait (60 s).
func longFloor(n int) floorConfig {
	return floorConfig{concurrency: n, perJob: true, ackWait: 2 * time.Minute, tr: campaign.NewTransport(nil)}
}

// startFloor runs the floor fc on the server at url, after creating the
// streams. stop ends it, jobs waiting between status checks included, and
// returns the first job error before the stop.
func startFloor(ctx context.Context, e *env, url string, fc floorConfig) (stop func() error, err error) {
	nc, js, err := connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := createStreams(ctx, js); err != nil {
		return nil, err
	}
	f, err := newFloor(ctx, e, url, fc)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	run := f.run
	if fc.perJob {
		run = f.runPerJob
	}
	stopRun, errs, err := run(fctx, fc.concurrency)
	if err != nil {
		cancel()
		f.close()
		return nil, err
	}
	return func() error {
		var jerr error
		select {
		case jerr = <-errs:
			jerr = fmt.Errorf("floor job: %w", jerr)
		default:
		}
		cancel()
		stopRun()
		f.close()
		return jerr
	}, nil
}

// floor is the bare loop's state.
type floor struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cons  jetstream.Consumer
	hc    *http.Client
	token string
	api   string // the simulator's base URL
}

// close closes the floor's connections, its idle HTTP ones included (the
// next run's process must not carry their goroutines and buffers).
func (f *floor) close() {
	f.nc.Close()
	f.hc.CloseIdleConnections()
}

// floorTransport is the HTTP transport of the instant floor: one kept
// connection per goroutine.
func (e *env) floorTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = e.o.concurrency
	return tr
}

func newFloor(ctx context.Context, e *env, url string, fc floorConfig) (*floor, error) {
	nc, js, err := connect(url)
	if err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, layout.CommandStream, jetstream.ConsumerConfig{
		Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy, AckWait: fc.ackWait, MaxAckPending: max(10000, fc.concurrency),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	tok, err := e.token()
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &floor{nc: nc, js: js, cons: cons, hc: &http.Client{Transport: fc.tr, Timeout: 10 * time.Second}, token: tok, api: e.sim.url}, nil
}

// run pulls commands (as many buffered as there are goroutines) into
// concurrency goroutines that each run one job at a time. stop ends them;
// errs receives the first job error.
func (f *floor) run(ctx context.Context, concurrency int) (stop func(), errs <-chan error, err error) {
	it, err := f.cons.Messages(jetstream.PullMaxMessages(concurrency))
	if err != nil {
		return nil, nil, err
	}
	msgs := make(chan jetstream.Msg)
	ec := make(chan error, 1)
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
	for range concurrency {
		wg.Go(func() {
			for m := range msgs {
				if err := f.job(ctx, m); err != nil {
					select {
					case ec <- err:
					default:
					}
				}
			}
		})
	}
	return func() { it.Stop(); wg.Wait() }, ec, nil
}

// runPerJob pulls commands (as many buffered as concurrency) and runs each
// on a goroutine started for it, at most concurrency at once. stop ends the
// pull and waits for the jobs (ctx's end stops those that wait); errs
// receives the first job error.
func (f *floor) runPerJob(ctx context.Context, concurrency int) (stop func(), errs <-chan error, err error) {
	it, err := f.cons.Messages(jetstream.PullMaxMessages(concurrency))
	if err != nil {
		return nil, nil, err
	}
	slots := make(chan struct{}, concurrency)
	ec := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-slots }()
				if err := f.job(ctx, m); err != nil {
					select {
					case ec <- err:
					default:
					}
				}
			})
		}
	})
	return func() { it.Stop(); wg.Wait() }, ec, nil
}

// job runs one command.
func (f *floor) job(ctx context.Context, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	cmd, err := ingest.ParseCommand(layout.Envelope(m.Subject(), m.Headers().Get, meta.Stream, meta.Sequence.Stream), m.Data())
	if err != nil {
		return err
	}
	base := f.api + "/" + cmd.Organization + "/campaign/dataIngestion/xdmIngestion/" + cmd.MappingID + "/ingest"
	b, err := f.call(ctx, http.MethodPost, base)
	if err != nil {
		return err
	}
	tr, err := campaign.DecodeTrigger(b)
	if err != nil {
		return err
	}
	if tr.Kind() != campaign.TriggerAccepted {
		return fmt.Errorf("trigger of %s: %s", cmd.MappingID, tr.Status)
	}
	ev := ingest.NewEvent(ingest.EventTriggered, cmd)
	ev.RequestID, ev.Status, ev.Info, ev.Attempt, ev.TriggeredAt = string(tr.RequestID), string(tr.Status), tr.Info, 1, ingest.Time(time.Now())
	triggered, err := f.publishAsync(ev)
	if err != nil {
		return err
	}
	b, err = f.call(ctx, http.MethodGet, base+"?requestId="+ev.RequestID)
	if err != nil {
		return err
	}
	st, err := campaign.DecodeStatus(b)
	if err != nil {
		return err
	}
	if err := waitAck(ctx, triggered); err != nil { // durable before acting on the status
		return err
	}
	// A long ingestion (the memory phase): keep the lease and check again
	// after the worker's default schedule, on this goroutine, as a
	// hand-rolled loop would.
	polls := 1
	for !st.Status.Terminal() {
		if err := m.InProgress(); err != nil {
			return err
		}
		if err := pause.For(ctx, ingest.Schedule{}.Next(polls)); err != nil {
			return err
		}
		if b, err = f.call(ctx, http.MethodGet, base+"?requestId="+ev.RequestID); err != nil {
			return err
		}
		if st, err = campaign.DecodeStatus(b); err != nil {
			return err
		}
		polls++
	}
	if st.Status != campaign.StatusSuccess {
		return fmt.Errorf("status of %s: %s", ev.RequestID, st.Status)
	}
	ev.Type, ev.Polls, ev.FinishedAt = ingest.EventSucceeded, polls, ingest.Time(time.Now())
	ev.Status, ev.Info, ev.BatchID, ev.ErrorCode, ev.NumRecords = string(st.Status), st.Info, st.BatchID, st.ErrorCode(), st.NumRecords
	if err := f.publish(ctx, ev); err != nil {
		return err
	}
	return m.Ack()
}

func (f *floor) publishAsync(ev ingest.Event) (jetstream.PubAckFuture, error) {
	msg, err := publisher.EventMsg(ev)
	if err != nil {
		return nil, err
	}
	return f.js.PublishMsgAsync(msg)
}

func (f *floor) publish(ctx context.Context, ev ingest.Event) error {
	msg, err := publisher.EventMsg(ev)
	if err != nil {
		return err
	}
	_, err = f.js.PublishMsg(ctx, msg)
	return err
}

func waitAck(ctx context.Context, a jetstream.PubAckFuture) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-a.Ok():
		return nil
	case err := <-a.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no acknowledgement of the triggered event")
	}
}

// call makes one API call with the static token and returns the answer.
func (f *floor) call(ctx context.Context, method, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, http.NoBody)
	if err != nil {
		return nil, err
	}
	// The four headers the API documents for every call.
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("X-Api-Key", campaignsim.DemoClientID)
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %s", method, resp.Status, b)
	}
	return b, nil
}
