package pause

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	if err := For(context.Background(), time.Millisecond); err != nil {
		t.Errorf("For(1ms) = %v, want nil", err)
	}
	cause := errors.New("stopping")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := For(ctx, time.Hour); !errors.Is(err, cause) {
		t.Errorf("For on an ended context = %v, want its cause", err)
	}
}
