package reliability

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/acme/campaign-ingest/layout"
)

// EventFaultFor is how long one events-stream fault lasts.
const EventFaultFor = 2 * time.Second

// eventFaultSize is the events stream's MaxMsgSize during a fault: no event
// fits, so every publish to INGEST_EVENTS gets a JetStream error at once
// (10054, message size exceeds maximum allowed) and nothing is stored.
const eventFaultSize = 16

// TriggeredNotStoredLog is the worker's log message when a job's triggered
// event was not stored and it recorded its request in KV instead.
const TriggeredNotStoredLog = "the triggered event was not stored"

// TriggeredSlowLog is the worker's log message when a job's triggered event
// was not stored within its patience and it recorded its request in KV too.
const TriggeredSlowLog = "the triggered event is not stored yet"

// eventFaultLoop makes publishing to INGEST_EVENTS fail for EventFaultFor
// every EventFaultEvery: it sets the stream's MaxMsgSize below any event's
// size, then restores it. Triggered events published meanwhile are not
// stored, so their jobs must record the request in KV before acting on a
// status; terminal events are not stored either, so their commands are
// handed back and end on a redelivery.
func (ch *chaos) eventFaultLoop(ctx context.Context) {
	// The size to restore is read once, before any fault.
	orig, err := ch.setEventMaxMsgSize(func(v int32) int32 { return v })
	if err != nil {
		ch.cfg.Logf("events-stream faults off: %v", err)
		return
	}
	t := time.NewTicker(ch.cfg.EventFaultEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ch.eventFault(orig); err != nil {
			ch.cfg.Logf("events-stream fault: %v", err)
			continue
		}
		ch.mu.Lock()
		ch.eventFaults++
		ch.mu.Unlock()
	}
}

// eventFault runs one fault: MaxMsgSize tiny for EventFaultFor, then orig.
// The restore is retried (NATS may be away) until it succeeds or 30 s have
// passed; a worker that starts meanwhile restores the stream's
// configuration by itself.
func (ch *chaos) eventFault(orig int32) error {
	if _, err := ch.setEventMaxMsgSize(func(int32) int32 { return eventFaultSize }); err != nil {
		return err
	}
	ch.cfg.Logf("events stream: MaxMsgSize %d for %s", eventFaultSize, EventFaultFor)
	time.Sleep(EventFaultFor)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := ch.setEventMaxMsgSize(func(int32) int32 { return orig })
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setEventMaxMsgSize updates the events stream's MaxMsgSize to f(current)
// and returns the value it had.
func (ch *chaos) setEventMaxMsgSize(f func(int32) int32) (int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := ch.js.Stream(ctx, layout.EventStream)
	if err != nil {
		return 0, err
	}
	cfg := s.CachedInfo().Config
	orig := cfg.MaxMsgSize
	cfg.MaxMsgSize = f(orig)
	if _, err := ch.js.UpdateStream(ctx, cfg); err != nil {
		return 0, err
	}
	return orig, nil
}

// countLogged counts the lines of every worker log under dir that contain
// msg.
func countLogged(dir, msg string) int {
	paths, _ := filepath.Glob(filepath.Join(dir, "worker-*.log"))
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n += bytes.Count(b, []byte(msg))
	}
	return n
}
