package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// latencyPhase publishes commands at a fixed rate, one instant mapping per
// command so that the simulator's call log names the command, and measures
// publish → POST seen by the simulator, terminal status served (the GET
// that answered terminal) → terminal event received from the events
// stream, and publish → terminal event received. It then measures the
// same for the floor, on a fresh server, at the same rate. With -runs N it
// makes N such pairs, worker first in even runs and floor first in odd
// ones, each on fresh mappings, and gives each figure as median
// [min–max]: a p99 of a few seconds moves by more than the gap it
// measures whenever something else on the machine wakes up.
func latencyPhase(ctx context.Context, e *env, t *table, mode string) error {
	n := int(float64(e.o.rate) * e.o.latencyFor.Seconds())
	label := fmt.Sprintf("added latency at %d cmds/s, %d cmds, fsync %s, runs: %d", e.o.rate, n, mode, max(e.o.runs, 1))
	load := loadAvg()
	var runs []latencyFigures
	for run := range max(e.o.runs, 1) {
		f, err := latencyPair(ctx, e, mode, fmt.Sprintf("%s%d", mode, run), n, run%2 == 1)
		if err != nil {
			return err
		}
		fmt.Printf("latency %s run %d: %s\n", mode, run+1, f)
		runs = append(runs, f)
	}
	ms := func(f func(latencyFigures) time.Duration) []float64 {
		return column(runs, func(r latencyFigures) float64 { return float64(f(r)) / float64(time.Millisecond) })
	}
	// p50p99 is the "p50 / p99" spreads of a measure.
	p50p99 := func(f func(latencyFigures) [2]time.Duration) string {
		return joinSpreads("%.2f", ms(func(r latencyFigures) time.Duration { return f(r)[0] }), ms(func(r latencyFigures) time.Duration { return f(r)[1] }))
	}
	t.add(label, "worker: publish → POST seen, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.workerPost }), "p99 ≤ 5ms", load)
	t.add(label, "floor: publish → POST seen, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.floorPost }), "", "-")
	t.add(label, "worker: terminal GET → event received, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.workerEvent }), "p99 ≤ 5ms", "-")
	t.add(label, "floor: terminal GET → event received, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.floorEvent }), "", "-")
	t.add(label, "worker: publish → terminal event, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.worker }), "", "-")
	t.add(label, "floor: publish → terminal event, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.floor }), "", "-")
	t.add(label, "worker p99 − floor p99 (ms), per run", spread("%.2f", ms(func(r latencyFigures) time.Duration { return r.worker[1] - r.floor[1] })), "≤ 2ms", "-")
	t.add(label, "the same after the first second (ms)", spread("%.2f", ms(func(r latencyFigures) time.Duration { return r.workerWarm - r.floorWarm })), "", loadAvg())
	return nil
}

// latencyFigures are one latency pair's p50 and p99 ([2]) of each
// measure, per side: Post is publish → POST seen, Event terminal GET →
// event received, and worker and floor publish → terminal event; and the
// p99s of the last without the first second's commands (a fresh process's
// first jobs grow its connections, stacks and heap).
type latencyFigures struct {
	workerPost, workerEvent, floorPost, floorEvent, worker, floor [2]time.Duration
	workerWarm, floorWarm                                         time.Duration
}

func (f latencyFigures) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("publish → terminal p50 / p99 worker %s / %s, floor %s / %s, p99 difference %s (%s after the first second); publish → POST worker %s / %s, floor %s / %s; terminal GET → event worker %s / %s, floor %s / %s",
		r(f.worker[0]), r(f.worker[1]), r(f.floor[0]), r(f.floor[1]), r(f.worker[1]-f.floor[1]), r(f.workerWarm-f.floorWarm),
		r(f.workerPost[0]), r(f.workerPost[1]), r(f.floorPost[0]), r(f.floorPost[1]), r(f.workerEvent[0]), r(f.workerEvent[1]), r(f.floorEvent[0]), r(f.floorEvent[1]))
}

// latencyPair makes one latency run of the worker and one of the floor
// (floorFirst: in that order) on n fresh mappings named after tag.
func latencyPair(ctx context.Context, e *env, mode, tag string, n int, floorFirst bool) (latencyFigures, error) {
	ms := make([]campaignsim.Mapping, n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("LAT%s%06d", tag, i), Script: campaignsim.Script{Records: 1}}
	}
	if err := e.putMappings(ms); err != nil {
		return latencyFigures{}, err
	}
	var w, f latencySide
	runWorker := func() error {
		var err error
		w, err = latencyRun(ctx, e, mode, ms, "lat"+tag, func(url string) (func() error, error) {
			w, err := startWorker(ctx, e.workerConfig(url, e.o.concurrency))
			if err != nil {
				return nil, err
			}
			return func() error { _ = w.stop(); return nil }, nil
		})
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	}
	runFloor := func() error {
		var err error
		f, err = latencyRun(ctx, e, mode, ms, "latf"+tag, func(url string) (func() error, error) {
			return startFloor(ctx, e, url, e.instantFloor())
		})
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		return nil
	}
	steps := []func() error{runWorker, runFloor}
	if floorFirst {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return latencyFigures{}, err
		}
	}
	p := func(ds []time.Duration) [2]time.Duration {
		return [2]time.Duration{quantile(ds, 0.50), quantile(ds, 0.99)}
	}
	wPost, wEvent := w.apiLatency(ms)
	fPost, fEvent := f.apiLatency(ms)
	skip := min(e.o.rate, n/2)
	return latencyFigures{
		workerPost: p(wPost), workerEvent: p(wEvent), floorPost: p(fPost), floorEvent: p(fEvent),
		worker: p(w.endToEnd(ms, 0)), floor: p(f.endToEnd(ms, 0)),
		workerWarm: quantile(w.endToEnd(ms[skip:], skip), 0.99), floorWarm: quantile(f.endToEnd(ms[skip:], skip), 0.99),
	}, nil
}

// latencySide is one side's latency run: its times, and the simulator's
// trigger and status calls made during it.
type latencySide struct {
	latencyTimes
	triggers, statuses []campaignsim.Call
}

// apiLatency is publish → POST seen by the simulator and terminal status
// served → terminal event received, of every command of ms.
func (s latencySide) apiLatency(ms []campaignsim.Mapping) (toPost, toEvent []time.Duration) {
	index := make(map[string]int, len(ms))
	for i, m := range ms {
		index[m.ID] = i
	}
	for _, c := range s.triggers {
		if i, ok := index[c.Mapping]; ok {
			toPost = append(toPost, c.Time.Sub(s.published[i]))
		}
	}
	for _, c := range s.statuses {
		if !campaign.Status(c.Status).Terminal() {
			continue
		}
		if at, ok := s.received[c.Mapping]; ok {
			toEvent = append(toEvent, at.Sub(c.Time))
		}
	}
	return toPost, toEvent
}

// latencyTimes is when each command of a latency run was published (by
// index) and when its terminal event was read (by mapping).
type latencyTimes struct {
	published []time.Time
	received  map[string]time.Time
}

// endToEnd is publish → terminal event received of every command of ms,
// the commands from index first on.
func (lt latencyTimes) endToEnd(ms []campaignsim.Mapping, first int) []time.Duration {
	ds := make([]time.Duration, 0, len(ms))
	for i, m := range ms {
		if at, ok := lt.received[m.ID]; ok {
			ds = append(ds, at.Sub(lt.published[first+i]))
		}
	}
	return ds
}

// latencyRun starts a fresh server, runs start on it (the worker or the
// floor, which must have created the streams when it returns), publishes
// one command per mapping of ms at e.o.rate with ids prefix-<i>, and
// waits for every terminal event. An error of stop is the run's.
func latencyRun(ctx context.Context, e *env, mode string, ms []campaignsim.Mapping, prefix string, start func(url string) (stop func() error, err error)) (side latencySide, err error) {
	n := len(ms)
	if err := e.resetCalls(); err != nil {
		return latencySide{}, err
	}
	ns, err := e.natsServer(mode)
	if err != nil {
		return latencySide{}, err
	}
	defer ns.stop()
	stop, err := start(ns.url)
	if err != nil {
		return latencySide{}, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	nc, js, err := connect(ns.url)
	if err != nil {
		return latencySide{}, err
	}
	defer nc.Close()

	// Terminal events as a downstream subscriber sees them: from the stream.
	stream, err := js.Stream(ctx, layout.EventStream)
	if err != nil {
		return latencySide{}, err
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return latencySide{}, err
	}
	var mu sync.Mutex
	lt := latencyTimes{published: make([]time.Time, n), received: make(map[string]time.Time, n)}
	all := make(chan struct{})
	cc, err := oc.Consume(func(m jetstream.Msg) {
		at := time.Now()
		_ = m.Ack()
		if strings.HasSuffix(m.Subject(), "."+string(ingest.EventTriggered)) {
			return
		}
		mapping := strings.Split(m.Subject(), ".")[3]
		mu.Lock()
		defer mu.Unlock()
		if _, seen := lt.received[mapping]; seen {
			return
		}
		lt.received[mapping] = at
		if len(lt.received) == n {
			close(all)
		}
	})
	if err != nil {
		return latencySide{}, err
	}
	defer cc.Stop()

	interval := time.Second / time.Duration(e.o.rate)
	begin := time.Now()
	for i := range n {
		if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		lt.published[i] = time.Now()
		if _, err := js.PublishMsgAsync(commandMsg(benchOrg, fmt.Sprintf("%s-%d", prefix, i), ms[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
			return latencySide{}, err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		return latencySide{}, ctx.Err()
	case <-time.After(e.o.timeout):
		return latencySide{}, fmt.Errorf("timed out waiting for terminal events")
	}
	mu.Lock()
	side.latencyTimes = lt
	mu.Unlock()
	if side.triggers, err = e.calls("trigger"); err != nil {
		return latencySide{}, err
	}
	if side.statuses, err = e.calls("status"); err != nil {
		return latencySide{}, err
	}
	return side, nil
}

// quantile is the q quantile of ds (sorted in place); 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}
