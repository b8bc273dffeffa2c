package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/natsconn"
)

// workerHint says how to get what the worker creates.
const workerHint = "is the worker running? start it with INGEST_SIMULATE=true go run ./cmd/ingest-worker"

// orgHint explains a denial to a command run without --org.
const orgHint = "a user restricted to one organization must give --org"

// session is a connection to NATS and JetStream for one command.
//
// It watches for permission violations: the server reports them
// asynchronously and a request on a denied subject would only time out.
// The first violation ends ctx, with the violation as its cause, so the
// command stops at once and reports it (session.explain); violations of
// subjects the command can do without (tolerate) end only their request.
type session struct {
	nc *nats.Conn
	// js publishes; legacy reads with ordered push consumers, which need
	// no permission beyond creating a consumer with the reader's filter.
	js     jetstream.JetStream
	legacy nats.JetStreamContext
	url    string
	// timeout bounds a JetStream API request.
	timeout time.Duration
	// inboxPrefix is the configured reply prefix ("" for _INBOX).
	inboxPrefix string

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu sync.Mutex
	// denial is the first violation not tolerated.
	denial *deniedError
	// hint is added to the denial's message.
	hint string
	// tolerated are the subjects whose denial ends only the requests
	// waiting on them, by id.
	tolerated map[string]map[uint64]context.CancelCauseFunc
	lastID    uint64
}

// connect connects with the flags' configuration. The session's context
// is ctx, ended early by a permission violation. timeout bounds JetStream
// API requests (default 5s when 0).
func (a *app) connect(ctx context.Context, f *connFlags) (*session, error) {
	cfg, err := resolveConfig(a.getenv, *f)
	if err != nil {
		return nil, err
	}
	s := &session{timeout: a.apiTimeout, inboxPrefix: cfg.InboxPrefix, tolerated: map[string]map[uint64]context.CancelCauseFunc{}}
	if s.timeout <= 0 {
		s.timeout = 5 * time.Second
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	nc, err := natsconn.Connect(cfg, "", nil, nats.ErrorHandler(s.onAsyncError))
	if err != nil {
		s.cancel(nil)
		if errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("%w (%s, or set --server / NATS_URL / INGEST_NATS_URL)", err, workerHint)
		}
		return nil, err
	}
	if err := s.start(nc); err != nil {
		nc.Close()
		s.cancel(nil)
		return nil, err
	}
	a.sess = s
	return s, nil
}

func (s *session) start(nc *nats.Conn) error {
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(s.timeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	legacy, err := nc.JetStream(nats.MaxWait(s.timeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.nc, s.js, s.legacy, s.url = nc, js, legacy, nc.ConnectedUrlRedacted()
	return nil
}

// close closes the connection; the server removes the session's ephemeral
// consumers when their interest goes.
func (s *session) close() {
	s.nc.Close()
	s.cancel(nil)
}

// onAsyncError is the connection's asynchronous error handler.
func (s *session) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	d, ok := parseViolation(err)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if waiters, ok := s.tolerated[d.subject]; ok {
		for _, cancel := range waiters {
			cancel(d)
		}
		return
	}
	if strings.HasPrefix(d.subject, consumerDelete) {
		// An ordered consumer that restarts deletes its old consumer;
		// without the permission the server removes it when inactive.
		return
	}
	if s.denial == nil {
		s.denial = d
	}
	s.cancel(d)
}

// tolerate returns a context derived from ctx that also ends, with the
// *deniedError as its cause, when NATS denies subject; such a denial does
// not end the session. Call done when the request is over.
func (s *session) tolerate(ctx context.Context, subject string) (tctx context.Context, done func()) {
	tctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	if s.tolerated[subject] == nil {
		s.tolerated[subject] = map[uint64]context.CancelCauseFunc{}
	}
	s.lastID++
	id := s.lastID
	s.tolerated[subject][id] = cancel
	s.mu.Unlock()
	return tctx, func() {
		s.mu.Lock()
		// The subject stays tolerated: a late denial is still not fatal.
		delete(s.tolerated[subject], id)
		s.mu.Unlock()
		cancel(nil)
	}
}

// setHint adds hint to the message of a denial.
func (s *session) setHint(hint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hint = hint
}

// denied returns the permission violation that ended the session, if any.
func (s *session) denied() *deniedError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denial == nil {
		return nil
	}
	d := *s.denial
	if d.hint == "" {
		d.hint = s.hint
	}
	if d.op == "subscribe to" && d.hint == "" && s.isInbox(d.subject) {
		d.hint = "the user may subscribe only to its own inbox: set --inbox-prefix to it, such as _INBOX_<org>"
	}
	return &d
}

// isInbox reports whether subject is one of the connection's replies.
func (s *session) isInbox(subject string) bool {
	prefix := s.inboxPrefix
	if prefix == "" {
		prefix = nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return strings.HasPrefix(subject, prefix+".")
}

// explain replaces err, when the session ended on a permission violation,
// by that violation with its exit code.
func (s *session) explain(err error) error {
	if err == nil || errors.Is(err, errHelp) {
		return err
	}
	if d := s.denied(); d != nil {
		return withCode(exitDenied, d)
	}
	return err
}
