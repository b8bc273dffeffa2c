package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// progress is one status line on a terminal, redrawn in place: how long the
// wait has lasted and where the job stands. When off it draws nothing and
// only serializes output.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	now   func() time.Time
	start time.Time
	label string
	state string
	drawn bool
}

func newProgress(w io.Writer, on bool, now func() time.Time, label string) *progress {
	return &progress{w: w, on: on, now: now, start: now(), label: label, state: "published"}
}

// set records the job's state and redraws.
func (p *progress) set(state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if state != "" {
		p.state = state
	}
	p.draw()
}

// around clears the line, runs print, and draws the line again, so that
// output on the same terminal never mixes with it.
func (p *progress) around(print func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	print()
	p.draw()
}

// done erases the line for good.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	p.on = false
}

func (p *progress) draw() {
	if !p.on {
		return
	}
	elapsed := p.now().Sub(p.start)
	fmt.Fprintf(p.w, "\r\x1b[Kwaiting %s  %s: %s", age(elapsed), p.label, p.state)
	p.drawn = true
}

func (p *progress) erase() {
	if p.on && p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// run redraws every interval until ctx ends, asking state (when not nil)
// for the job's current state first. It returns when ctx ends.
func (p *progress) run(ctx context.Context, every time.Duration, state func(context.Context) string) {
	if !p.on {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s := ""
		if state != nil {
			s = state(ctx)
		}
		p.set(s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
