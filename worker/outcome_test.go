package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/worker"
)

type want struct {
	typ        ingest.EventType
	reason     ingest.Reason
	status     string
	numRecords int64
	errorCode  string
	batchID    string
	attempt    int
}

// TestOutcomes is the specification of how one command ends, end to end:
// a command published on NATS, the worker, the simulator over HTTP, the
// terminal event on the events stream, and the simulator's call log.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	const org = "acme"
	tests := []struct {
		name    string
		script  campaignsim.Script
		state   campaignsim.MappingState
		faults  []campaignsim.Fault
		config  func(*worker.Config)
		subject string // default ingest.commands.acme.<mapping>
		body    string
		want    want
		posts   int // POSTs the simulator saw for the mapping
		gets    int // GETs, when the case pins them (0: not checked)
		check   func(t *testing.T, h *harness, ev testenv.Received)
	}{
		{
			name:   "success after three polls",
			script: campaignsim.Script{Records: 15, Polls: 3},
			want:   want{typ: ingest.EventSucceeded, status: "Success", numRecords: 15, attempt: 1},
			posts:  1, gets: 3,
		},
		{
			name:   "fetch failure",
			script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure, Polls: 2},
			want:   want{typ: ingest.EventFailed, reason: ingest.ReasonFetchFailed, status: "Failed", errorCode: "ACP-880056", attempt: 1},
			posts:  1, gets: 2,
		},
		{
			name:   "upload failure with batch id",
			script: campaignsim.Script{Outcome: campaignsim.OutcomeUploadFailure, BatchID: "a27d800531ac4d95945a2bc234eb0d86"},
			want: want{typ: ingest.EventFailed, reason: ingest.ReasonUploadFailed, status: "Failed", errorCode: "ACP-880096",
				batchID: "a27d800531ac4d95945a2bc234eb0d86", attempt: 1},
			posts: 1,
		},
		{
			name:   "aborted after the resubmits",
			script: campaignsim.Script{Outcome: campaignsim.OutcomeAborted},
			config: func(c *worker.Config) { c.ResubmitAborted = 2 },
			want:   want{typ: ingest.EventAborted, reason: ingest.ReasonAborted, status: "Aborted", attempt: 3},
			posts:  3,
		},
		{
			name:   "aborted then success",
			script: campaignsim.Script{Outcome: campaignsim.OutcomeAbortedThenSuccess, Records: 7},
			want:   want{typ: ingest.EventSucceeded, status: "Success", numRecords: 7, attempt: 2},
			posts:  2,
		},
		{
			name:  "mapping not stopped",
			state: campaignsim.StateNotStopped,
			want:  want{typ: ingest.EventRejected, reason: ingest.ReasonMappingNotStopped, status: "Failed", attempt: 1},
			posts: 1, gets: -1,
		},
		{
			name:  "mapping not published",
			state: campaignsim.StateNotPublished,
			want:  want{typ: ingest.EventRejected, reason: ingest.ReasonMappingNotPublished, status: "Failed", attempt: 1},
			posts: 1, gets: -1,
		},
		{
			name:   "timeout while in progress",
			script: campaignsim.Script{Outcome: campaignsim.OutcomeNever},
			body:   `{"timeout":"400ms"}`,
			want:   want{typ: ingest.EventTimedOut, reason: ingest.ReasonDeadlineExceeded, status: "In Progress", attempt: 1},
			posts:  1,
		},
		{
			name:  "invalid JSON",
			body:  `{"id": broken`,
			want:  want{typ: ingest.EventRejected, reason: ingest.ReasonInvalidCommand},
			posts: 0, gets: -1,
		},
		{
			name:  "body names another organization",
			body:  `{"organization":"globex"}`,
			want:  want{typ: ingest.EventRejected, reason: ingest.ReasonSubjectMismatch},
			posts: 0, gets: -1,
		},
		{
			name:  "body names another mapping",
			body:  `{"mappingId":"XDM95"}`,
			want:  want{typ: ingest.EventRejected, reason: ingest.ReasonSubjectMismatch},
			posts: 0, gets: -1,
		},
		{
			name:    "invalid organization in the subject",
			subject: "ingest.commands.ACME.XDM1",
			want:    want{typ: ingest.EventRejected, reason: ingest.ReasonInvalidCommand},
			posts:   0, gets: -1,
			check: func(t *testing.T, _ *harness, ev testenv.Received) {
				if ev.Subject != "ingest.events._.XDM1.rejected" {
					t.Errorf("subject = %q, want the invalid token written as _", ev.Subject)
				}
			},
		},
		{
			name:   "429 then success, Retry-After honoured",
			script: campaignsim.Script{Records: 1},
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Count: 1}},
			want:   want{typ: ingest.EventSucceeded, status: "Success", numRecords: 1, attempt: 1},
			posts:  2,
			check: func(t *testing.T, h *harness, _ testenv.Received) {
				posts := h.calls("acme", "C429", campaign.OpTrigger)
				if gap := posts[1].Time.Sub(posts[0].Time); gap < time.Second {
					t.Errorf("second POST %s after the 429, want ≥ Retry-After 1s", gap)
				}
			},
		},
		{
			name:   "5xx burst then success",
			script: campaignsim.Script{Records: 2},
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 503, Count: 3}},
			want:   want{typ: ingest.EventSucceeded, status: "Success", numRecords: 2, attempt: 1},
			posts:  1, gets: 4,
		},
		{
			// The request id is stored only after the first status check;
			// a job handed back before that check succeeded must store it,
			// or the redelivery would trigger a second ingestion.
			name:   "5xx through the first delivery's status checks, the redelivery resumes",
			script: campaignsim.Script{Records: 3},
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 503, Count: 4}},
			want:   want{typ: ingest.EventSucceeded, status: "Success", numRecords: 3, attempt: 1},
			posts:  1, gets: 5,
		},
		{
			name:   "500 bad URI is final after the retry budget",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 500}},
			want:   want{typ: ingest.EventRejected, reason: ingest.ReasonAPIError, attempt: 1},
			posts:  4, gets: -1,
		},
		{
			name:   "503 through every delivery ends failed on the last one",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 503}},
			config: func(c *worker.Config) { c.MaxDeliver, c.APIRetries = 3, 2 },
			want:   want{typ: ingest.EventFailed, reason: ingest.ReasonAPIUnavailable, attempt: 1},
			posts:  6, gets: -1,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mapping := map[bool]string{true: "C429"}[strings.HasPrefix(tt.name, "429")]
			if mapping == "" {
				mapping = "XDM" + string(rune('A'+i))
			}
			h := newHarness(t, campaignsim.Mapping{Org: org, ID: mapping, State: tt.state, Script: tt.script})
			for _, f := range tt.faults {
				h.sim.InjectFault(f)
			}
			h.start(tt.config)
			subject := tt.subject
			if subject == "" {
				subject = "ingest.commands." + org + "." + mapping
			}
			id := "cmd-" + mapping
			h.publish(subject, tt.body, map[string]string{"Nats-Msg-Id": id})
			ev := h.events.Terminal(t, id, 20*time.Second)
			got := want{typ: ev.Type, reason: ev.Reason, status: ev.Status, numRecords: ev.NumRecords,
				errorCode: ev.ErrorCode, batchID: ev.BatchID, attempt: ev.Attempt}
			if got != tt.want {
				t.Errorf("terminal event = %+v\nwant %+v\nevent: %+v\ncalls:%s", got, tt.want, ev.Event, fmtCalls(h.sim.Calls()))
			}
			if n := len(h.calls(org, mapping, campaign.OpTrigger)); n != tt.posts {
				t.Errorf("POSTs = %d, want %d; calls:%s", n, tt.posts, fmtCalls(h.sim.Calls()))
			}
			gets := len(h.calls(org, mapping, campaign.OpStatus))
			switch {
			case tt.gets > 0 && gets != tt.gets:
				t.Errorf("GETs = %d, want %d", gets, tt.gets)
			case tt.gets < 0 && gets != 0:
				t.Errorf("GETs = %d, want none", gets)
			}
			if ev.Polls != max(tt.gets, 0) && tt.gets > 0 && tt.faults == nil {
				t.Errorf("event polls = %d, want %d", ev.Polls, tt.gets)
			}
			// Exactly one terminal event, and a triggered one before it
			// for every accepted request.
			time.Sleep(50 * time.Millisecond)
			evs := h.events.For(id)
			terminals, triggered := 0, 0
			for _, e := range evs {
				if e.Type.Terminal() {
					terminals++
				} else {
					triggered++
				}
			}
			if terminals != 1 {
				t.Errorf("terminal events = %d, want 1: %+v", terminals, evs)
			}
			if wantTrig := acceptedPOSTs(h, org, mapping); triggered != wantTrig {
				t.Errorf("triggered events = %d, want %d (accepted POSTs)", triggered, wantTrig)
			}
			if tt.check != nil {
				tt.check(t, h, ev)
			}
		})
	}
}

