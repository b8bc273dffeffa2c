package main

import (
	"context"
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
// publish → POST seen by the simulator, and terminal status served (the
// GET that answered terminal) → terminal event received from the events
// stream.
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
	ns, err := e.natsServer(mode)
	if err != nil {
		return err
	}
	defer ns.stop()
	url := ns.url
	w, err := startWorker(ctx, e.workerConfig(url, e.o.concurrency))
	if err != nil {
		return err
	}
	defer w.stop()
	nc, js, err := connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()

	// Terminal events as a downstream subscriber sees them: from the stream.
	stream, err := js.Stream(ctx, layout.EventStream)
	if err != nil {
		return err
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	received := make(map[string]time.Time, n) // by mapping
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
		received[mapping] = at
		if len(received) == n {
			close(all)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()

	load := loadAvg()
	published := make([]time.Time, n)
	interval := time.Second / time.Duration(e.o.rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		published[i] = time.Now()
		if _, err := js.PublishMsgAsync(commandMsg(benchOrg, fmt.Sprintf("lat-%d", i), ms[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.o.timeout):
		return fmt.Errorf("timed out waiting for terminal events")
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
			toPost = append(toPost, c.Time.Sub(published[i]))
		}
	}
	mu.Lock()
	for _, c := range statuses {
		if !campaign.Status(c.Status).Terminal() {
			continue
		}
		if at, ok := received[c.Mapping]; ok {
			toEvent = append(toEvent, at.Sub(c.Time))
		}
	}
	mu.Unlock()
	label := fmt.Sprintf("added latency at %d cmds/s, %d cmds, fsync %s", e.o.rate, n, mode)
	p50, p99 := percentiles(toPost)
	t.add(label, "publish → POST seen, p50 / p99", p50+" / "+p99, "p99 ≤ 5ms", load)
	p50, p99 = percentiles(toEvent)
	t.add(label, "terminal GET → event received, p50 / p99", p50+" / "+p99, "p99 ≤ 5ms", loadAvg())
	return nil
}

func percentiles(ds []time.Duration) (p50, p99 string) {
	if len(ds) == 0 {
		return "-", "-"
	}
	slices.Sort(ds)
	at := func(q float64) string {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(10 * time.Microsecond).String()
	}
	return at(0.50), at(0.99)
}
