package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
)

// The adversarial suite: each case runs on its own embedded nats-server,
// simulator and worker, publishes its commands (as a tenant's client, or
// raw protocol), and checks, besides each command's own outcome:
//
//   - exactly one terminal event per command, stored on the subject of the
//     command's own organization (or "_" when it has none), and published
//     once on the wire: a core subscriber on ingest.events.> also sees the
//     publishes the events stream drops as duplicates, so a redelivery
//     storm shows there;
//   - every event's headers bounded (each value at most 512 bytes without
//     CR, LF or NUL; the block under 8 KiB) and its strings bounded;
//   - the simulator's POSTs: exactly the case's, none for a rejected
//     command, none on another tenant's mapping;
//   - the work queue empty, nothing pending or unacknowledged, and only
//     the redeliveries the case expects;
//   - the worker still runs the next valid command.

const (
	validTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	kb30             = 30 << 10
	maxEventHeader   = 512
	maxEventHeaders  = 8 << 10
)

// tenantMappings are the simulator's mappings in every case: each tenant's
// XDM44 (told apart by their record counts) and acme's mapping of the
// command run after each case.
var tenantMappings = []campaignsim.Mapping{
	{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 3}},
	{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 7}},
	{Org: "acme", ID: "NEXT", Script: campaignsim.Script{Polls: 1, Records: 1}},
}

// command is one message a case publishes.
type command struct {
	subject string
	body    string
	header  map[string]string
	// rawHeader, when set, is published as is (HPUB) instead of header:
	// what a client other than nats.go can send.
	rawHeader string
	want      outcome
}

// outcome is what must become of a command.
type outcome struct {
	typ    ingest.EventType
	reason ingest.Reason
	// subject is the terminal event's subject.
	subject string
	// id is the command id in its events; "" means the fallback id,
	// INGEST_COMMANDS-<stream sequence>. With orFallback, either.
	id         string
	orFallback bool
	// records is numRecords of a succeeded event (which tenant's mapping
	// ran: acme's XDM44 has 3, globex's 7).
	records int64
	// traceParent and traceState are the trace headers the events must
	// carry ("" = none).
	traceParent, traceState string
}

type hostileCase struct {
	name     string
	commands []command
	// concurrent publishes every command at once; by default each command
	// is published once the previous one ended.
	concurrent bool
	// posts are the simulator's POSTs ("org/mapping") once every command
	// ended, not counting the next valid command's; any other is a failure.
	posts map[string]int
	// redeliveries expected (deliveries_total{kind="redelivery"}).
	redeliveries float64
	// faults are injected before the commands are published.
	faults []campaignsim.Fault
	// check checks more once everything ended, on every event in stream
	// order.
	check func(t *testing.T, all []testenv.Received)
}

func acmeCmd(body string, header map[string]string, want outcome) command {
	return command{subject: "ingest.commands.acme.XDM44", body: body, header: header, want: want}
}

func globexCmd(body string, header map[string]string, want outcome) command {
	return command{subject: "ingest.commands.globex.XDM44", body: body, header: header, want: want}
}

func msgID(id string) map[string]string { return map[string]string{"Nats-Msg-Id": id} }

func succeeded(org, id string, records int64) outcome {
	return outcome{typ: ingest.EventSucceeded, subject: "ingest.events." + org + ".XDM44.succeeded", id: id, records: records}
}

func rejected(reason ingest.Reason, subject, id string) outcome {
	return outcome{typ: ingest.EventRejected, reason: reason, subject: subject, id: id}
}