func acceptedPOSTs(h *harness, org, mapping string) int {
	n := 0
	for _, c := range h.calls(org, mapping, campaign.OpTrigger) {
		if c.HTTPStatus == 200 && c.Status == "Success" {
			n++
		}
	}
	return n
}

// TestEventHeaders pins the CloudEvents binary-mode headers, the stable
// Nats-Msg-Id and the trace context carried from the command.
func TestEventHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 15}})
	h.start(nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h.publish("ingest.commands.acme.XDM44", `{"id":"etl-1","correlationId":"run-42"}`, map[string]string{"traceparent": tp})
	ev := h.events.Terminal(t, "etl-1", 20*time.Second)
	wantHdr := map[string]string{
		"Nats-Msg-Id":    "acme:etl-1:terminal",
		"ce-specversion": "1.0",
		"ce-id":          "acme:etl-1:terminal",
		"ce-source":      "/campaign/acme/mappings/XDM44",
		"ce-type":        "campaign.ingestion.succeeded",
		"ce-subject":     "etl-1",
		"Content-Type":   "application/json",
		"content-type":   "application/json",
		"traceparent":    tp,
	}
	for k, v := range wantHdr {
		if got := ev.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Header.Get("ce-time")); err != nil {
		t.Errorf("ce-time %q: %v", ev.Header.Get("ce-time"), err)
	}
	if ev.Subject != "ingest.events.acme.XDM44.succeeded" || ev.CorrelationID != "run-42" || ev.RequestID == "" {
		t.Errorf("event %s %+v", ev.Subject, ev.Event)
	}
	trig := h.events.For("etl-1")[0]
	if trig.Type != ingest.EventTriggered || trig.Header.Get("Nats-Msg-Id") != "acme:etl-1:triggered:1" || trig.RequestID != ev.RequestID {
		t.Errorf("first event %s %+v, want the triggered event of request %s", trig.Header.Get("Nats-Msg-Id"), trig.Event, ev.RequestID)
	}
}

