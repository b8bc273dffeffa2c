package natsconn

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"time"
)

// Bounds of a coalescingConn.
const (
	// maxCoalesced is the most bytes a coalescingConn holds before a Write
	// waits for the sender: nats.go's own buffer is 32 KiB, so this is
	// reached only when the socket cannot take what the client makes.
	maxCoalesced = 1 << 20
	// keptBuffer is the largest buffer kept for reuse after a send.
	keptBuffer = 64 << 10
	// closeGrace bounds how long Close waits for what is buffered to be
	// sent before it closes the socket anyway.
	closeGrace = 2 * time.Second
)

// errConnClosed is a Write after Close.
var errConnClosed = errors.New("natsconn: write on a closed connection")

// coalescingDialer dials TCP connections whose writes are coalesced
// (coalescingConn), with nats.go's dial timeout.
type coalescingDialer struct {
	dial         net.Dialer
	writeTimeout time.Duration
}

// Dial implements nats.CustomDialer.
func (d *coalescingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.dial.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c, d.writeTimeout), nil
}

// coalescingConn is a connection whose writes are gathered and sent by a
// goroutine of its own, several at a time. nats.go writes to the socket
// each time its flusher wakes, and under load it wakes for nearly every
// publish: a busy worker's events, acks and pull requests would leave in
// nearly as many system calls, and the server would read, parse and store
// them one by one. Here Write copies into a buffer and returns; the sender
// yields once (runtime.Gosched) before it takes the buffer, so that the
// goroutines already waiting to run add what they are about to write. Idle,
// a write leaves at once; busy, the writes of one scheduling round leave
// together. Order is kept: one sender, one buffer.
//
// A Write waits only while maxCoalesced bytes are buffered. The sender
// bounds each socket write by writeTimeout (0: none); a failed write fails
// every later Write and closes the socket, so that nats.go's read loop
// sees the failure and reconnects. Read and the read deadline are the
// socket's; write deadlines set by nats.go are ignored (no Write waits on
// the network). Close sends what is buffered (at most closeGrace), then
// closes the socket.
type coalescingConn struct {
	net.Conn
	writeTimeout time.Duration

	mu      sync.Mutex
	drained *sync.Cond // signalled after each send and when the sender stops
	buf     []byte
	spare   []byte
	err     error // the first failed write, or errConnClosed
	closing bool
	// wake is signalled when buf gets its first bytes or Close is called;
	// stopped is closed when the sender has returned.
	wake    chan struct{}
	stopped chan struct{}
}

func newCoalescingConn(c net.Conn, writeTimeout time.Duration) *coalescingConn {
	cc := &coalescingConn{Conn: c, writeTimeout: writeTimeout, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	cc.drained = sync.NewCond(&cc.mu)
	go cc.send()
	return cc
}

// Write buffers p for the sender. It reports the sender's first failure.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closing && len(c.buf) > 0 && len(c.buf)+len(p) > maxCoalesced {
		c.drained.Wait()
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closing:
		c.mu.Unlock()
		return 0, errConnClosed
	}
	first := len(c.buf) == 0
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	if first {
		c.signal()
	}
	return len(p), nil
}

func (c *coalescingConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// send is the sender: one socket write per wake, of everything buffered.
func (c *coalescingConn) send() {
	defer close(c.stopped)
	for range c.wake {
		runtime.Gosched() // let the runnable goroutines add their writes
		c.mu.Lock()
		b, closing := c.buf, c.closing
		c.buf, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		var err error
		if len(b) > 0 {
			if c.writeTimeout > 0 {
				_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
			}
			_, err = c.Conn.Write(b)
		}
		c.mu.Lock()
		if cap(b) <= keptBuffer {
			c.spare = b[:0]
		}
		if err != nil && c.err == nil {
			c.err = err
		}
		// Bytes written after the buffer was taken wake the sender
		// again (their Write found it empty).
		done := c.err != nil || (closing && len(c.buf) == 0)
		c.drained.Broadcast()
		c.mu.Unlock()
		if err != nil {
			_ = c.Conn.Close() // the read loop sees it and reconnects
		}
		if done {
			return
		}
	}
}

// Close sends what is buffered, waiting at most closeGrace, then closes
// the socket. Writes after Close fail.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.drained.Broadcast()
	c.mu.Unlock()
	if !already {
		c.signal()
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.stopped:
	case <-t.C:
	}
	return c.Conn.Close()
}

// SetDeadline sets the read deadline; writes are bounded by the sender's
// own timeout.
func (c *coalescingConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline does nothing: Write never waits on the network.
func (c *coalescingConn) SetWriteDeadline(time.Time) error { return nil }