// TestTenantIDReuse: two tenants use one command id, in the body, in
// their own scoped Nats-Msg-Id, and one tenant names the other's scoped
// Nats-Msg-Id.
func TestTenantIDReuse(t *testing.T) {
	tests := []hostileCase{
		{
			name: "same body id, no header",
			commands: []command{
				acmeCmd(`{"id":"shared-1"}`, nil, succeeded("acme", "shared-1", 3)),
				globexCmd(`{"id":"shared-1"}`, nil, succeeded("globex", "shared-1", 7)),
			},
			posts: map[string]int{"acme/XDM44": 1, "globex/XDM44": 1},
		},
		{
			name: "same body id, no header, at once",
			commands: []command{
				acmeCmd(`{"id":"shared-1"}`, nil, succeeded("acme", "shared-1", 3)),
				globexCmd(`{"id":"shared-1"}`, nil, succeeded("globex", "shared-1", 7)),
			},
			concurrent: true,
			posts:      map[string]int{"acme/XDM44": 1, "globex/XDM44": 1},
		},
		{
			name: "same body id, each with its own scoped Nats-Msg-Id",
			commands: []command{
				acmeCmd(`{"id":"shared-1"}`, msgID("acme:shared-1"), succeeded("acme", "shared-1", 3)),
				globexCmd(`{"id":"shared-1"}`, msgID("globex:shared-1"), succeeded("globex", "shared-1", 7)),
			},
			posts: map[string]int{"acme/XDM44": 1, "globex/XDM44": 1},
		},
		{
			name: "scoped Nats-Msg-Id only, no body",
			commands: []command{
				acmeCmd("", msgID("acme:shared-1"), succeeded("acme", "acme:shared-1", 3)),
				globexCmd("", msgID("globex:shared-1"), succeeded("globex", "globex:shared-1", 7)),
			},
			posts: map[string]int{"acme/XDM44": 1, "globex/XDM44": 1},
		},
		{
			name: "globex body id with acme's scoped Nats-Msg-Id",
			commands: []command{
				globexCmd(`{"id":"shared-1"}`, msgID("acme:shared-1"),
					rejected(ingest.ReasonSubjectMismatch, "ingest.events.globex.XDM44.rejected", "shared-1")),
				acmeCmd(`{"id":"shared-1"}`, nil, succeeded("acme", "shared-1", 3)),
			},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			name: "globex sends acme's scoped Nats-Msg-Id alone",
			commands: []command{
				globexCmd("", msgID("acme:shared-1"),
					rejected(ingest.ReasonSubjectMismatch, "ingest.events.globex.XDM44.rejected", "acme:shared-1")),
				acmeCmd(`{"id":"shared-1"}`, nil, succeeded("acme", "shared-1", 3)),
			},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			name: "globex body names acme",
			commands: []command{
				globexCmd(`{"id":"shared-1","organization":"acme"}`, nil,
					rejected(ingest.ReasonSubjectMismatch, "ingest.events.globex.XDM44.rejected", "shared-1")),
				acmeCmd(`{"id":"shared-1","organization":"acme"}`, nil, succeeded("acme", "shared-1", 3)),
			},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			// The API fails for globex only: its command is handed back
			// and redelivered until MaxDeliver (5) while acme's runs.
			name:       "globex fails and is redelivered while acme runs",
			concurrent: true,
			faults:     []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 503, Org: "globex", Mapping: "XDM44"}},
			commands: []command{
				globexCmd(`{"id":"shared-1"}`, nil, outcome{typ: ingest.EventFailed, reason: ingest.ReasonAPIUnavailable,
					subject: "ingest.events.globex.XDM44.failed", id: "shared-1"}),
				acmeCmd(`{"id":"shared-1"}`, nil, succeeded("acme", "shared-1", 3)),
			},
			// APIRetries (4) POSTs in each of MaxDeliver (5) deliveries.
			posts:        map[string]int{"acme/XDM44": 1, "globex/XDM44": 20},
			redeliveries: 4,
			check: func(t *testing.T, all []testenv.Received) {
				for _, ev := range all {
					if ev.Type.Terminal() {
						if ev.Organization != "acme" {
							t.Errorf("the first terminal event is %s's, want acme's: globex's redeliveries held acme's command up", ev.Organization)
						}
						return
					}
				}
			},
		},
	}
	runHostile(t, tests)
}

