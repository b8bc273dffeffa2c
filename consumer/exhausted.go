package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
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
	info := c.bound.Consumer.CachedInfo()
	subject := maxDeliveriesSubject + info.Stream + "." + info.Name
	msgs := make(chan *nats.Msg, 64)
	sub, err := c.bound.JetStream.Conn().ChanSubscribe(subject, msgs)
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
	raw, err := c.bound.Commands.GetMsg(wctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return // another replica ended it
	}
	if err != nil {
		c.log.Warn("cannot read a command that used up its deliveries", "seq", adv.StreamSeq, "err", err)
		return
	}
	env := ingest.Envelope{
		Subject:    raw.Subject,
		MsgID:      raw.Header.Get(jetstream.MsgIDHeader),
		FallbackID: c.bound.Commands.CachedInfo().Config.Name + "-" + strconv.FormatUint(adv.StreamSeq, 10),
		Trace:      ingest.ParseTrace(raw.Header.Get(ingest.HeaderTraceParent), raw.Header.Get(ingest.HeaderTraceState)),
	}
	cmd, perr := ingest.ParseCommand(env, raw.Data)
	log := c.log.With("commandId", cmd.ID, "organization", cmd.Organization, "mappingId", cmd.MappingID, "deliveries", adv.Deliveries)
	rec, err := c.store.Load(wctx, cmd.ID)
	if err != nil {
		log.Warn("cannot read the job state of a command that used up its deliveries", "err", err)
		return
	}
	if rec == nil || rec.Phase != ingest.PhaseDone {
		ev := ingest.Exhausted(cmd, rec, int(adv.Deliveries), time.Now())
		var rej *ingest.RejectError
		if errors.As(perr, &rej) {
			ev = ingest.Rejected(cmd, rej, time.Now())
		}
		ack, err := c.pub.Publish(wctx, ev)
		if err != nil {
			log.Warn("cannot publish the outcome of a command that used up its deliveries", "err", err)
			return
		}
		// Every replica hears the advisory; the one whose event the
		// stream kept counts it.
		if !ack.Duplicate {
			c.m.Events.WithLabelValues(string(ev.Type)).Inc()
			c.m.ObserveOutcome(string(ev.Type), string(ev.Reason), 0, time.Time{}, time.Time(ev.FinishedAt))
			log.Warn("command used up its deliveries without an outcome", "outcome", ev.Type, "reason", ev.Reason)
		}
	}
	if err := c.bound.Commands.DeleteMsg(wctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Warn("cannot delete a command that used up its deliveries", "err", err)
	}
}
