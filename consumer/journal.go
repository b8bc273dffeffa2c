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

// Triggered stores the job's request id and publishes the triggered event,
// both at once. Only the state write can fail the job: a triggered event
// that cannot be published is logged, the terminal event still follows.
func (j journal) Triggered(ctx context.Context, rec ingest.Record, ev ingest.Event) error {
	wctx, cancel := j.c.writeCtx(ctx)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- j.c.pub.Publish(wctx, ev) }()
	err := j.c.store.Save(wctx, rec)
	if perr := <-pubErr; perr != nil {
		j.log.Warn("cannot publish the triggered event", "err", perr)
	} else {
		j.c.m.Events.WithLabelValues(string(ev.Type)).Inc()
	}
	return err
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
