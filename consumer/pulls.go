package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// maxPulls bounds the pulls in progress at once.
	maxPulls = 4
	// aheadWindow: pulls ask for commands ahead of the free slots while a
	// slot was released within it.
	aheadWindow = 100 * time.Millisecond
)

// pulls keeps pull requests outstanding for the free slots, and ahead of
// them while jobs end often. With one pull at a time for the free slots
// only, the slots freed during a pull stayed empty until it ended and the
// next one was answered: under load a worker ran a fifth of its slots
// empty (81 of 100 jobs in flight on average; 93 with this).
//
// A pull asks for the free slots not already asked for (outstanding), plus,
// while a slot was released within aheadWindow, a quarter of the slots less
// the commands already parked: a command that arrives before its slot is
// free waits parked, keeping its lease like any parked command, for the
// next releases, and no more than a quarter of the slots ever wait so (at
// the slowest turnover that pulls ahead, a few seconds). When jobs end
// less often (long ingestions fill the slots) no command is pulled ahead,
// so at most those pulled just before can wait behind them while another
// replica could run them. A second pull waits until it can ask for an
// eighth of the slots, and at most maxPulls run at once.
type pulls struct {
	c     *Consumer
	slots *slots
	// minPull is the least a pull asks for while another is in progress
	// (an eighth of the slots); maxAhead the most commands pulled ahead of
	// the free slots (a quarter).
	minPull, maxAhead int

	mu sync.Mutex
	// outstanding is the commands asked for and neither delivered nor
	// expired; running the pulls in progress; err the first failure of a
	// pull since the last takeErr.
	outstanding int
	running     int
	err         error
	wg          sync.WaitGroup
}

func (c *Consumer) newPulls(s *slots) *pulls {
	return &pulls{c: c, slots: s, minPull: max(1, c.cfg.MaxInFlight/8), maxAhead: max(1, c.cfg.MaxInFlight/4)}
}

// next is how many commands to ask for now; 0 means wait (waitChange).
func (p *pulls) next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.slots.room() - p.outstanding
	if time.Since(p.slots.lastRelease()) < aheadWindow {
		// Ahead, less what already waits parked: the commands pulled
		// ahead wait there, so they are never more than maxAhead.
		_, parked := p.slots.used()
		room += max(0, p.maxAhead-parked)
	}
	switch {
	case room <= 0:
		return 0
	case p.running == 0:
		return room
	case p.running < maxPulls && room >= p.minPull:
		return room
	}
	return 0
}

// waitChange waits until a slot is released, a pull ends, or ctx ends.
func (p *pulls) waitChange(ctx context.Context) { p.slots.waitRelease(ctx) }

// start asks for n commands and passes each to arrive as it comes, on a
// goroutine of its own. A command delivered after ctx ended is handed back
// for later: a plain Nak would redeliver it into the same pull, again and
// again.
func (p *pulls) start(ctx context.Context, n int, arrive func(jetstream.Msg)) error {
	batch, err := p.c.js.Consumer.Fetch(n, jetstream.FetchMaxWait(p.c.cfg.FetchWait))
	if err != nil {
		return err
	}
	p.c.pulling.Store(true)
	p.mu.Lock()
	p.outstanding += n
	p.running++
	p.mu.Unlock()
	p.wg.Go(func() {
		got := 0
		for msg := range batch.Messages() {
			got++
			p.mu.Lock()
			p.outstanding--
			p.mu.Unlock()
			if ctx.Err() != nil {
				p.c.nak(msg, p.c.cfg.FetchWait+time.Second, "shutdown")
				continue
			}
			arrive(msg)
		}
		err := batch.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
		p.mu.Lock()
		p.outstanding -= n - got
		p.running--
		if err != nil && p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
		if err == nil {
			p.c.failingSince.Store(0)
		}
		p.slots.notify()
	})
	return nil
}

// takeErr returns and clears the first failure of a pull since the last
// call.
func (p *pulls) takeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.err
	p.err = nil
	return err
}

// wait waits for the pulls in progress to end (each within FetchWait).
func (p *pulls) wait() { p.wg.Wait() }
