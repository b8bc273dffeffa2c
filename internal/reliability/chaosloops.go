package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/pause"
)

// publish publishes cmds evenly over the chaos's duration, in batches of
// 100, retrying while NATS is away.
func (ch *chaos) publish(ctx context.Context, cmds []ingest.Command) error {
	const batch = 100
	n := (len(cmds) + batch - 1) / batch
	every := ch.cfg.Duration * 8 / 10 / time.Duration(n)
	for i := 0; i < len(cmds); i += batch {
		part := cmds[i:min(i+batch, len(cmds))]
		for {
			pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := Publish(pctx, ch.js, part)
			cancel()
			if err == nil {
				break
			}
			ch.cfg.Logf("publish: %v (retrying)", err)
			time.Sleep(500 * time.Millisecond)
		}
		if ctx.Err() == nil {
			_ = pause.For(ctx, every)
		}
	}
	return nil
}

func (ch *chaos) killLoop(ctx context.Context) {
	t := time.NewTicker(ch.cfg.KillEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ch.mu.Lock()
		var live []*Worker
		for _, w := range ch.workers {
			if !w.Exited() {
				live = append(live, w)
			}
		}
		ch.mu.Unlock()
		if len(live) == 0 {
			continue
		}
		w := live[rand.IntN(len(live))]
		s := stopped{proc: w.ID, term: n%3 == 0}
		if s.term {
			s.at = w.Term()
			if err := w.Wait(30 * time.Second); err != nil {
				ch.cfg.Logf("worker %d after SIGTERM: %v", w.ID, err)
				w.Kill()
			}
		} else {
			s.at = w.Kill()
		}
		ch.mu.Lock()
		ch.stops = append(ch.stops, s)
		ch.mu.Unlock()
		if _, err := ch.startWorker(); err != nil {
			ch.cfg.Logf("restart a worker: %v", err)
		}
	}
}

func (ch *chaos) natsLoop(ctx context.Context) {
	t := time.NewTicker(ch.cfg.NATSEvery)
	defer t.Stop()
	streams := []string{"INGEST_COMMANDS", "KV_INGEST_JOBS", "INGEST_EVENTS"}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		victim := ch.single
		what := "the server"
		if ch.cluster != nil {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			stream := streams[n%len(streams)]
			l, err := ch.cluster.Leader(lctx, ch.js, stream)
			cancel()
			if err != nil {
				ch.cfg.Logf("leader of %s: %v", stream, err)
				continue
			}
			victim, what = l, fmt.Sprintf("%s (leader of %s)", l.Name(), stream)
		}
		ch.cfg.Logf("stopping NATS %s for 2s", what)
		victim.Stop()
		time.Sleep(2 * time.Second)
		if err := victim.Start(); err != nil {
			ch.cfg.Logf("restart NATS %s: %v", what, err)
		}
	}
}

func (ch *chaos) progressLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := ReadProgress(pctx, ch.js)
		cancel()
		if err == nil {
			ch.cfg.Logf("queued %d, events %d", p.Queued, p.Events)
		}
	}
}
