package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/nats-io/nats.go/jetstream"
)

// Progress is how far a run is, read from JetStream.
type Progress struct {
	Queued uint64 // commands still in the work queue (not acked nor termed)
	Events uint64 // events stored
}

// ReadProgress reads the streams' state.
func ReadProgress(ctx context.Context, js jetstream.JetStream) (Progress, error) {
	var p Progress
	for name, n := range map[string]*uint64{layout.CommandStream: &p.Queued, layout.EventStream: &p.Events} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return p, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return p, err
		}
		*n = info.State.Msgs
	}
	return p, nil
}

// WaitDrained waits until the work queue is empty (every command acked or
// terminated, so its terminal event is stored), at most timeout. Errors of
// an unreachable server are retried until the timeout.
func WaitDrained(ctx context.Context, js jetstream.JetStream, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := ReadProgress(rctx, js)
		rcancel()
		if err == nil && p.Queued == 0 {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("%d commands still queued", p.Queued)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("work queue not drained within %s: %w", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ReadEvents reads every event of INGEST_EVENTS from the start.
func ReadEvents(ctx context.Context, js jetstream.JetStream) ([]ingest.Event, error) {
	s, err := js.Stream(ctx, layout.EventStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var evs []ingest.Event
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev ingest.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				return nil, fmt.Errorf("event on %s: %w", m.Subject(), err)
			}
			evs = append(evs, ev)
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if meta.Sequence.Stream >= last {
				return evs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("events stream ended before sequence %d (%d read)", last, len(evs))
		}
	}
}
