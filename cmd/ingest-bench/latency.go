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
// stream, and publish → terminal event received. It then measures the last
// one for the floor, on a fresh server, at the same rate. With -runs N it
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
	t.add(label, "publish → POST seen, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.toPost }), "p99 ≤ 5ms", load)
	t.add(label, "terminal GET → event received, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.toEvent }), "p99 ≤ 5ms", "-")
	t.add(label, "worker: publish → terminal event, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.worker }), "", "-")
	t.add(label, "floor: publish → terminal event, p50 / p99 (ms)", p50p99(func(r latencyFigures) [2]time.Duration { return r.floor }), "", "-")
	t.add(label, "worker p99 − floor p99 (ms), per run", spread("%.2f", ms(func(r latencyFigures) time.Duration { return r.worker[1] - r.floor[1] })), "≤ 2ms", "-")
	t.add(label, "the same after the first second (ms)", spread("%.2f", ms(func(r latencyFigures) time.Duration { return r.workerWarm - r.floorWarm })), "", loadAvg())
	return nil
}

// latencyFigures are one latency pair's p50 and p99 ([2]) of each
// measure, and the p99s without the first second's commands (a fresh
// process's first jobs grow its connections, stacks and heap).
type latencyFigures struct {
	toPost, toEvent, worker, floor [2]time.Duration
	workerWarm, floorWarm          time.Duration
}

func (f latencyFigures) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("publish → terminal p50 / p99 worker %s / %s, floor %s / %s, p99 difference %s (%s after the first second)",
		r(f.worker[0]), r(f.worker[1]), r(f.floor[0]), r(f.floor[1]), r(f.worker[1]-f.floor[1]), r(f.workerWarm-f.floorWarm))
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
	var wr, fr latencyTimes
	runWorker := func() error {
		if err := e.resetCalls(); err != nil {
			return err
		}
		var err error
		wr, err = latencyRun(ctx, e, mode, ms, "lat"+tag, func(url string) (func() error, error) {
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
	var triggers, statuses []campaignsim.Call
	readCalls := func() error {
		var err error
		if triggers, err = e.calls("trigger"); err != nil {
			return err
		}
		statuses, err = e.calls("status")
		return err
	}
	runFloor := func() error {
		var err error
		fr, err = latencyRun(ctx, e, mode, ms, "latf"+tag, func(url string) (func() error, error) {
			return startFloor(ctx, e, url, e.instantFloor())
		})
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		return nil
	}
	steps := []func() error{runWorker, readCalls, runFloor}
	if floorFirst {
		steps = []func() error{runFloor, runWorker, readCalls}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return latencyFigures{}, err
		}
	}
	index := make(map[string]int, n)
	for i, m := range ms {
		index[m.ID] = i
	}
	var toPost, toEvent []time.Duration
	for _, c := range triggers {
		if i, ok := index[c.Mapping]; ok {
			toPost = append(toPost, c.Time.Sub(wr.published[i]))
		}
	}
	for _, c := range statuses {
		if !campaign.Status(c.Status).Terminal() {
			continue
		}
		if at, ok := wr.received[c.Mapping]; ok {
			toEvent = append(toEvent, at.Sub(c.Time))
		}
	}
	p := func(ds []time.Duration) [2]time.Duration {
		return [2]time.Duration{quantile(ds, 0.50), quantile(ds, 0.99)}
	}
	skip := min(e.o.rate, n/2)
	return latencyFigures{
		toPost: p(toPost), toEvent: p(toEvent),
		worker: p(wr.endToEnd(ms, 0)), floor: p(fr.endToEnd(ms, 0)),
		workerWarm: quantile(wr.endToEnd(ms[skip:], skip), 0.99), floorWarm: quantile(fr.endToEnd(ms[skip:], skip), 0.99),
	}, nil
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
func latencyRun(ctx context.Context, e *env, mode string, ms []campaignsim.Mapping, prefix string, start func(url string) (stop func() error, err error)) (lt latencyTimes, err error) {
	n := len(ms)
	ns, err := e.natsServer(mode)
	if err != nil {
		return latencyTimes{}, err
	}
	defer ns.stop()
	stop, err := start(ns.url)
	if err != nil {
		return latencyTimes{}, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	nc, js, err := connect(ns.url)
	if err != nil {
		return latencyTimes{}, err
	}
	defer nc.Close()

	// Terminal events as a downstream subscriber sees them: from the stream.
	stream, err := js.Stream(ctx, layout.EventStream)
	if err != nil {
		return latencyTimes{}, err
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return latencyTimes{}, err
	}
	var mu sync.Mutex
	lt = latencyTimes{published: make([]time.Time, n), received: make(map[string]time.Time, n)}
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
		return latencyTimes{}, err
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
			return latencyTimes{}, err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		return latencyTimes{}, ctx.Err()
	case <-time.After(e.o.timeout):
		return latencyTimes{}, fmt.Errorf("timed out waiting for terminal events")
	}
	mu.Lock()
	defer mu.Unlock()
	return lt, nil
}

// quantile is the q quantile of ds (sorted in place); 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}
