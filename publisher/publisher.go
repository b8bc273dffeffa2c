// Package publisher tells the world: it publishes events (with CloudEvents
// binary-mode headers and stable Nats-Msg-Ids) and, for upstream Go code and
// ingestctl, commands.
package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

const (
	ceSpecVersion   = "1.0"
	ceTypePrefix    = "campaign.ingestion."
	contentTypeJSON = "application/json"
	// maxHeaderValue bounds a header value copied from a command.
	maxHeaderValue = 512
	// maxEventHeaders is the number of headers an event can have.
	maxEventHeaders = 11
)

// Publisher publishes events to JetStream.
type Publisher struct {
	js jetstream.JetStream
}

// New returns a Publisher.
func New(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish publishes ev and waits for JetStream's acknowledgement. A publish
// that the stream drops as a duplicate (same Nats-Msg-Id within the
// duplicate window) is a success; the acknowledgement's Duplicate tells it.
func (p *Publisher) Publish(ctx context.Context, ev ingest.Event) (*jetstream.PubAck, error) {
	msg, err := EventMsg(ev)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s event of %s/%q: %w", ev.Type, ev.Organization, ev.CommandID, err)
	}
	return ack, nil
}

// PublishAsync starts publishing ev and returns at once; the future tells
// JetStream's acknowledgement (a duplicate dropped by the stream is an
// acknowledgement too).
func (p *Publisher) PublishAsync(ev ingest.Event) (jetstream.PubAckFuture, error) {
	msg, err := EventMsg(ev)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s event of %s/%q: %w", ev.Type, ev.Organization, ev.CommandID, err)
	}
	return ack, nil
}

// EventMsg builds the NATS message of ev: its subject, its JSON body, its
// Nats-Msg-Id and CloudEvents binary-mode headers, and the command's trace
// context. Every header value is bounded (the fields an event carries from
// a command are bounded by ingest; this is the last line).
func EventMsg(ev ingest.Event) (*nats.Msg, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	// Sized for every header below: a map grown from empty would be
	// copied on the way.
	h := make(nats.Header, maxEventHeaders)
	msg := &nats.Msg{Subject: layout.EventSubject(ev), Header: h, Data: body}
	id := ingest.Bounded(layout.EventMsgID(ev), maxHeaderValue)
	h[layout.HeaderMsgID] = []string{id}
	h[layout.HeaderSpecVersion] = []string{ceSpecVersion}
	h[layout.HeaderID] = []string{id}
	h[layout.HeaderSource] = []string{Source(ev)}
	h[layout.HeaderType] = []string{ceTypePrefix + string(ev.Type)}
	h[layout.HeaderSubject] = []string{ingest.Bounded(ev.CommandID, maxHeaderValue)}
	t := time.Time(ev.FinishedAt)
	if t.IsZero() {
		t = time.Time(ev.TriggeredAt)
	}
	if t.IsZero() {
		t = time.Now()
	}
	h[layout.HeaderTime] = []string{t.UTC().Format(time.RFC3339Nano)}
	h[layout.HeaderContentType] = []string{contentTypeJSON}
	h[layout.HeaderContentTypeMIME] = []string{contentTypeJSON}
	setTrace(h, ev.Trace)
	return msg, nil
}

// Source is an event's CloudEvents source,
// /campaign/<organization>/mappings/<mappingId>; a token that is not valid
// is written as "_".
func Source(ev ingest.Event) string {
	org, mapping := layout.EventTokens(ev)
	return "/campaign/" + org + "/mappings/" + mapping
}

// setTrace copies a trace context (valid by construction: see
// ingest.ParseTrace) into h.
func setTrace(h nats.Header, tr ingest.Trace) {
	if tr.Parent == "" {
		return
	}
	h[layout.HeaderTraceParent] = []string{ingest.Bounded(tr.Parent, maxHeaderValue)}
	if tr.State != "" {
		h[layout.HeaderTraceState] = []string{ingest.Bounded(tr.State, maxHeaderValue)}
	}
}
