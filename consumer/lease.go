package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func (c *Consumer) track(d *delivery, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.active[d] = struct{}{}
	} else {
		delete(c.active, d)
	}
}

// heartbeat tells JetStream every AckWait/3 that running jobs are alive, and
// refreshes oldest_in_flight_seconds.
func (c *Consumer) heartbeat(ctx context.Context) {
	t := time.NewTicker(c.js.Topology.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs, oldest := c.snapshot()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				c.log.Debug("heartbeat failed", "subject", msgSubject(m), "err", err)
			}
		}
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		c.m.OldestInFlight.Set(age)
	}
}

// snapshot returns the messages of the running jobs and the publication
// time of the oldest.
func (c *Consumer) snapshot() ([]jetstream.Msg, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := make([]jetstream.Msg, 0, len(c.active))
	var oldest time.Time
	for d := range c.active {
		msgs = append(msgs, d.msg)
		if oldest.IsZero() || d.published.Before(oldest) {
			oldest = d.published
		}
	}
	return msgs, oldest
}

// watchPending refreshes commands_pending.
func (c *Consumer) watchPending(ctx context.Context) {
	t := time.NewTicker(c.cfg.PendingEvery)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.js.Consumer.Info(ictx)
		cancel()
		if err == nil {
			c.m.Pending.Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
