package layout_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// Bounds an event must keep whatever its command held.
const (
	maxHeaderValue = 512
	maxHeaderBlock = 8 << 10
	maxRecordKey   = 1 << 10
	// maxEventSubject: the prefix, an organization of 63 bytes, a mapping
	// of 128 and the longest type.
	maxEventSubject = len(layout.EventPrefix) + 63 + 1 + 128 + 1 + len("timed_out")
)

var (
	kvKeyRE     = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
	eventTypeRE = regexp.MustCompile(`^(triggered|succeeded|failed|aborted|rejected|timed_out)$`)
)

// FuzzCommandPath follows a command from what arrives on the wire to what
// leaves the worker, for any subject, Nats-Msg-Id, traceparent,
// tracestate, body and stream sequence: layout.Envelope, then
// ingest.ParseCommand, then
//
//   - rejected: ingest.Rejected and publisher.EventMsg. The event lands on
//     a valid event subject of the command's own organization (or "_"),
//     every header value is bounded (at most 512 bytes, no CR, LF or NUL),
//     the header block is small, and the body is JSON naming the command;
//   - accepted: the record key is a valid KV key that starts with the
//     organization and names the id unambiguously, and the succeeded
//     event lands on ingest.events.<org>.<mapping>.succeeded of the
//     subject's organization and mapping, within the same bounds.
//
// Seeds: below (the 30 KB ones) and testdata/fuzz/FuzzCommandPath.
func FuzzCommandPath(f *testing.F) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	big := strings.Repeat("x", 30<<10)
	seeds := []struct {
		subject, msgID, parent, state, body string
	}{
		{"ingest.commands.acme.XDM44", "", "", "", ""},
		{"ingest.commands.acme.XDM44", "acme:shared-1", tp, "k=v", `{"id":"shared-1"}`},
		{"ingest.commands.acme.XDM44", "", "", "", `{"id":"` + big + `"}`},
		{"ingest.commands.acme.XDM44", big, "", "", ""},
		{"ingest.commands.acme.XDM44", "", "", "", `{"correlationId":"` + big + `"}`},
		{"ingest.commands.acme.XDM44", "", big, big, ""},
		{"ingest.commands.acme.XDM44", "", tp, big, ""},
		{"ingest.commands." + strings.Repeat("a", 255) + ".XDM44", "", "", "", ""},
	}
	for i, s := range seeds {
		f.Add(s.subject, s.msgID, s.parent, s.state, []byte(s.body), uint64(i+1))
	}
	f.Fuzz(func(t *testing.T, subject, msgID, parent, state string, body []byte, seq uint64) {
		headers := map[string]string{
			layout.HeaderMsgID:       msgID,
			layout.HeaderTraceParent: parent,
			layout.HeaderTraceState:  state,
		}
		env := layout.Envelope(subject, func(k string) string { return headers[k] }, layout.CommandStream, seq)
		cmd, err := ingest.ParseCommand(env, body)
		subjOrg, subjMapping := subjectTokens(subject)
		if err != nil {
			var rej *ingest.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("ParseCommand error %v (%T) is not a *RejectError", err, err)
			}
			ev := ingest.Rejected(cmd, rej, time.Unix(1e9, 0))
			msg := eventMsg(t, ev)
			org, mapping := checkEventSubject(t, msg.Subject, ingest.EventRejected)
			if org != "_" && org != subjOrg {
				t.Fatalf("rejected event of a command on %q lands on %q: organization %q is not the command's", subject, msg.Subject, org)
			}
			if mapping != "_" && mapping != subjMapping {
				t.Fatalf("rejected event of a command on %q lands on %q: mapping %q is not the command's", subject, msg.Subject, mapping)
			}
			checkEvent(t, msg, ev, org, mapping)
			return
		}
		if cmd.Organization != subjOrg || cmd.MappingID != subjMapping || !ingest.ValidOrganization(subjOrg) || !ingest.ValidMappingID(subjMapping) {
			t.Fatalf("accepted %s/%s from subject %q", cmd.Organization, cmd.MappingID, subject)
		}
		checkRecordKey(t, cmd.Organization, cmd.ID)
		ev := ingest.NewEvent(ingest.EventSucceeded, cmd)
		ev.RequestID, ev.Status, ev.NumRecords, ev.Attempt, ev.Polls = "3520", "Success", 15, 1, 4
		ev.TriggeredAt, ev.FinishedAt = ingest.Time(time.Unix(1e9, 0)), ingest.Time(time.Unix(1e9+65, 0))
		msg := eventMsg(t, ev)
		if want := layout.EventPrefix + subjOrg + "." + subjMapping + ".succeeded"; msg.Subject != want {
			t.Fatalf("succeeded event of a command on %q lands on %q, want %q", subject, msg.Subject, want)
		}
		checkEventSubject(t, msg.Subject, ingest.EventSucceeded)
		checkEvent(t, msg, ev, subjOrg, subjMapping)
		if id := msg.Header.Get(layout.HeaderMsgID); !strings.HasPrefix(id, cmd.Organization+":") {
			t.Fatalf("event Nats-Msg-Id %q is not scoped by organization %q", id, cmd.Organization)
		}
		if got := msg.Header.Get(layout.HeaderTraceParent); got != cmd.Trace.Parent {
			t.Fatalf("event traceparent %q, want the command's %q", got, cmd.Trace.Parent)
		}
	})
}

