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
// one for the floor, on a fresh server, at the same rate.
func latencyPhase(ctx context.Context, e *env, t *table, mode string) error {
	n := int(float64(e.o.rate) * e.o.latencyFor.Seconds())
	ms := make([]campaignsim.Mapping, n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("LAT%s%06d", mode, i), Script: campaignsim.Script{Records: 1}}
	}
	if err := e.putMappings(ms); err != nil {
		return err
	}
	if err := e.resetCalls(); err != nil {
		return err
	}
	label := fmt.Sprintf("added latency at %d cmds/s, %d cmds, fsync %s", e.o.rate, n, mode)
	load := loadAvg()
	wr, err := latencyRun(ctx, e, mode, ms, "lat", func(url string) (func() error, error) {
		w, err := startWorker(ctx, e.workerConfig(url, e.o.concurrency))
		if err != nil {
			return nil, err
		}
		return func() error { _ = w.stop(); return nil }, nil
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	triggers, err := e.calls("trigger")
	if err != nil {
		return err
	}
	statuses, err := e.calls("status")
	if err != nil {
		return err
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
	p50, p99 := percentiles(toPost)
	t.add(label, "publish → POST seen, p50 / p99", p50+" / "+p99, "p99 ≤ 5ms", load)
	p50, p99 = percentiles(toEvent)
	t.add(label, "terminal GET → event received, p50 / p99", p50+" / "+p99, "p99 ≤ 5ms", loadAvg())

	fr, err := latencyRun(ctx, e, mode, ms, "latf", func(url string) (func() error, error) {
		return startFloor(ctx, e, url, e.instantFloor())
	})
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	wd, fd := wr.endToEnd(ms), fr.endToEnd(ms)
	p50, p99 = percentiles(wd)
	t.add(label, "worker: publish → terminal event, p50 / p99", p50+" / "+p99, "", load)
	p50, p99 = percentiles(fd)
	t.add(label, "floor: publish → terminal event, p50 / p99", p50+" / "+p99, "", loadAvg())
	t.add(label, "worker p99 − floor p99", (quantile(wd, 0.99) - quantile(fd, 0.99)).Round(10*time.Microsecond).String(), "≤ 2ms", "-")
	return nil
}

// latencyTimes is when each command of a latency run was published (by
// index) and when its terminal event was read (by mapping).
type latencyTimes struct {
	published []time.Time
	received  map[string]time.Time
}

// endToEnd is publish → terminal event received of every command.
func (lt latencyTimes) endToEnd(ms []campaignsim.Mapping) []time.Duration {
	ds := make([]time.Duration, 0, len(ms))
	for i, m := range ms {
		if at, ok := lt.received[m.ID]; ok {
			ds = append(ds, at.Sub(lt.published[i]))
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

func percentiles(ds []time.Duration) (p50, p99 string) {
	if len(ds) == 0 {
		return "-", "-"
	}
	at := func(q float64) string { return quantile(ds, q).Round(10 * time.Microsecond).String() }
	return at(0.50), at(0.99)
}

// quantile is the q quantile of ds (sorted in place); 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}
