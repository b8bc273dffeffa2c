package consumer

import (
	"context"
	"log/slog"

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

// Triggered publishes the triggered event. It stores no state (the job
// does, with Progress or the done record) and never fails the job: a
// triggered event that cannot be published is logged, the terminal event
// still follows.
func (j journal) Triggered(ctx context.Context, ev ingest.Event) error {
	wctx, cancel := j.c.writeCtx(ctx)
	defer cancel()
	if err := j.c.pub.Publish(wctx, ev); err != nil {
		j.log.Warn("cannot publish the triggered event", "err", err)
		return nil
	}
	j.c.m.Events.WithLabelValues(string(ev.Type)).Inc()
	return nil
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
