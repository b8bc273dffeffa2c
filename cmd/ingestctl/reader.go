package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/layout"
)

// startAt is where a reader starts in a stream: at a stream sequence, else
// at a time, else at the last message of each subject (lastPerSubject),
// else at the beginning.
type startAt struct {
	seq            uint64
	time           time.Time
	lastPerSubject bool
}

// reader reads one stream's messages on one filter subject in order, with
// an ordered push consumer delivering to the connection's inbox.
//
// The consumer is created with the filter in the API subject
// ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>), so a user may be
// allowed to read exactly the filters of its organization; reading needs
// no other JetStream API (no stream info, no pull requests).
type reader struct {
	sub *nats.Subscription
	// backlog is how many messages the filter matched from the start
	// position when the reader was opened.
	backlog uint64
}

// open starts reading stream on filter from from. The consumer goes when
// the session closes.
func (s *session) open(ctx context.Context, stream, filter string, from startAt) (*reader, error) {
	opts := []nats.SubOpt{nats.BindStream(stream), nats.OrderedConsumer(), nats.Context(ctx)}
	switch {
	case from.seq > 0:
		opts = append(opts, nats.StartSequence(from.seq))
	case !from.time.IsZero():
		opts = append(opts, nats.StartTime(from.time))
	case from.lastPerSubject:
		opts = append(opts, nats.DeliverLastPerSubject())
	default:
		opts = append(opts, nats.DeliverAll())
	}
	sub, err := s.legacy.SubscribeSync(filter, opts...)
	if err != nil {
		return nil, s.streamError(stream, err)
	}
	r := &reader{sub: sub}
	if n, err := sub.InitialConsumerPending(); err == nil {
		r.backlog = n
	}
	return r, nil
}

// next blocks for the next message until ctx ends (and then returns ctx's
// cause).
func (r *reader) next(ctx context.Context) (*nats.Msg, error) {
	m, err := r.sub.NextMsgWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("read %s: %w", r.sub.Subject, err)
	}
	return m, nil
}

// nextEventSeq returns the events stream's next sequence: every event
// stored from now on has at least this sequence. It asks by creating a
// consumer on filter that delivers only new events and is never read (the
// server removes it after a few seconds), since a user confined to its
// organization may create such a consumer but not read the stream's
// state.
func (s *session) nextEventSeq(ctx context.Context, filter string) (uint64, error) {
	c, err := s.js.CreateConsumer(ctx, layout.EventStream, jetstream.ConsumerConfig{
		Description:       "ingestctl: where the events stream stands",
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return 0, s.streamError(layout.EventStream, err)
	}
	return c.CachedInfo().Delivered.Stream + 1, nil
}

// streamError explains an error creating a consumer on stream: a missing
// stream or bucket, or a server without JetStream.
func (s *session) streamError(stream string, err error) error {
	what := "stream " + stream
	if stream == jobsStream {
		what = "bucket " + layout.DefaultBucket
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, nats.ErrStreamNotFound):
		return fmt.Errorf("no %s on %s: %s", what, s.url, workerHint)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrJetStreamNotEnabled),
		errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no JetStream on %s (%w): is --server the worker's NATS server?", s.url, err)
	default:
		return fmt.Errorf("read %s: %w", what, err)
	}
}
