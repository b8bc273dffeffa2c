package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

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
// within and at most WriteTimeout from now in all, for JetStream's
// acknowledgement; it returns the error when the event was not stored,
// ingest.ErrPublishing when within passed first.
func (j journal) Triggered(_ context.Context, ev ingest.Event) func(within time.Duration) error {
	ack, err := j.c.pub.PublishAsync(ev)
	if err != nil {
		return func(time.Duration) error { return err }
	}
	deadline := time.Now().Add(j.c.cfg.WriteTimeout)
	return func(within time.Duration) error {
		// Usually the acknowledgement came during the status check: no
		// timer then.
		select {
		case pa := <-ack.Ok():
			j.c.counted(ev, pa)
			return nil
		case err := <-ack.Err():
			return err
		default:
		}
		left := time.Until(deadline)
		short := within > 0 && within < left
		if short {
			left = within
		}
		t := time.NewTimer(left)
		defer t.Stop()
		select {
		case pa := <-ack.Ok():
			j.c.counted(ev, pa)
			return nil
		case err := <-ack.Err():
			return err
		case <-t.C:
			if short {
				return ingest.ErrPublishing
			}
			return errors.New("no acknowledgement of the triggered event within " + j.c.cfg.WriteTimeout.String())
		}
	}
}

// Progress stores the job's state.
func (j journal) Progress(ctx context.Context, rec ingest.Record) error {
	wctx, cancel := j.c.writeCtx(ctx)
	defer cancel()
	return j.c.store.Save(wctx, rec)
}