// TestBusyMapping: a mapping already ingesting another request.
func TestBusyMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy    string
		wantPOSTs int
		own       bool // the event reports a request of the job's own
	}{
		{policy: "wait", wantPOSTs: 3, own: true},
		{policy: "attach", wantPOSTs: 2, own: false},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 3, Duration: campaignsim.Duration(600 * time.Millisecond)}})
			other := triggerDirectly(t, h, "acme", "XDM44")
			h.start(func(c *worker.Config) { c.BusyPolicy = tt.policy })
			h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "busy-1"})
			ev := h.events.Terminal(t, "busy-1", 20*time.Second)
			if ev.Type != ingest.EventSucceeded {
				t.Fatalf("event %+v, want succeeded", ev.Event)
			}
			if own := ev.RequestID != other; own != tt.own {
				t.Errorf("event request %s, other request %s: own = %v, want %v", ev.RequestID, other, own, tt.own)
			}
			if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != tt.wantPOSTs {
				t.Errorf("POSTs = %d, want %d:%s", n, tt.wantPOSTs, fmtCalls(h.sim.Calls()))
			}
		})
	}
}

// triggerDirectly starts an ingestion as another Campaign user would.
func triggerDirectly(t *testing.T, h *harness, org, mapping string) string {
	t.Helper()
	tok, err := h.sim.IssueToken(campaignsim.DemoClientID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := campaign.New(campaign.Config{BaseURL: h.simURL, APIKey: campaignsim.DemoClientID, TokenSource: staticToken(tok)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Trigger(context.Background(), org, mapping)
	if err != nil || res.Status != campaign.StatusSuccess {
		t.Fatalf("direct trigger: %+v, %v", res, err)
	}
	return string(res.RequestID)
}

// TestForbidden: a credential without the SQL function execution role.
func TestForbidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44"})
	h.sim.AddClient(campaignsim.Client{ID: "no-sql", Secret: "s3cret", SQLRole: false})
	h.start(func(c *worker.Config) { c.IMS.ClientID, c.IMS.ClientSecret = "no-sql", "s3cret" })
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "forbidden-1"})
	ev := h.events.Terminal(t, "forbidden-1", 20*time.Second)
	if ev.Type != ingest.EventRejected || ev.Reason != ingest.ReasonForbidden {
		t.Errorf("event %+v, want rejected forbidden", ev.Event)
	}
	if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
		t.Errorf("POSTs = %d, want 1 (a 403 is not retried)", n)
	}
}

