// Package pause waits for a duration or for a context, whichever ends
// first: the one sleep of the module's packages.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends; then it returns ctx's cause. It returns
// nil when it waited d.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