// subjectTokens returns the organization and mapping tokens of a command
// subject, or "" for what it lacks, read independently of the layout.
func subjectTokens(subject string) (org, mapping string) {
	rest, ok := strings.CutPrefix(subject, layout.CommandPrefix)
	if !ok {
		return "", ""
	}
	org, mapping, _ = strings.Cut(rest, ".")
	return org, mapping
}

func eventMsg(t *testing.T, ev ingest.Event) *nats.Msg {
	t.Helper()
	msg, err := publisher.EventMsg(ev)
	if err != nil {
		t.Fatalf("EventMsg(%s of %q): %v", ev.Type, ev.CommandID, err)
	}
	return msg
}

// checkEventSubject checks that subject is ingest.events.<org>.<mapping>.<typ>
// with valid tokens or "_", and returns the organization and mapping tokens.
func checkEventSubject(t *testing.T, subject string, typ ingest.EventType) (org, mapping string) {
	t.Helper()
	if len(subject) > maxEventSubject {
		t.Fatalf("event subject of %d bytes", len(subject))
	}
	rest, ok := strings.CutPrefix(subject, layout.EventPrefix)
	toks := strings.Split(rest, ".")
	if !ok || len(toks) != 3 {
		t.Fatalf("event subject %q is not ingest.events.<org>.<mapping>.<type>", subject)
	}
	org, mapping = toks[0], toks[1]
	if org != "_" && !ingest.ValidOrganization(org) {
		t.Fatalf("event subject %q: organization token %q", subject, org)
	}
	if mapping != "_" && !ingest.ValidMappingID(mapping) {
		t.Fatalf("event subject %q: mapping token %q", subject, mapping)
	}
	if !eventTypeRE.MatchString(toks[2]) || toks[2] != string(typ) {
		t.Fatalf("event subject %q: type token %q, want %q", subject, toks[2], typ)
	}
	return org, mapping
}

// checkEvent checks msg's headers and body against ev and the tokens of
// its subject.
func checkEvent(t *testing.T, msg *nats.Msg, ev ingest.Event, org, mapping string) {
	t.Helper()
	block := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range msg.Header {
		if k == "" || strings.ContainsAny(k, ": \t\r\n\x00") {
			t.Fatalf("header name %q", k)
		}
		for _, v := range vs {
			if len(v) > maxHeaderValue {
				t.Fatalf("header %s is %d bytes, more than %d", k, len(v), maxHeaderValue)
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("header %s holds CR, LF or NUL: %q", k, v)
			}
			block += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	if block >= maxHeaderBlock {
		t.Fatalf("header block of %d bytes", block)
	}
	for _, k := range []string{layout.HeaderMsgID, layout.HeaderID, layout.HeaderSource, layout.HeaderType, layout.HeaderSubject, layout.HeaderTime, layout.HeaderSpecVersion} {
		if len(msg.Header.Values(k)) != 1 {
			t.Fatalf("header %s has %d values, want 1", k, len(msg.Header.Values(k)))
		}
	}
	if src, want := msg.Header.Get(layout.HeaderSource), "/campaign/"+org+"/mappings/"+mapping; src != want {
		t.Fatalf("ce-source %q, want %q (the subject's tokens)", src, want)
	}
	// An invalid organization is "_" in the subject; the event id may
	// scope by it further.
	if id := msg.Header.Get(layout.HeaderMsgID); org != "_" && !strings.HasPrefix(id, org+":") || !strings.HasPrefix(id, org) {
		t.Fatalf("Nats-Msg-Id %q is not scoped by the subject's organization %q", id, org)
	}
	if !json.Valid(msg.Data) {
		t.Fatalf("event body is not JSON: %q", msg.Data)
	}
	var got ingest.Event
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("event body does not decode: %v", err)
	}
	if got.Type != ev.Type || got.CommandID != ev.CommandID || got.Organization != ev.Organization || got.MappingID != ev.MappingID {
		t.Fatalf("event body names %s/%q/%q/%q, want %s/%q/%q/%q", got.Type, got.CommandID, got.Organization, got.MappingID,
			ev.Type, ev.CommandID, ev.Organization, ev.MappingID)
	}
	for name, v := range map[string]string{"commandId": got.CommandID, "correlationId": got.CorrelationID, "organization": got.Organization, "mappingId": got.MappingID} {
		if len(v) > 1024 {
			t.Fatalf("event %s is %d bytes", name, len(v))
		}
	}
	if got.CommandID == "" {
		t.Fatal("event without a command id")
	}
}

// checkRecordKey checks the KV key of an accepted command: a valid key
// within bounds, without empty tokens, that starts with the organization
// and from which the id can be read back (so that two ids never share it).
func checkRecordKey(t *testing.T, org, id string) {
	t.Helper()
	key := layout.RecordKey(org, id)
	switch {
	case len(key) > maxRecordKey:
		t.Fatalf("record key of %q is %d bytes", id, len(key))
	case !kvKeyRE.MatchString(key):
		t.Fatalf("record key %q of %q is not a valid KV key", key, id)
	case slices.Contains(strings.Split(key, "."), ""):
		t.Fatalf("record key %q of %q has an empty token", key, id)
	case !strings.HasPrefix(key, org+"."):
		t.Fatalf("record key %q does not start with organization %q", key, org)
	}
	rest := strings.TrimPrefix(key, org+".")
	if enc, ok := strings.CutPrefix(rest, "b64."); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || string(b) != id {
			t.Fatalf("record key %q does not encode id %q (decoded %q, %v)", key, id, b, err)
		}
		return
	}
	if rest != id {
		t.Fatalf("record key %q holds %q, want id %q", key, rest, id)
	}
}
