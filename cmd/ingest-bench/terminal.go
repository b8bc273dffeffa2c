package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/nats-io/nats.go"
)

// terminalCounter counts terminal events on a core subscription and notes
// when the want-th arrived.
type terminalCounter struct {
	sub  *nats.Subscription
	want int
	n    int
	last time.Time
	done chan struct{}
}

func countTerminal(nc *nats.Conn, want int, onEvent func(subject string, at time.Time)) (*terminalCounter, error) {
	tc := &terminalCounter{want: want, done: make(chan struct{})}
	var err error
	tc.sub, err = nc.Subscribe(layout.EventPrefix+">", func(m *nats.Msg) {
		at := time.Now()
		if onEvent != nil {
			onEvent(m.Subject, at)
		}
		if strings.HasSuffix(m.Subject, "."+string(ingest.EventTriggered)) {
			return
		}
		tc.n++
		if tc.n == tc.want {
			tc.last = at
			close(tc.done)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := tc.sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	return tc, nc.Flush()
}

func (tc *terminalCounter) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-tc.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return errors.New("timed out waiting for terminal events")
	}
}
