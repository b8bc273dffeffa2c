package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// settle publishes the outcome and acks, or hands the command back.
func (c *Consumer) settle(ctx context.Context, log *slog.Logger, msg jetstream.Msg, res ingest.Result) {
	switch {
	case res.Event != nil:
		c.finish(ctx, log, msg, res)
	case res.Interrupted:
		log.Info("job interrupted; handing the command back")
		c.handBack(msg, "shutdown")
	default:
		log.Warn("API unavailable; handing the command back", "err", res.Err, "retryIn", res.Retry)
		c.nak(msg, res.Retry, "api")
	}
}

// finish publishes the terminal event, records the job as done when it has
// a record to replace (Result.Stored), and acks. The ack comes only after
// JetStream acknowledged the event.
func (c *Consumer) finish(ctx context.Context, log *slog.Logger, msg jetstream.Msg, res ingest.Result) {
	ev := res.Event
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	ack, err := c.pub.Publish(wctx, *ev)
	if err != nil {
		log.Warn("cannot publish the outcome; handing the command back", "err", err)
		c.nak(msg, time.Second, "nats")
		return
	}
	if res.Stored {
		if err := c.store.Save(wctx, res.Record); err != nil {
			// The event is stored; a redelivery would poll once more and
			// publish a duplicate that the stream drops.
			log.Warn("cannot record the job as done", "err", err)
		}
	}
	first := c.counted(*ev, ack)
	c.ack(log, msg)
	if first {
		log.Info("command finished", "outcome", ev.Type, "reason", ev.Reason, "requestId", ev.RequestID,
			"status", ev.Status, "numRecords", ev.NumRecords, "polls", ev.Polls, "attempt", ev.Attempt)
		return
	}
	log.Info("command finished; its outcome was already published", "outcome", ev.Type, "requestId", ev.RequestID)
}

// reject records a command that can never succeed as done (so that a
// later message with the same id is a duplicate, not a command whose
// outcome the stream would drop as one), publishes its rejected event, and
// terminates it. The record comes first: a message with the same id that
// arrives while the event is being published must already find it. A
// redelivery of the rejected command is rejected again (validation comes
// before the record is read), so a publish that fails still gets its
// retry. A publish that fails for a reason that will not pass (the server
// refuses the message) still terminates the command, counted and logged
// once; only a transient failure hands it back.
func (c *Consumer) reject(ctx context.Context, log *slog.Logger, msg jetstream.Msg, ev ingest.Event) {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	if ingest.ValidOrganization(ev.Organization) {
		// Create only: a running job's record is never overwritten.
		if _, err := c.store.Claim(wctx, ingest.DoneRecord(ev)); err != nil {
			log.Warn("cannot record the rejection", "err", err)
		}
	}
	ack, err := c.pub.Publish(wctx, ev)
	switch {
	case err != nil && !permanentPublishError(err):
		log.Warn("cannot publish the rejection; handing the command back", "err", err)
		c.nak(msg, time.Second, "nats")
		return
	case err != nil:
		c.m.EventsDropped.WithLabelValues(string(ev.Type)).Inc()
		log.Error("the rejection cannot be published; terminating the command without it", "err", err)
	default:
		c.counted(ev, ack)
	}
	if err := msg.TermWithReason(string(ev.Reason)); err != nil {
		log.Warn("cannot terminate the command", "err", err)
	}
}

// permanentPublishError reports whether a publish failed because the server
// refused the message itself, so that no retry can pass.
func permanentPublishError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadHeaderMsg)
}

// counted counts an event the stream stored, once: a publish the stream
// dropped as a duplicate was counted by the delivery that stored it. It
// reports whether it counted.
func (c *Consumer) counted(ev ingest.Event, ack *jetstream.PubAck) bool {
	if ack != nil && ack.Duplicate {
		return false
	}
	c.m.Events.WithLabelValues(string(ev.Type)).Inc()
	if ev.Type.Terminal() {
		c.m.ObserveOutcome(c.label(ev.Organization), string(ev.Type), string(ev.Reason), ev.NumRecords, time.Time(ev.TriggeredAt), time.Time(ev.FinishedAt))
	}
	return true
}

func (c *Consumer) ack(log *slog.Logger, msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		log.Warn("cannot acknowledge the command", "err", err)
	}
}

// nak hands a command back to be redelivered after delay.
func (c *Consumer) nak(msg jetstream.Msg, delay time.Duration, reason string) {
	c.m.Naks.WithLabelValues(reason).Inc()
	if err := msg.NakWithDelay(delay); err != nil {
		c.log.Warn("cannot hand the command back", "subject", msgSubject(msg), "err", err)
	}
}

// handBack returns a command for immediate redelivery.
func (c *Consumer) handBack(msg jetstream.Msg, reason string) {
	c.m.Naks.WithLabelValues(reason).Inc()
	if err := msg.Nak(); err != nil {
		c.log.Warn("cannot hand the command back", "subject", msgSubject(msg), "err", err)
	}
}

func msgSubject(msg jetstream.Msg) string { return ingest.Bounded(msg.Subject(), 256) }
