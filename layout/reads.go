package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// Defaults of batched record reads.
const (
	// DefaultReadBatch is the most records one batched read asks for.
	DefaultReadBatch = 256
	// DefaultReadTimeout bounds one batched read: a batch whose answer does
	// not come in time fails its reads, and the next batch goes out.
	DefaultReadTimeout = 5 * time.Second
	// probeTimeout bounds the first batched read, which decides whether
	// reads are batched at all.
	probeTimeout = 2 * time.Second
)

// ErrReadsClosed is returned by the reads of a batch that was on its way
// when the Store stopped batching.
var ErrReadsClosed = errors.New("batched record reads stopped")

// batchReads reads job records in batches, like a group commit: a read
// asked for while no batch is on its way goes out at once, alone; the
// reads asked for while one is on its way go out together when its answer
// has come, as one direct get of the last message of each of their keys
// (multi_last). Under load, the records of a whole pull of commands cost
// one request and one answer instead of one of each per command; when
// idle, a read waits for nothing. One batch is on its way at a time.
type batchReads struct {
	nc      *nats.Conn
	api     string // the bucket stream's direct get subject
	prefix  string // the subject prefix of the bucket's keys
	inbox   string // answers come to inbox.<batch number>
	sub     *nats.Subscription
	max     int
	timeout time.Duration

	mu     sync.Mutex
	queue  []*recordRead
	flight *readBatch // nil when no batch is on its way
	seq    uint64
	closed bool
}

// recordRead is one record asked for.
type recordRead struct {
	subject string
	done    chan struct{}
	// then, when set, is called once done is closed.
	then func()
	// Set before done is closed.
	rec *ingest.Record
	err error
}

// readBatch is a batch on its way.
type readBatch struct {
	reply string
	reads []*recordRead
	found map[string]found // by subject
	timer *time.Timer
}

// found is a record of an answer, or why it could not be decoded.
type found struct {
	rec *ingest.Record
	err error
}

// multiLastRequest is the direct get request of the last message of each
// of several subjects (nats-server 2.11 and later).
type multiLastRequest struct {
	MultiLast []string `json:"multi_last"`
}

// StartBatchedReads makes Load read records in batches (see batchReads)
// from now on, until StopBatchedReads. It first asks for a record no
// command can have: when the server does not answer within 2 s (the
// bucket does not allow direct gets, the server is older than 2.11, or the
// connection may not publish to $JS.API.DIRECT.GET.<bucket stream>), Load
// keeps reading one record per request and the error says why. Zero max
// and timeout mean DefaultReadBatch and DefaultReadTimeout.
func (s *Store) StartBatchedReads(ctx context.Context, max int, timeout time.Duration) error {
	if max <= 0 {
		max = DefaultReadBatch
	}
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	if s.js == nil {
		return errors.New("batched record reads: the store has no JetStream connection")
	}
	nc := s.js.Conn()
	stream := s.bucketStream()
	r := &batchReads{
		nc: nc, api: "$JS.API.DIRECT.GET." + stream, prefix: s.keyPrefix(),
		inbox: nc.NewInbox(), max: max, timeout: timeout,
	}
	sub, err := nc.Subscribe(r.inbox+".*", r.answer)
	if err != nil {
		return fmt.Errorf("batched record reads: %w", err)
	}
	r.sub = sub
	// "_" is no organization: no record has this key.
	pctx, cancel := context.WithTimeout(ctx, min(timeout, probeTimeout))
	defer cancel()
	if _, err := r.load(pctx, r.prefix+"_.probe"); err != nil {
		r.close()
		return fmt.Errorf("batched record reads: no answer to a direct get of stream %s (%w); records are read one per request", stream, err)
	}
	s.reads.Store(r)
	return nil
}

// StopBatchedReads makes Load read one record per request again; a batch
// on its way fails its reads with ErrReadsClosed.
func (s *Store) StopBatchedReads() {
	if r := s.reads.Swap(nil); r != nil {
		r.close()
	}
}

// load reads the record behind subject with the next batch.
func (r *batchReads) load(ctx context.Context, subject string) (*ingest.Record, error) {
	rd := &recordRead{subject: subject, done: make(chan struct{})}
	if !r.enqueue(rd) {
		return nil, ErrReadsClosed
	}
	return rd.wait(ctx)
}

// finish hands rd its answer, set before.
func (rd *recordRead) finish() {
	close(rd.done)
	if rd.then != nil {
		rd.then()
	}
}

