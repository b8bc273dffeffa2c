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
// request: the API failed transiently, other than by throttling it, on the
// POST itself (a failed token request sent no POST).
func mayHaveSubmitted(err error) bool {
	var ae *campaign.APIError
	if errors.As(err, &ae) && ae.Operation == campaign.OpToken {
		return false
	}
	c := campaign.Classify(err)
	return c == campaign.ClassTransient || c == campaign.ClassServerError
}

// retry calls op until it succeeds, fails permanently, or fails transiently
// cfg.RetryAttempts times, with jittered exponential backoff (or the
// answer's Retry-After, when it is at most cfg.RetryMax) between calls. A
// longer Retry-After ends the retries: the delivery hands the command back
// for that long.
//
// The first call is made before any backoff state exists: most calls
// succeed at once, and they then cost nothing more than the call.
func retry[T any](ctx context.Context, cfg Config, op func() (T, error)) (T, error) {
	v, err := op()
	if err == nil {
		return v, nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = cfg.RetryInitial, cfg.RetryMax
	first := true
	return backoff.Retry(ctx, func() (T, error) {
		if !first {
			v, err = op()
		}
		first = false
		switch {
		case err == nil:
			return v, nil
		case !campaign.Retryable(err):
			return v, backoff.Permanent(err)
		}
		if ra, ok := campaign.RetryAfterOf(err); ok {
			if ra > cfg.RetryMax {
				// Too long to wait within the delivery: the command is
				// handed back with the Retry-After as its delay.
				return v, backoff.Permanent(err)
			}
			return v, errors.Join(err, &backoff.RetryAfterError{Duration: ra})
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(cfg.RetryAttempts)), backoff.WithMaxElapsedTime(0))
}
