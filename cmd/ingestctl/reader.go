package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// startAt is where a reader starts in INGEST_EVENTS: at a stream sequence,
// else at a time, else at the beginning.
type startAt struct {
	seq  uint64
	time time.Time
}

// eventReader reads events in stream order with an ordered consumer.
type eventReader struct {
	cons jetstream.Consumer
	it   jetstream.MessagesContext
	// backlog is how many matching events the stream held from the start
	// position when the reader was opened.
	backlog uint64
}

// openEvents starts reading the events stream st on filters (subjects).
// Close stops it.
func openEvents(ctx context.Context, st jetstream.Stream, filters []string, from startAt) (*eventReader, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case from.seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from.seq
	case !from.time.IsZero():
		t := from.time
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	r := &eventReader{cons: cons, it: it}
	if info := cons.CachedInfo(); info != nil {
		r.backlog = info.NumPending
	}
	return r, nil
}

// next blocks for the next event until ctx ends (and then returns ctx's
// error).
func (r *eventReader) next(ctx context.Context) (received, error) {
	m, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return received{}, context.Cause(ctx)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return received{}, err
		}
		return received{}, fmt.Errorf("read events: %w", err)
	}
	return decodeEvent(m)
}

func (r *eventReader) close() { r.it.Stop() }
