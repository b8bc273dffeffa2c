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
)

// Stream names and subjects of the contract.
const (
	EventStream      = "INGEST_EVENTS"
	EventSubjects    = ingest.EventSubjectPrefix + ">"
	CommandStream    = "INGEST_COMMANDS"
	CommandSubjects  = ingest.CommandSubjectPrefix + ">"
	ceSpecVersion    = "1.0"
	ceTypePrefix     = "campaign.ingestion."
	contentTypeJSON  = "application/json"
	headerCEPrefix   = "ce-"
	defaultEventsAge = 7 * 24 * time.Hour
)

// CloudEvents binary-mode header names.
const (
	HeaderSpecVersion = headerCEPrefix + "specversion"
	HeaderID          = headerCEPrefix + "id"
	HeaderSource      = headerCEPrefix + "source"
	HeaderType        = headerCEPrefix + "type"
	HeaderSubject     = headerCEPrefix + "subject"
	HeaderTime        = headerCEPrefix + "time"
	HeaderContentType = "Content-Type"
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
		return nil, fmt.Errorf("publish %s event of %q: %w", ev.Type, ev.CommandID, err)
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
		return nil, fmt.Errorf("publish %s event of %q: %w", ev.Type, ev.CommandID, err)
	}
	return ack, nil
}

// EventMsg builds the NATS message of ev.
func EventMsg(ev ingest.Event) (*nats.Msg, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	h := msg.Header
	id := ev.MsgID()
	h.Set(jetstream.MsgIDHeader, id)
	h.Set(HeaderSpecVersion, ceSpecVersion)
	h.Set(HeaderID, id)
	h.Set(HeaderSource, ev.Source())
	h.Set(HeaderType, ceTypePrefix+string(ev.Type))
	h.Set(HeaderSubject, ev.CommandID)
	t := time.Time(ev.FinishedAt)
	if t.IsZero() {
		t = time.Time(ev.TriggeredAt)
	}
	if t.IsZero() {
		t = time.Now()
	}
	h.Set(HeaderTime, t.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderContentType, contentTypeJSON)
	if ev.Trace.Parent != "" {
		h.Set(ingest.HeaderTraceParent, ev.Trace.Parent)
		if ev.Trace.State != "" {
			h.Set(ingest.HeaderTraceState, ev.Trace.State)
		}
	}
	return msg, nil
}

// EventStreamConfig is the events stream: limits retention, file storage,
// maxAge (default 7 days), a one-hour duplicate window.
func EventStreamConfig(maxAge time.Duration, replicas int) jetstream.StreamConfig {
	if maxAge <= 0 {
		maxAge = defaultEventsAge
	}
	return jetstream.StreamConfig{
		Name:        EventStream,
		Description: "Outcome events of Campaign ingestion commands",
		Subjects:    []string{EventSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      maxAge,
		Duplicates:  time.Hour,
		Replicas:    max(replicas, 1),
	}
}

// CommandStreamConfig is the commands stream: a work queue on file storage
// with a one-hour duplicate window.
func CommandStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        CommandStream,
		Description: "Campaign ingestion commands",
		Subjects:    []string{CommandSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  time.Hour,
		Replicas:    max(replicas, 1),
	}
}