// TestTenantSubjects: every command subject shape the stream takes
// (ingest.commands.>) that is not ingest.commands.<org>.<mapping> with
// valid tokens ends in one rejected event on the command's organization's
// subject, or ingest.events._.… when the subject names no valid one.
func TestTenantSubjects(t *testing.T) {
	// An id from a command without a valid organization cannot be scoped
	// by one: the event may name it by its fallback id.
	reject := func(name, subject, eventSubject string) hostileCase {
		want := rejected(ingest.ReasonInvalidCommand, eventSubject, "odd-subject")
		want.orFallback = strings.HasPrefix(eventSubject, "ingest.events._.")
		return hostileCase{name: name, commands: []command{{subject: subject, body: `{"id":"odd-subject"}`, want: want}}}
	}
	orFallback := func(o outcome) outcome { o.orFallback = true; return o }
	tests := []hostileCase{
		reject("no mapping token", "ingest.commands.acme", "ingest.events._._.rejected"),
		reject("upper-case organization", "ingest.commands.ACME.XDM44", "ingest.events._.XDM44.rejected"),
		reject("organization with an underscore", "ingest.commands.a_b.XDM44", "ingest.events._.XDM44.rejected"),
		reject("organization starting with a dash", "ingest.commands.-acme.XDM44", "ingest.events._.XDM44.rejected"),
		reject("organization is the placeholder", "ingest.commands._.XDM44", "ingest.events._.XDM44.rejected"),
		reject("organization of 255 characters", "ingest.commands."+strings.Repeat("a", 255)+".XDM44", "ingest.events._.XDM44.rejected"),
		reject("mapping with a dollar", "ingest.commands.acme.X$Y", "ingest.events.acme._.rejected"),
		reject("mapping with non-ASCII letters", "ingest.commands.acme.ünï", "ingest.events.acme._.rejected"),
		reject("mapping with invalid UTF-8", "ingest.commands.acme.X\xffY", "ingest.events.acme._.rejected"),
		reject("mapping with NUL", "ingest.commands.acme.X\x00Y", "ingest.events.acme._.rejected"),
		reject("mapping with DEL", "ingest.commands.acme.X\x7fY", "ingest.events.acme._.rejected"),
		reject("mapping starting with a dash", "ingest.commands.acme.-XDM", "ingest.events.acme._.rejected"),
		reject("mapping of 129 characters", "ingest.commands.acme."+strings.Repeat("M", 129), "ingest.events.acme._.rejected"),
		// acme may publish on ingest.commands.acme.> (SECURITY.md): its
		// rejections belong on its own subjects, where it may subscribe.
		reject("too many tokens", "ingest.commands.acme.X.Y", "ingest.events.acme._.rejected"),
		{
			// The event id of a rejection is scoped by the organization
			// ("_" without one): two tenants' too-deep subjects with one
			// id must still end in one event each.
			name: "too many tokens, two tenants, one id",
			commands: []command{
				{subject: "ingest.commands.acme.X.Y", body: `{"id":"deep-1"}`, want: rejected(ingest.ReasonInvalidCommand, "ingest.events.acme._.rejected", "deep-1")},
				{subject: "ingest.commands.globex.X.Y", body: `{"id":"deep-1"}`, want: rejected(ingest.ReasonInvalidCommand, "ingest.events.globex._.rejected", "deep-1")},
			},
		},
		{
			name: "two invalid organizations, one id",
			commands: []command{
				{subject: "ingest.commands.ACME.XDM44", body: `{"id":"upper-1"}`, want: orFallback(rejected(ingest.ReasonInvalidCommand, "ingest.events._.XDM44.rejected", "upper-1"))},
				{subject: "ingest.commands.GLOBEX.XDM44", body: `{"id":"upper-1"}`, want: orFallback(rejected(ingest.ReasonInvalidCommand, "ingest.events._.XDM44.rejected", "upper-1"))},
			},
		},
	}
	runHostile(t, tests)
}

