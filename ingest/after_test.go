package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAfter: the wait between two steps ends in exactly one of "then"
// (the time passed) and "stopped" (the job's context ended).
func TestAfter(t *testing.T) {
	tests := []struct {
		name        string
		d           time.Duration
		cancelAfter time.Duration // < 0: never
		wantThen    bool
	}{
		{name: "time passes", d: 10 * time.Millisecond, cancelAfter: -1, wantThen: true},
		{name: "context ends first", d: time.Hour, cancelAfter: 10 * time.Millisecond, wantThen: false},
		{name: "context already ended", d: time.Hour, cancelAfter: 0, wantThen: false},
		{name: "zero wait", d: 0, cancelAfter: -1, wantThen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAfter == 0 {
				cancel()
			}
			var thens, stops atomic.Int32
			done := make(chan struct{}, 2)
			after(ctx, tt.d, func() { thens.Add(1); done <- struct{}{} }, func() { stops.Add(1); done <- struct{}{} })
			if tt.cancelAfter > 0 {
				time.AfterFunc(tt.cancelAfter, cancel)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("neither then nor stopped was called")
			}
			cancel() // a late end of the context must not call stopped too
			time.Sleep(20 * time.Millisecond)
			if got := thens.Load() == 1; got != tt.wantThen || thens.Load()+stops.Load() != 1 {
				t.Errorf("then called %d times, stopped %d times; want then = %v, exactly one call", thens.Load(), stops.Load(), tt.wantThen)
			}
		})
	}
}

// TestAfterRace: with the time and the context's end racing, exactly one
// side runs, every time.
func TestAfterRace(t *testing.T) {
	var wg sync.WaitGroup
	for range 500 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int32
			done := make(chan struct{}, 2)
			after(ctx, time.Microsecond, func() { calls.Add(1); done <- struct{}{} }, func() { calls.Add(1); done <- struct{}{} })
			cancel()
			<-done
			select {
			case <-done:
				t.Error("both then and stopped were called")
			case <-time.After(time.Millisecond):
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
		})
	}
	wg.Wait()
}