// wait waits for rd's answer. An answer already there (a read sent on the
// command's arrival) is taken without touching ctx.
func (rd *recordRead) wait(ctx context.Context) (*ingest.Record, error) {
	select {
	case <-rd.done:
		return rd.rec, rd.err
	default:
	}
	select {
	case <-rd.done:
		return rd.rec, rd.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefetch is a record read sent before the command's job starts
// (Store.Prefetch).
type Prefetch struct {
	rd      *recordRead
	org, id string
	asked   time.Time
}

// Prefetch sends the read of the record of command id in org with the next
// batch and returns at once; then is called with the read once it is
// answered or failed, on the goroutine that got the answer (it must not
// block), possibly before Prefetch returns. It reports false, and never
// calls then, when reads are not batched.
func (s *Store) Prefetch(org, commandID string, then func(*Prefetch)) bool {
	r := s.reads.Load()
	if r == nil || !ingest.ValidOrganization(org) {
		return false
	}
	p := &Prefetch{org: org, id: commandID, asked: time.Now()}
	p.rd = &recordRead{subject: r.prefix + RecordKey(org, commandID), done: make(chan struct{}), then: func() { then(p) }}
	return r.enqueue(p.rd)
}

// Load returns the record of command id in org as the prefetched read
// answered it, when that read is of this record, was sent at most maxAge
// ago and did not fail; else it is s.Load, a read of its own. A nil p is
// s.Load.
func (p *Prefetch) Load(ctx context.Context, s *Store, org, commandID string, maxAge time.Duration) (*ingest.Record, error) {
	if p != nil && p.org == org && p.id == commandID && time.Since(p.asked) <= maxAge {
		if rec, err := p.rd.wait(ctx); err == nil {
			return rec, nil
		}
	}
	return s.Load(ctx, org, commandID)
}

// enqueue queues rd, sending it at once when no batch is on its way. It
// reports false when the reads are closed.
func (r *batchReads) enqueue(rd *recordRead) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	r.queue = append(r.queue, rd)
	var b *readBatch
	if r.flight == nil {
		b = r.takeLocked()
	}
	r.mu.Unlock()
	if b != nil {
		r.send(b)
	}
	return true
}

// takeLocked makes the next batch of the queue the one on its way. The
// lock is held.
func (r *batchReads) takeLocked() *readBatch {
	n := min(len(r.queue), r.max)
	r.seq++
	b := &readBatch{reply: r.inbox + "." + strconv.FormatUint(r.seq, 10), reads: r.queue[:n:n]}
	r.queue = r.queue[n:]
	if len(r.queue) == 0 {
		r.queue = nil
	}
	r.flight = b
	return b
}

// send sends b; its answer, a failure or the timeout completes it.
func (r *batchReads) send(b *readBatch) {
	req := multiLastRequest{MultiLast: make([]string, len(b.reads))}
	for i, rd := range b.reads {
		req.MultiLast[i] = rd.subject
	}
	body, err := json.Marshal(req)
	if err != nil {
		r.complete(b, err)
		return
	}
	// Set under the lock: the answer may come before AfterFunc returns.
	r.mu.Lock()
	b.timer = time.AfterFunc(r.timeout, func() {
		r.complete(b, fmt.Errorf("no answer to a batched record read within %s", r.timeout))
	})
	r.mu.Unlock()
	if err := r.nc.PublishRequest(r.api, b.reply, body); err != nil {
		r.complete(b, err)
	}
}

// answer takes one message of the answer to the batch on its way: a
// record, or the end of the answer (status 204 EOB, or 404 when none of
// the keys has a record), or an error status.
func (r *batchReads) answer(m *nats.Msg) {
	r.mu.Lock()
	b := r.flight
	if b == nil || m.Subject != b.reply {
		r.mu.Unlock() // the late answer of a batch that timed out
		return
	}
	r.mu.Unlock()
	status := m.Header.Get("Status")
	switch status {
	case "":
		subject := m.Header.Get(jetstream.SubjectHeader)
		if deleted(m.Header) {
			return
		}
		rec, err := DecodeRecord(m.Data)
		if err != nil {
			err = fmt.Errorf("job %q: %w", strings.TrimPrefix(subject, r.prefix), err)
		}
		r.mu.Lock()
		if r.flight == b {
			if b.found == nil {
				b.found = make(map[string]found)
			}
			b.found[subject] = found{rec, err}
		}
		r.mu.Unlock()
	case "204":
		if pending := m.Header.Get(numPendingHeader); pending != "" && pending != "0" {
			r.complete(b, fmt.Errorf("batched record read cut short with %s records pending", pending))
			return
		}
		r.complete(b, nil)
	case "404":
		r.complete(b, nil)
	default:
		r.complete(b, fmt.Errorf("batched record read: status %s %s", status, m.Header.Get("Description")))
	}
}

// numPendingHeader counts, in the end of an answer, the records matched but
// not sent (the answer reached the server's size limit).
const numPendingHeader = "Nats-Num-Pending"

// deleted reports whether a bucket message is a delete or purge marker.
func deleted(h nats.Header) bool {
	return h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != ""
}

// complete ends b, if it is still the batch on its way: each read gets its
// record (nil when none), or err. Then the next batch goes out.
func (r *batchReads) complete(b *readBatch, err error) {
	r.mu.Lock()
	if r.flight != b {
		r.mu.Unlock()
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	r.flight = nil
	var next *readBatch
	if len(r.queue) > 0 && !r.closed {
		next = r.takeLocked()
	}
	r.mu.Unlock()
	for _, rd := range b.reads {
		if err != nil {
			rd.err = err
		} else {
			f := b.found[rd.subject]
			rd.rec, rd.err = f.rec, f.err
		}
		rd.finish()
	}
	if next != nil {
		r.send(next)
	}
}

// close fails the batch on its way and the queued reads, and unsubscribes.
func (r *batchReads) close() {
	r.mu.Lock()
	r.closed = true
	b, queued := r.flight, r.queue
	r.queue = nil
	r.mu.Unlock()
	if b != nil {
		r.complete(b, ErrReadsClosed)
	}
	for _, rd := range queued {
		rd.err = ErrReadsClosed
		rd.finish()
	}
	_ = r.sub.Unsubscribe()
}
