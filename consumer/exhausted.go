package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// maxDeliveriesSubject is where the server announces a command that used up
// MaxDeliver: $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// maxDeliveriesAdvisory is the part of the server's advisory the worker reads.
type maxDeliveriesAdvisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchExhausted ends the commands that used up their deliveries without an
// outcome — a worker died during their last delivery, so no job published
// the terminal event. The command is still in the work queue: the worker
// publishes a failed event (api_unavailable) unless the job state says it
// is done, then deletes the command. Every replica does it; the shared
// terminal Nats-Msg-Id keeps one event.
func (c *Consumer) watchExhausted(ctx context.Context) {
	info := c.js.Consumer.CachedInfo()
	subject := maxDeliveriesSubject + info.Stream + "." + info.Name
	msgs := make(chan *nats.Msg, 64)
	sub, err := c.js.JetStream.Conn().ChanSubscribe(subject, msgs)
	if err != nil {
		c.log.Error("cannot watch for commands that used up their deliveries", "subject", subject, "err", err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			var adv maxDeliveriesAdvisory
			if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
				c.log.Warn("unreadable max deliveries advisory", "err", err)
				continue
			}
			c.endExhausted(ctx, adv)
		}
	}
}

func (c *Consumer) endExhausted(ctx context.Context, adv maxDeliveriesAdvisory) {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	raw, err := c.js.Commands.GetMsg(wctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return // another replica ended it
	}
	if err != nil {
		c.log.Warn("cannot read a command that used up its deliveries", "seq", adv.StreamSeq, "err", err)
		return
	}
	env := layout.Envelope(raw.Subject, raw.Header.Get, c.js.Commands.CachedInfo().Config.Name, adv.StreamSeq)
	cmd, perr := ingest.ParseCommand(env, raw.Data)
	log := commandLogger(c.log, cmd, slog.Uint64("deliveries", adv.Deliveries))
	var rej *ingest.RejectError
	if errors.As(perr, &rej) {
		err = c.publishExhausted(wctx, log, ingest.Rejected(cmd, rej, time.Now()))
	} else {
		err = c.endUnfinished(wctx, log, cmd, adv)
	}
	if err != nil && !permanentPublishError(err) {
		return // the command stays; an operator sees it in commands_pending
	}
	if err := c.js.Commands.DeleteMsg(wctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Warn("cannot delete a command that used up its deliveries", "err", err)
	}
}

// endUnfinished publishes the failed event of a valid command that used up
// its deliveries, unless its record says it is done. The record is read
// from the bucket's leader: the last delivery may have written it a moment
// before the advisory.
func (c *Consumer) endUnfinished(ctx context.Context, log *slog.Logger, cmd ingest.Command, adv maxDeliveriesAdvisory) error {
	rec, err := c.store.LoadLatest(ctx, cmd.Organization, cmd.ID)
	if err != nil {
		log.Warn("cannot read the job state of a command that used up its deliveries", "err", err)
		return err
	}
	if rec != nil && rec.Phase == ingest.PhaseDone {
		return nil
	}
	return c.publishExhausted(ctx, log, ingest.Exhausted(cmd, rec, int(adv.Deliveries), time.Now()))
}

// publishExhausted publishes the terminal event of a command that used up
// its deliveries. Every replica hears the advisory; the one whose event the
// stream kept counts it.
func (c *Consumer) publishExhausted(ctx context.Context, log *slog.Logger, ev ingest.Event) error {
	ack, err := c.pub.Publish(ctx, ev)
	if err != nil {
		log.Warn("cannot publish the outcome of a command that used up its deliveries", "err", err)
		if permanentPublishError(err) {
			c.m.EventsDropped.WithLabelValues(string(ev.Type)).Inc()
		}
		return err
	}
	if c.counted(ev, ack) {
		log.Warn("command used up its deliveries without an outcome", "outcome", ev.Type, "reason", ev.Reason)
	}
	return nil
}