// TestTokenExpiredMidRun: the API answers 401 for an expired token; the
// client gets one fresh token and the job goes on.
func TestTokenExpiredMidRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 5, Polls: 4}})
	h.start(nil)
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "warmup"})
	h.events.Terminal(t, "warmup", 20*time.Second)
	tokensBefore := len(h.calls("", "", campaign.OpToken))
	h.sim.ExpireTokens()
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "after-expiry"})
	ev := h.events.Terminal(t, "after-expiry", 20*time.Second)
	if ev.Type != ingest.EventSucceeded {
		t.Fatalf("event %+v, want succeeded", ev.Event)
	}
	if n := len(h.calls("", "", campaign.OpToken)) - tokensBefore; n != 1 {
		t.Errorf("token requests after the expiry = %d, want exactly 1", n)
	}
	unauthorized := 0
	for _, c := range h.sim.Calls() {
		if c.HTTPStatus == 401 {
			unauthorized++
		}
	}
	if unauthorized != 1 {
		t.Errorf("401 answers = %d, want 1:%s", unauthorized, fmtCalls(h.sim.Calls()))
	}
}

// TestDuplicateCommands: the same command id published twice makes one
// ingestion and one terminal event, whether the stream drops the copy
// (same Nats-Msg-Id) or the worker does (id only in the body).
func TestDuplicateCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header map[string]string
		body   string
	}{
		{name: "same Nats-Msg-Id", header: map[string]string{"Nats-Msg-Id": "dup-1"}, body: ""},
		{name: "same body id", body: `{"id":"dup-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(300 * time.Millisecond)}})
			h.start(nil)
			h.publish("ingest.commands.acme.XDM44", tt.body, tt.header)
			h.publish("ingest.commands.acme.XDM44", tt.body, tt.header)
			h.events.Terminal(t, "dup-1", 20*time.Second)
			// Give a second ingestion every chance to show up.
			time.Sleep(500 * time.Millisecond)
			h.publish("ingest.commands.acme.XDM44", tt.body, tt.header)
			time.Sleep(500 * time.Millisecond)
			if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
				t.Errorf("POSTs = %d, want 1", n)
			}
			if terminals := countTerminal(h.events.For("dup-1")); terminals != 1 {
				t.Errorf("terminal events = %d, want 1", terminals)
			}
			h.settled()
		})
	}
}

// TestRepublishedAfterItEnded: a command published again once its job
// ended, in a form the stream does not drop (the other accepted
// Nats-Msg-Id, as after the stream's duplicate window), finds the done
// record of its first job (which polled) with its first delivery's read,
// and is only acknowledged: no second POST, no second terminal event.
func TestRepublishedAfterItEnded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(300 * time.Millisecond)}})
	h.start(nil)
	h.publish("ingest.commands.acme.XDM44", `{"id":"again-1"}`, map[string]string{"Nats-Msg-Id": "acme:again-1"})
	h.events.Terminal(t, "again-1", 20*time.Second)
	h.publish("ingest.commands.acme.XDM44", `{"id":"again-1"}`, map[string]string{"Nats-Msg-Id": "again-1"})
	h.settled() // the republished command left the queue
	time.Sleep(300 * time.Millisecond)
	if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
		t.Errorf("POSTs = %d, want 1:%s", n, fmtCalls(h.sim.Calls()))
	}
	if terminals := countTerminal(h.events.For("again-1")); terminals != 1 {
		t.Errorf("terminal events = %d, want 1", terminals)
	}
}

// TestResumeAfterHandOff: a worker stopped while polling hands its job
// back; the next worker resumes polling the same request without a second
// POST.
func TestResumeAfterHandOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 9, Duration: campaignsim.Duration(1500 * time.Millisecond)}})
	first := h.start(nil)
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "handoff-1"})
	h.events.WaitFor(t, 20*time.Second, "triggered event", func(evs []testenv.Received) bool { return len(evs) > 0 })
	stopped := time.Now()
	first.stop(t)
	h.start(nil)
	ev := h.events.Terminal(t, "handoff-1", 20*time.Second)
	if ev.Type != ingest.EventSucceeded || ev.NumRecords != 9 {
		t.Fatalf("event %+v, want succeeded with 9 records", ev.Event)
	}
	if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
		t.Errorf("POSTs = %d, want 1:%s", n, fmtCalls(h.sim.Calls()))
	}
	// The second worker polled the first one's request.
	var resumed bool
	for _, c := range h.calls("acme", "XDM44", campaign.OpStatus) {
		if c.Time.After(stopped) && c.RequestID == ev.RequestID {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no status call for request %s after the hand-off:%s", ev.RequestID, fmtCalls(h.sim.Calls()))
	}
	h.settled()
}

// TestExhaustedDeliveries: a command whose last delivery went to a worker
// that died (here: a bare consumer that never acks) still ends in a failed
// event, from the server's max deliveries advisory, and leaves the queue.
func TestExhaustedDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44"})
	ctx := context.Background()
	bound, err := layout.Setup(ctx, h.js, layout.Topology{AckWait: 3 * time.Second, MaxDeliver: 2, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "lost-1"})
	for range 2 {
		batch, err := bound.Consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++ // taken, never acknowledged: the taker "died"
		}
		if n != 1 {
			t.Fatalf("fetched %d commands, want 1", n)
		}
	}
	h.start(func(c *worker.Config) { c.AckWait, c.MaxDeliver = 3*time.Second, 2 })
	ev := h.events.Terminal(t, "lost-1", 20*time.Second)
	if ev.Type != ingest.EventFailed || ev.Reason != ingest.ReasonAPIUnavailable || !strings.Contains(ev.Detail, "delivered 2 times") {
		t.Errorf("event %+v, want failed api_unavailable after 2 deliveries", ev.Event)
	}
	if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 0 {
		t.Errorf("POSTs = %d, want 0", n)
	}
	h.settled()
}
