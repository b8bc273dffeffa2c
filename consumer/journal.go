package consumer

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/campaign-ingest/ingest"
)

// journal is the ingest.Journal of one job: state in KV, events on the
// stream. Its writes outlive a stopping worker (they are bounded by
// WriteTimeout instead) so that a job handed back has its state recorded.
type journal struct {
	c   *Consumer
	log *slog.Logger
}

func (c *Consumer) journal(log *slog.Logger) journal { return journal{c: c, log: log} }

// Triggered starts publishing the triggered event (asynchronously: no
// goroutine waits for it) and returns a function that waits, at most
// WriteTimeout, for JetStream's acknowledgement. It stores no state (the job
// does, with Progress or the done record) and never fails the job: a
// triggered event that cannot be published is logged, the terminal event
// still follows.
func (j journal) Triggered(_ context.Context, ev ingest.Event) func() error {
	ack, err := j.c.pub.PublishAsync(ev)
	if err != nil {
		j.log.Warn("cannot publish the triggered event", "err", err)
		return func() error { return nil }
	}
	return func() error {
		t := time.NewTimer(j.c.cfg.WriteTimeout)
		defer t.Stop()
		select {
		case <-ack.Ok():
			j.c.m.Events.WithLabelValues(string(ev.Type)).Inc()
		case err := <-ack.Err():
			j.log.Warn("cannot publish the triggered event", "err", err)
		case <-t.C:
			j.log.Warn("no acknowledgement of the triggered event", "timeout", j.c.cfg.WriteTimeout)
		}
		return nil
	}
}

// Progress stores the job's state.
func (j journal) Progress(ctx context.Context, rec ingest.Record) error {
	wctx, cancel := j.c.writeCtx(ctx)
	defer cancel()
	return j.c.store.Save(wctx, rec)
}

// metricsSink registers nothing: metrics for a Consumer built without any.
type metricsSink struct{}

func (metricsSink) Register(prometheus.Collector) error  { return nil }
func (metricsSink) MustRegister(...prometheus.Collector) {}
func (metricsSink) Unregister(prometheus.Collector) bool { return true }
