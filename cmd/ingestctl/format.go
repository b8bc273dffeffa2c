package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/ingest"
)

// received is an event as read from INGEST_EVENTS.
type received struct {
	ingest.Event
	subject string
	seq     uint64
	stored  time.Time // when the stream stored it
	raw     []byte    // the body as published
}

// errNotEvent is wrapped by decodeEvent for a message that is not an event.
var errNotEvent = errors.New("not a JSON event")

// nextEvent reads the next event from r, blocking until ctx ends.
func nextEvent(ctx context.Context, r *reader) (received, error) {
	m, err := r.next(ctx)
	if err != nil {
		return received{}, err
	}
	return decodeEvent(m)
}

// decodeEvent reads an event message.
func decodeEvent(m *nats.Msg) (received, error) {
	r := received{subject: m.Subject, raw: m.Data}
	if md, err := m.Metadata(); err == nil {
		r.seq, r.stored = md.Sequence.Stream, md.Timestamp
	}
	if err := json.Unmarshal(r.raw, &r.Event); err != nil {
		return r, fmt.Errorf("message %d on %s: %w: %v", r.seq, r.subject, errNotEvent, err)
	}
	return r, nil
}

// when is the event's own time: finishedAt, else triggeredAt, else when the
// stream stored it.
func (r received) when() time.Time {
	for _, t := range []ingest.Time{r.FinishedAt, r.TriggeredAt} {
		if !t.IsZero() {
			return time.Time(t)
		}
	}
	return r.stored
}

// line is the event as one readable line: time, type, org/mapping, then
// the fields that are set.
//
//	2026-12-01T02:01:05.120Z succeeded acme/XDM44 command=etl-1 request=3520 status=Success records=15
func (r received) line() string {
	var b strings.Builder
	b.WriteString(r.when().UTC().Format("2006-01-02T15:04:05.000Z"))
	fmt.Fprintf(&b, " %-9s %s/%s command=%s", r.Type, orDash(r.Organization), orDash(r.MappingID), quote(r.CommandID))
	kv := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + "=" + quote(v))
		}
	}
	kv("request", r.RequestID)
	kv("status", r.Status)
	if r.Type == ingest.EventSucceeded {
		kv("records", strconv.FormatInt(r.NumRecords, 10))
	}
	kv("reason", string(r.Reason))
	kv("error", r.ErrorCode)
	kv("batch", r.BatchID)
	if r.Attempt > 1 {
		kv("attempt", strconv.Itoa(r.Attempt))
	}
	kv("detail", r.Detail)
	return b.String()
}

// jsonLine is the event body as published with "subject" added first.
func (r received) jsonLine() ([]byte, error) {
	var body bytes.Buffer
	if err := json.Compact(&body, r.raw); err != nil || body.Len() < 2 || body.Bytes()[0] != '{' {
		return nil, fmt.Errorf("event %d on %s is not a JSON object", r.seq, r.subject)
	}
	subj, _ := json.Marshal(r.subject)
	var out bytes.Buffer
	out.WriteString(`{"subject":`)
	out.Write(subj)
	if rest := body.Bytes()[1:]; rest[0] != '}' {
		out.WriteByte(',')
		out.Write(rest)
	} else {
		out.WriteByte('}')
	}
	return out.Bytes(), nil
}

// quote quotes s when it is empty or holds spaces, quotes or controls.
func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '=' || r == 0x7f }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age formats a duration for humans, to the second ("1h02m", "45s").
func age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
