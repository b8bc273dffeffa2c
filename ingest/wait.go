// Waiting and retrying: the timer between two steps, the retry loop of one
// API operation, and the classification of its errors.

package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/acme/campaign-ingest/campaign"
)

// after calls then once d has passed, or stopped once ctx has ended, on a
// goroutine of its own; whichever comes first, never both.
func after(ctx context.Context, d time.Duration, then, stopped func()) {
	var (
		claimed atomic.Bool
		mu      sync.Mutex
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	stopCtx := context.AfterFunc(ctx, func() {
		if !claimed.CompareAndSwap(false, true) {
			return
		}
		mu.Lock()
		t.Stop()
		mu.Unlock()
		stopped()
	})
	t = time.AfterFunc(d, func() {
		if claimed.CompareAndSwap(false, true) {
			stopCtx()
			then()
		}
	})
}

// mayHaveSubmitted reports whether a failed POST may have submitted a
// request: the API failed transiently, other than by throttling it.
func mayHaveSubmitted(err error) bool {
	var ae *campaign.APIError
	return campaign.Retryable(err) && !(errors.As(err, &ae) && ae.StatusCode == 429)
}

func isForbidden(err error) bool {
	var ae *campaign.APIError
	return errors.As(err, &ae) && ae.StatusCode == 403
}

// isServerError500 is Campaign's "Oops. Something went wrong. Check your URI"
// answer: retried a few times within the delivery, then final.
func isServerError500(err error) bool {
	var ae *campaign.APIError
	return errors.As(err, &ae) && ae.StatusCode == 500
}

// retry calls op until it succeeds, fails permanently, or fails transiently
// cfg.RetryAttempts times, with jittered exponential backoff (or the
// answer's Retry-After) between calls.
func retry[T any](ctx context.Context, cfg Config, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = cfg.RetryInitial, cfg.RetryMax
	return backoff.Retry(ctx, func() (T, error) {
		v, err := op()
		switch {
		case err == nil:
			return v, nil
		case !campaign.Retryable(err):
			return v, backoff.Permanent(err)
		}
		if ra, ok := campaign.RetryAfterOf(err); ok {
			return v, errors.Join(err, &backoff.RetryAfterError{Duration: ra})
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(cfg.RetryAttempts)), backoff.WithMaxElapsedTime(0))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
