package natsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/natsembed"
)

// loopbackPair is a coalescing connection to a loopback listener and the
// listener's side of it.
func loopbackPair(t *testing.T, writeTimeout time.Duration) (*coalescingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d := &coalescingDialer{dial: net.Dialer{Timeout: time.Second}, writeTimeout: writeTimeout}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*coalescingConn), peer
}

// Writes from many goroutines arrive whole and, per goroutine, in order;
// Close sends what is still buffered.
func TestCoalescingConnKeepsEveryWrite(t *testing.T) {
	c, peer := loopbackPair(t, time.Second)
	const writers, each = 8, 2000
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(peer); got <- b }()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				line := []byte(strconv.Itoa(w) + " " + strconv.Itoa(i) + "\n")
				if n, err := c.Write(line); err != nil || n != len(line) {
					t.Errorf("write: %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	lines := bytes.Split(bytes.TrimSuffix(<-got, []byte("\n")), []byte("\n"))
	for _, l := range lines {
		f := bytes.Fields(l)
		w, _ := strconv.Atoi(string(f[0]))
		i, _ := strconv.Atoi(string(f[1]))
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != each {
			t.Errorf("writer %d: %d lines arrived, want %d", w, n, each)
		}
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, errConnClosed) {
		t.Errorf("write after close: %v, want errConnClosed", err)
	}
}

// A peer that stops reading: Writes wait once maxCoalesced bytes are
// buffered, the socket write times out, and then every Write fails and
// the socket is closed (reads end), so that nats.go reconnects.
func TestCoalescingConnStalledPeer(t *testing.T) {
	c, _ := loopbackPair(t, 200*time.Millisecond)
	chunk := make([]byte, 64<<10)
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(chunk)
	}
	if err == nil {
		t.Fatal("writes to a peer that reads nothing never failed")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("write error %v, want the socket's timeout", err)
	}
	c.mu.Lock()
	buffered := len(c.buf)
	c.mu.Unlock()
	if buffered > maxCoalesced {
		t.Errorf("%d bytes buffered, bound %d", buffered, maxCoalesced)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("a write after the failure passed")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the socket stayed open after the failed write")
	}
}

// nats.go over coalescing connections: request/reply, JetStream publishes
// and a pull, and a Drain that must send the last acks before closing.
func TestCoalescedNATS(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	opts, err := Config{CoalesceWrites: true}.Options(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := nc.Opts.CustomDialer.(*coalescingDialer); !ok {
		t.Fatalf("dialer %T, want the coalescing one", nc.Opts.CustomDialer)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	var futures []jetstream.PubAckFuture
	for i := range n {
		f, err := js.PublishAsync("t."+strconv.Itoa(i), []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatal("no publish acknowledgement")
		}
	}
	cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d of %d", got, n)
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		t.Fatal(err)
	}
	<-closed

	// The acks reached the server before the connection closed.
	check, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	cjs, _ := jetstream.New(check)
	s, err := cjs.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.CachedInfo().State.Msgs != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if _, err := s.Info(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if left := s.CachedInfo().State.Msgs; left != 0 {
		t.Errorf("%d messages left in the work queue: acks sent before the drain were lost", left)
	}
}