// TestHostileInput: oversized and odd ids, headers and trace context.
func TestHostileInput(t *testing.T) {
	big := strings.Repeat("x", kb30)
	acmeRejected := func(reason ingest.Reason, id string) outcome {
		return rejected(reason, "ingest.events.acme.XDM44.rejected", id)
	}
	withTrace := func(o outcome, parent, state string) outcome { o.traceParent, o.traceState = parent, state; return o }
	tests := []hostileCase{
		{name: "30 KB body id", commands: []command{acmeCmd(`{"id":"`+big+`"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "30 KB Nats-Msg-Id", commands: []command{acmeCmd("", msgID(big), acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{
			name:     "30 KB Nats-Msg-Id with a body id",
			commands: []command{acmeCmd(`{"id":"big-header"}`, msgID(big), succeeded("acme", "big-header", 3))},
			posts:    map[string]int{"acme/XDM44": 1},
		},
		{
			name:     "30 KB correlationId",
			commands: []command{acmeCmd(`{"id":"big-corr","correlationId":"`+big+`"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, "big-corr"))},
		},
		{
			name: "30 KB traceparent",
			commands: []command{acmeCmd(`{"id":"big-tp"}`, map[string]string{"traceparent": big, "tracestate": "k=v"},
				succeeded("acme", "big-tp", 3))},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			name: "30 KB tracestate",
			commands: []command{acmeCmd(`{"id":"big-ts"}`, map[string]string{"traceparent": validTraceParent, "tracestate": big},
				withTrace(succeeded("acme", "big-ts", 3), validTraceParent, ""))},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			// JetStream takes at most 64 KiB of headers.
			name: "30 KB ids and 20 KB headers, rejected",
			commands: []command{acmeCmd(`{"id":"`+big+`","correlationId":"`+big+`"}`,
				map[string]string{"Nats-Msg-Id": big[:20<<10], "traceparent": big[:20<<10], "tracestate": big[:20<<10]},
				acmeRejected(ingest.ReasonInvalidCommand, ""))},
		},
		{name: "invalid UTF-8 body id", commands: []command{acmeCmd("{\"id\":\"a\xffb\"}", nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "invalid UTF-8 Nats-Msg-Id", commands: []command{acmeCmd("", msgID("a\xffb"), acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "control character in body id", commands: []command{acmeCmd(`{"id":"a\u0007b"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "NUL in body id", commands: []command{acmeCmd(`{"id":"a\u0000b"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "NUL in Nats-Msg-Id", commands: []command{acmeCmd("", msgID("a\x00b"), acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "CR/LF in body id", commands: []command{acmeCmd(`{"id":"a\r\nX-Injected: 1"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "line separator in body id", commands: []command{acmeCmd(`{"id":"a\u2028b"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{name: "CR/LF in correlationId", commands: []command{acmeCmd(`{"id":"crlf-corr","correlationId":"a\r\nb"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, "crlf-corr"))}},
		{
			// nats.go writes CR and LF in a header value as spaces: the id
			// arrives as printable text, and runs.
			name:     "CR/LF in Nats-Msg-Id through nats.go",
			commands: []command{acmeCmd("", msgID("a\r\nX-Injected: 1"), succeeded("acme", "a  X-Injected: 1", 3))},
			posts:    map[string]int{"acme/XDM44": 1},
		},
		{
			// Another client can send a bare CR, NUL and invalid UTF-8 in
			// header values. The rejection carries the trace context, its
			// tracestate made printable.
			name: "raw header block: bare CR, NUL and invalid UTF-8",
			commands: []command{{
				subject: "ingest.commands.acme.XDM44",
				rawHeader: "NATS/1.0\r\nNats-Msg-Id: a\rX-Injected: 1\x00\xff\r\n" +
					"traceparent: " + validTraceParent + "\r\ntracestate: k=v\rX-Injected: 1\x00\xff\r\n\r\n",
				want: withTrace(acmeRejected(ingest.ReasonInvalidCommand, ""), validTraceParent, "k=v\uFFFDX-Injected: 1\uFFFD\uFFFD"),
			}},
		},
		{
			name: "raw header block: tracestate with a bare CR and NUL on a valid command",
			commands: []command{{
				subject: "ingest.commands.acme.XDM44", body: `{"id":"raw-ts"}`,
				rawHeader: "NATS/1.0\r\ntraceparent: " + validTraceParent + "\r\ntracestate: k=v\rX-Injected: 1\x00\r\n\r\n",
				want:      withTrace(succeeded("acme", "raw-ts", 3), validTraceParent, "k=v\uFFFDX-Injected: 1\uFFFD"),
			}},
			posts: map[string]int{"acme/XDM44": 1},
		},
		{
			name:     "id of 256 bytes of two-byte runes",
			commands: []command{acmeCmd(`{"id":"`+strings.Repeat("é", 128)+`"}`, nil, succeeded("acme", strings.Repeat("é", 128), 3))},
			posts:    map[string]int{"acme/XDM44": 1},
		},
		{name: "id of 257 bytes", commands: []command{acmeCmd(`{"id":"`+strings.Repeat("i", 257)+`"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))}},
		{
			name:     "id with subject wildcards and dots",
			commands: []command{acmeCmd(`{"id":"a..*.>."}`, nil, succeeded("acme", "a..*.>.", 3))},
			posts:    map[string]int{"acme/XDM44": 1},
		},
		{
			name:     "body larger than 64 KiB",
			commands: []command{acmeCmd(`{"id":"too-big","pad":"`+strings.Repeat("p", 70<<10)+`"}`, nil, acmeRejected(ingest.ReasonInvalidCommand, ""))},
		},
	}
	runHostile(t, tests)
}

// TestHostileRejectedIDReused: a tenant's command is rejected, and a
// valid command with the same body id (no Nats-Msg-Id) follows. The id
// has ended: either the second command is not run, or it runs and its
// terminal event is stored. It must not run (POST) and then have its
// terminal event dropped by the events stream as a duplicate of the
// rejection's, which shares its Nats-Msg-Id (<org>:<id>:terminal).
func TestHostileRejectedIDReused(t *testing.T) {
	h := newHarness(t, tenantMappings...)
	r := h.start(nil)
	wire := countWire(t, h.nc)
	h.publish("ingest.commands.acme.XDM44", `{"id":"reuse-1","mappingId":"OTHER"}`, nil)
	if ev := h.events.Terminal(t, "reuse-1", 20*time.Second); ev.Reason != ingest.ReasonSubjectMismatch {
		t.Fatalf("first reuse-1: %s/%s, want rejected/subject_mismatch", ev.Type, ev.Reason)
	}
	h.publish("ingest.commands.acme.XDM44", `{"id":"reuse-1"}`, nil)
	h.settled()
	runNext(t, h, wire)
	// The rejection recorded reuse-1 as done: the second message is a
	// duplicate of that command, not an ingestion whose outcome the stream
	// would drop.
	if posts := len(h.calls("acme", "XDM44", campaign.OpTrigger)); posts != 0 {
		t.Errorf("the second reuse-1 ran (%d POSTs); want it acked as a duplicate of the rejected command", posts)
	}
	if stored := terminalOf(h.events.All(), "reuse-1"); len(stored) != 1 {
		t.Errorf("reuse-1: %d terminal events stored, want the rejection only: %s (on the wire: %v)", len(stored), fmtEvents(stored), wire.terminals())
	}
	if n := testutil.ToFloat64(r.w.Metrics().Requests.WithLabelValues("_other", "rejected")); n != 1 {
		t.Errorf("requests_total{rejected} = %v, want 1", n)
	}
}

// TestTenantMsgIDWindow pins what SECURITY.md ("Tenant isolation") says of
// JetStream's duplicate window, which spans the whole command stream: with
// the contract's scoped Nats-Msg-Id (<organization>:<id>) two tenants'
// equal ids never collide and both run; a bare id, or another tenant's
// scoped id published first by a squatter, makes the stream drop the
// second publish, and its publisher is told (PubAck.Duplicate); the
// squatter's own command is rejected.
func TestTenantMsgIDWindow(t *testing.T) {
	tests := []struct {
		name                        string
		firstSubject, secondSubject string
		firstMsgID, secondMsgID     string
		wantDuplicate               bool
		wantFirst                   ingest.EventType // the first command's outcome
		wantSecond                  ingest.EventType // "" when the stream dropped it
		wantFirstReason             ingest.Reason
	}{
		{name: "scoped ids of two tenants: both run",
			firstSubject: "ingest.commands.acme.XDM44", firstMsgID: "acme:shared-1",
			secondSubject: "ingest.commands.globex.XDM44", secondMsgID: "globex:shared-1",
			wantFirst: ingest.EventSucceeded, wantSecond: ingest.EventSucceeded},
		{name: "bare ids of two tenants: the second publisher is told its command was dropped",
			firstSubject: "ingest.commands.acme.XDM44", firstMsgID: "shared-1",
			secondSubject: "ingest.commands.globex.XDM44", secondMsgID: "shared-1",
			wantDuplicate: true, wantFirst: ingest.EventSucceeded},
		{name: "a squatter publishes another tenant's scoped id first: it is rejected, the victim is told",
			firstSubject: "ingest.commands.globex.XDM44", firstMsgID: "acme:shared-1",
			secondSubject: "ingest.commands.acme.XDM44", secondMsgID: "acme:shared-1",
			wantDuplicate: true, wantFirst: ingest.EventRejected, wantFirstReason: ingest.ReasonSubjectMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tenantMappings...)
			h.start(nil)
			pub := func(subject, msgID string) *jetstream.PubAck {
				msg := nats.NewMsg(subject)
				msg.Data = []byte(`{"id":"shared-1"}`)
				msg.Header.Set(jetstream.MsgIDHeader, msgID)
				ack, err := h.js.PublishMsg(context.Background(), msg)
				if err != nil {
					t.Fatal(err)
				}
				return ack
			}
			pub(tt.firstSubject, tt.firstMsgID)
			if ack := pub(tt.secondSubject, tt.secondMsgID); ack.Duplicate != tt.wantDuplicate {
				t.Errorf("second publish: Duplicate = %v, want %v", ack.Duplicate, tt.wantDuplicate)
			}
			want := 2
			if tt.wantDuplicate {
				want = 1
			}
			evs := h.events.WaitFor(t, 20*time.Second, "the terminal events", func(evs []testenv.Received) bool {
				return countTerminal(evs) >= want
			})
			h.settled()
			outcome := func(cmdSubject string) (ingest.EventType, ingest.Reason) {
				prefix := strings.Replace(cmdSubject, ".commands.", ".events.", 1) + "."
				for _, ev := range evs {
					if ev.Type.Terminal() && strings.HasPrefix(ev.Subject, prefix) {
						return ev.Type, ev.Reason
					}
				}
				return "", ""
			}
			if typ, reason := outcome(tt.firstSubject); typ != tt.wantFirst || reason != tt.wantFirstReason {
				t.Errorf("first command: %s/%s, want %s/%s", typ, reason, tt.wantFirst, tt.wantFirstReason)
			}
			if typ, _ := outcome(tt.secondSubject); typ != tt.wantSecond {
				t.Errorf("second command: %q, want %q", typ, tt.wantSecond)
			}
			if n := countTerminal(h.events.All()); n != want {
				t.Errorf("%d terminal events, want %d", n, want)
			}
		})
	}
}

// runHostile runs each case on its own server, simulator and worker.
func runHostile(t *testing.T, tests []hostileCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tenantMappings...)
			for _, f := range tc.faults {
				h.sim.InjectFault(f)
			}
			wire := countWire(t, h.nc)
			r := h.start(nil)
			ids := make([][]string, len(tc.commands))
			for i, c := range tc.commands {
				ids[i] = publishHostile(t, h, c)
				if !tc.concurrent {
					drained(t, h)
				}
			}
			// The worker acks or terms a command only once its terminal
			// event is stored: an empty work queue means every command
			// ended, and the next command's event, recorded in stream
			// order, comes after theirs.
			drained(t, h)
			checkQueue(t, h)
			posts := triggerCounts(h.sim)
			runNext(t, h, wire)

			all := h.events.All()
			for i, c := range tc.commands {
				checkOutcome(t, c, ids[i], all, wire)
			}
			checkBounded(t, all)
			if n := len(terminalOf(all, "")) - 1; n != len(tc.commands) {
				t.Errorf("%d terminal events stored, want %d (one per command):%s", n, len(tc.commands), fmtEvents(terminalOf(all, "")))
			}
			want := map[string]int{}
			for k, v := range tc.posts {
				want[k] = v
			}
			if fmt.Sprint(posts) != fmt.Sprint(want) {
				t.Errorf("POSTs %v, want %v:%s", posts, want, fmtCalls(h.sim.Calls()))
			}
			if got := testutil.ToFloat64(r.w.Metrics().Deliveries.WithLabelValues("redelivery")); got != tc.redeliveries {
				t.Errorf("%v redeliveries, want %v", got, tc.redeliveries)
			}
			if n, want := wire.terminalCount(), len(tc.commands)+1; n != want {
				t.Errorf("%d terminal events published on the wire, want %d (one per command and the next one's): %v", n, want, wire.terminals())
			}
			if tc.check != nil {
				tc.check(t, all)
			}
		})
	}
}

// drained waits until the work queue holds no command.
func drained(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, layout.CommandStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			c, err := h.js.Consumer(ctx, layout.CommandStream, layout.DefaultDurable)
			if err != nil {
				t.Fatal(err)
			}
			ci, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("%d commands still in the work queue after 30s, the consumer has %d pending and %d unacknowledged "+
				"(a command it does not count is never delivered); events so far:%s",
				info.State.Msgs, ci.NumPending, ci.NumAckPending, fmtEvents(h.events.All()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publishHostile publishes c and returns the ids its events may carry.
func publishHostile(t *testing.T, h *harness, c command) []string {
	t.Helper()
	var seq uint64
	if c.rawHeader != "" {
		seq = rawPublish(t, h, c.subject, c.rawHeader, c.body)
	} else {
		msg := nats.NewMsg(c.subject)
		msg.Data = []byte(c.body)
		for k, v := range c.header {
			msg.Header.Set(k, v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, err := h.js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("publish on %q: %v", c.subject, err)
		}
		if ack.Duplicate {
			t.Fatalf("the stream dropped the command on %q as a duplicate", c.subject)
		}
		seq = ack.Sequence
	}
	fallback := fmt.Sprintf("%s-%d", layout.CommandStream, seq)
	switch {
	case c.want.id == "":
		return []string{fallback}
	case c.want.orFallback:
		return []string{c.want.id, fallback}
	}
	return []string{c.want.id}
}

// rawPublish publishes a command with a header block as is, over the NATS
// protocol, and returns its stream sequence.
func rawPublish(t *testing.T, h *harness, subject, header, body string) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, layout.CommandStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := info.State.LastSeq
	u, err := url.Parse(h.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("raw connection: %q, %v", line, err)
	}
	proto := `CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}` + "\r\n" +
		fmt.Sprintf("HPUB %s %d %d\r\n%s%s\r\nPING\r\n", subject, len(header), len(header)+len(body), header, body)
	if _, err := conn.Write([]byte(proto)); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("raw connection: %v", err)
		}
		if strings.HasPrefix(line, "-ERR") {
			t.Fatalf("the server refused the raw publish: %s", strings.TrimSpace(line))
		}
		if strings.HasPrefix(line, "PONG") {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq > before {
			return info.State.LastSeq
		}
		if time.Now().After(deadline) {
			t.Fatal("the raw publish was not stored within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOutcome checks c's events: one terminal event, the right one, on
// its own organization's subjects, published once.
func checkOutcome(t *testing.T, c command, ids []string, all []testenv.Received, wire *wireEvents) {
	t.Helper()
	w := c.want
	name := fmt.Sprintf("command on %.80q", c.subject)
	var terminal []testenv.Received
	prefix := strings.TrimSuffix(w.subject, string(w.typ))
	// An event names the organization token of its command, bounded, also
	// when it is invalid (its subject then says "_").
	subjOrg, _, fourTokens := layout.SplitCommandSubject(c.subject)
	isCmd := func(ev testenv.Received) bool {
		return slices.Contains(ids, ev.CommandID) && strings.HasPrefix(ev.Subject, prefix) &&
			(!fourTokens || ev.Organization == ingest.Bounded(subjOrg, 64))
	}
	for _, ev := range all {
		if isCmd(ev) && ev.Type.Terminal() {
			terminal = append(terminal, ev)
		}
	}
	if len(terminal) != 1 {
		t.Errorf("%s: %d terminal events with id %.64q on %s*, want 1; all terminal events:%s", name, len(terminal), ids, prefix, fmtEvents(terminalOf(all, "")))
		return
	}
	ev := terminal[0]
	if ev.Type != w.typ || ev.Reason != w.reason || ev.Subject != w.subject {
		t.Errorf("%s: %s/%s on %s, want %s/%s on %s (detail %q)", name, ev.Type, ev.Reason, ev.Subject, w.typ, w.reason, w.subject, ev.Detail)
	}
	if w.typ == ingest.EventSucceeded && ev.NumRecords != w.records {
		t.Errorf("%s: %d records, want %d: another tenant's mapping ran", name, ev.NumRecords, w.records)
	}
	if n := wire.count(ev.Subject, ev.Header.Get("Nats-Msg-Id")); n != 1 {
		t.Errorf("%s: its terminal event was published %d times, want once", name, n)
	}
	for _, e := range all {
		if isCmd(e) {
			if got := e.Header.Get("traceparent"); got != w.traceParent {
				t.Errorf("%s: %s event traceparent %q, want %q", name, e.Type, got, w.traceParent)
			}
			if got := e.Header.Get("tracestate"); got != w.traceState {
				t.Errorf("%s: %s event tracestate %q, want %q", name, e.Type, got, w.traceState)
			}
		}
	}
}

// checkBounded checks every event's headers and strings.
func checkBounded(t *testing.T, all []testenv.Received) {
	t.Helper()
	for _, ev := range all {
		block := len("NATS/1.0\r\n\r\n")
		for k, vs := range ev.Header {
			for _, v := range vs {
				block += len(k) + len(v) + 4
				if len(v) > maxEventHeader || strings.ContainsAny(v, "\r\n\x00") {
					t.Errorf("event on %.80q: header %s of %d bytes: %.80q", ev.Subject, k, len(v), v)
				}
			}
		}
		if block >= maxEventHeaders {
			t.Errorf("event on %.80q: header block of %d bytes", ev.Subject, block)
		}
		for field, v := range map[string]string{"commandId": ev.CommandID, "correlationId": ev.CorrelationID} {
			if len(v) > ingest.MaxIDLen {
				t.Errorf("event on %.80q: %s of %d bytes", ev.Subject, field, len(v))
			}
		}
		if len(ev.Organization) > 64 || len(ev.MappingID) > 128 || len(ev.Detail) > 1024 {
			t.Errorf("event on %.80q: organization, mapping or detail unbounded (%d, %d, %d bytes)", ev.Subject,
				len(ev.Organization), len(ev.MappingID), len(ev.Detail))
		}
	}
}

// checkQueue checks that the command consumer has nothing pending,
// unacknowledged or redelivered left.
func checkQueue(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := h.js.Consumer(ctx, layout.CommandStream, layout.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer: %d pending, %d unacknowledged, %d redelivered", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runNext runs a valid acme command after a case: the worker still works.
// It returns once the core subscriber w saw its terminal event too, and
// with it every event published before.
func runNext(t *testing.T, h *harness, w *wireEvents) {
	t.Helper()
	h.publish("ingest.commands.acme.NEXT", `{"id":"next-valid"}`, nil)
	ev := h.events.Terminal(t, "next-valid", 30*time.Second)
	if ev.Type != ingest.EventSucceeded || ev.Subject != "ingest.events.acme.NEXT.succeeded" {
		t.Errorf("next valid command: %s/%s on %s, want succeeded on ingest.events.acme.NEXT.succeeded", ev.Type, ev.Reason, ev.Subject)
	}
	h.settled()
	deadline := time.Now().Add(10 * time.Second)
	for w.count(ev.Subject, ev.Header.Get("Nats-Msg-Id")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the core subscriber did not see the next command's terminal event within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// triggerCounts counts the simulator's POSTs by organization and mapping.
func triggerCounts(sim *campaignsim.Server) map[string]int {
	out := map[string]int{}
	for _, c := range sim.Calls() {
		if c.Op == campaign.OpTrigger {
			out[c.Org+"/"+c.Mapping]++
		}
	}
	return out
}

// terminalOf returns the terminal events of command id, or all of them
// when id is "".
func terminalOf(evs []testenv.Received, id string) []testenv.Received {
	var out []testenv.Received
	for _, ev := range evs {
		if (id == "" || ev.CommandID == id) && ev.Type.Terminal() {
			out = append(out, ev)
		}
	}
	return out
}

func fmtEvents(evs []testenv.Received) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s/%s id=%.64q org=%.64q", ev.Subject, ev.Type, ev.Reason, ev.CommandID, ev.Organization)
	}
	return b.String()
}

// wireEvents counts the events published on ingest.events.>, as a core
// subscriber sees them: the publishes the events stream drops as
// duplicates too.
type wireEvents struct {
	mu sync.Mutex
	n  map[string]int // subject NUL Nats-Msg-Id
}

func countWire(t *testing.T, nc *nats.Conn) *wireEvents {
	t.Helper()
	w := &wireEvents{n: map[string]int{}}
	sub, err := nc.Subscribe(layout.EventSubjects, func(m *nats.Msg) {
		w.mu.Lock()
		w.n[m.Subject+"\x00"+m.Header.Get("Nats-Msg-Id")]++
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

func (w *wireEvents) count(subject, msgID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[subject+"\x00"+msgID]
}

// terminalCount is the number of terminal events published.
func (w *wireEvents) terminalCount() int {
	n := 0
	for _, c := range w.terminalMap() {
		n += c
	}
	return n
}

func (w *wireEvents) terminalMap() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for k, c := range w.n {
		if subject, _, _ := strings.Cut(k, "\x00"); !strings.HasSuffix(subject, "."+string(ingest.EventTriggered)) {
			out[k] = c
		}
	}
	return out
}

// terminals lists the terminal events published, for failure messages.
func (w *wireEvents) terminals() []string {
	var out []string
	for k, c := range w.terminalMap() {
		subject, id, _ := strings.Cut(k, "\x00")
		out = append(out, fmt.Sprintf("%s %.64q ×%d", subject, id, c))
	}
	sort.Strings(out)
	return out
}
