package blackbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The binaries, built once by TestMain. The first run compiles nats-server
// and the nats CLI (a few minutes on a small machine: run it with
// -timeout 20m); later runs find them up to date.
var (
	binaries bins
	buildErr error // nats-server or ingest-worker did not build: tests fail
	cliErr   error // the nats CLI did not build: tests skip
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	binaries, buildErr, cliErr = buildBinaries(ctx)
	cancel()
	os.Exit(m.Run())
}

func needBinaries(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	statSources(t, binaries.root)
	if cliErr != nil {
		t.Skipf("the nats CLI (%s) could not be built, so the black-box tests cannot run: %v", natsCLIVersion, cliErr)
	}
}

// event is an event as read back from INGEST_EVENTS.
type event struct {
	Subject       string
	Header        map[string][]string
	Type          string `json:"type"`
	CommandID     string `json:"commandId"`
	CorrelationID string `json:"correlationId"`
	Organization  string `json:"organization"`
	MappingID     string `json:"mappingId"`
	Reason        string `json:"reason"`
	Detail        string `json:"detail"`
	NumRecords    int64  `json:"numRecords"`
}

func (e event) terminal() bool { return e.Type != "triggered" }

// TestBlackBoxTenants runs a real nats-server and ingest-worker (with its
// simulator) and drives them with the nats CLI only: two tenants reuse one
// command id, one names the other's scoped Nats-Msg-Id, a 30 KB id in the
// body and in the header, commands on invalid subjects, then a normal
// command. Each command ends in one terminal event, stored on its own
// tenant's subject (or "_" for an invalid organization); the simulator saw
// the POSTs of the valid commands only, each on its own tenant's mapping;
// nothing is left in the work queue or redelivered; the worker stays
// healthy.
func TestBlackBoxTenants(t *testing.T) {
	needBinaries(t)
	s := startSystem(t, binaries)
	s.putMappings(`[
		{"organization":"acme","mappingId":"BB","script":{"polls":1,"records":3}},
		{"organization":"globex","mappingId":"BB","script":{"polls":1,"records":7}},
		{"organization":"acme","mappingId":"NEXT","script":{"polls":1,"records":1}}
	]`)
	big := strings.Repeat("x", 30<<10)
	type want struct {
		typ, reason, subject string
		id                   string // "" = the fallback id INGEST_COMMANDS-<seq>
		orFallback           bool   // id, or the fallback id
		records              int64
	}
	tests := []struct {
		name          string
		subject, body string
		headers       []string
		want          want
	}{
		{name: "acme shared-1, its scoped header", subject: "ingest.commands.acme.BB", body: `{"id":"shared-1"}`, headers: []string{"Nats-Msg-Id:acme:shared-1"},
			want: want{typ: "succeeded", subject: "ingest.events.acme.BB.succeeded", id: "shared-1", records: 3}},
		{name: "globex shared-1, its scoped header", subject: "ingest.commands.globex.BB", body: `{"id":"shared-1"}`, headers: []string{"Nats-Msg-Id:globex:shared-1"},
			want: want{typ: "succeeded", subject: "ingest.events.globex.BB.succeeded", id: "shared-1", records: 7}},
		{name: "globex shared-2 with acme's scoped header", subject: "ingest.commands.globex.BB", body: `{"id":"shared-2"}`, headers: []string{"Nats-Msg-Id:acme:shared-2"},
			want: want{typ: "rejected", reason: "subject_mismatch", subject: "ingest.events.globex.BB.rejected", id: "shared-2"}},
		{name: "acme shared-2, no header", subject: "ingest.commands.acme.BB", body: `{"id":"shared-2"}`,
			want: want{typ: "succeeded", subject: "ingest.events.acme.BB.succeeded", id: "shared-2", records: 3}},
		{name: "30 KB body id", subject: "ingest.commands.acme.BB", body: `{"id":"` + big + `"}`,
			want: want{typ: "rejected", reason: "invalid_command", subject: "ingest.events.acme.BB.rejected"}},
		{name: "30 KB Nats-Msg-Id", subject: "ingest.commands.acme.BB", body: "", headers: []string{"Nats-Msg-Id:" + big},
			want: want{typ: "rejected", reason: "invalid_command", subject: "ingest.events.acme.BB.rejected"}},
		{name: "invalid organization", subject: "ingest.commands.ACME.BB", body: `{"id":"bad-org"}`,
			want: want{typ: "rejected", reason: "invalid_command", subject: "ingest.events._.BB.rejected", id: "bad-org", orFallback: true}},
		{name: "invalid mapping", subject: "ingest.commands.acme.B$B", body: `{"id":"bad-mapping"}`,
			want: want{typ: "rejected", reason: "invalid_command", subject: "ingest.events.acme._.rejected", id: "bad-mapping"}},
	}
	ids := make([][]string, len(tests))
	for i, tt := range tests {
		seq := s.publish(tt.subject, tt.body, tt.headers...)
		fallback := fmt.Sprintf("INGEST_COMMANDS-%d", seq)
		switch {
		case tt.want.id == "":
			ids[i] = []string{fallback}
		case tt.want.orFallback:
			ids[i] = []string{tt.want.id, fallback}
		default:
			ids[i] = []string{tt.want.id}
		}
	}
	s.drained()
	posts := s.posts()
	s.publish("ingest.commands.acme.NEXT", `{"id":"next-valid"}`)
	var events []event
	waitFor(t, 30*time.Second, "terminal event of the next valid command", func() bool {
		events = readEvents(t, s)
		for _, ev := range events {
			if ev.CommandID == "next-valid" && ev.terminal() {
				if ev.Type != "succeeded" || ev.Subject != "ingest.events.acme.NEXT.succeeded" {
					t.Errorf("next valid command: %s/%s on %s, want succeeded on ingest.events.acme.NEXT.succeeded", ev.Type, ev.Reason, ev.Subject)
				}
				return true
			}
		}
		return false
	})
	s.drained()

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var terminal []event
			for _, ev := range events {
				if slices.Contains(ids[i], ev.CommandID) && ev.terminal() && strings.HasPrefix(ev.Subject, strings.TrimSuffix(tt.want.subject, tt.want.typ)) {
					terminal = append(terminal, ev)
				}
			}
			if len(terminal) != 1 {
				t.Fatalf("%d terminal events of %.64q on its tenant's subjects, want 1; all events:%s", len(terminal), ids[i], fmtEvents(events))
			}
			ev := terminal[0]
			if ev.Subject != tt.want.subject || ev.Type != tt.want.typ || ev.Reason != tt.want.reason {
				t.Errorf("%s/%s on %s, want %s/%s on %s (detail %q)", ev.Type, ev.Reason, ev.Subject, tt.want.typ, tt.want.reason, tt.want.subject, ev.Detail)
			}
			if tt.want.typ == "succeeded" && ev.NumRecords != tt.want.records {
				t.Errorf("%d records, want %d: another tenant's mapping ran", ev.NumRecords, tt.want.records)
			}
		})
	}
	terminal := 0
	for _, ev := range events {
		checkHeaders(t, ev)
		if ev.terminal() {
			terminal++
		}
	}
	if terminal != len(tests)+1 {
		t.Errorf("%d terminal events stored, want %d (one per command):%s", terminal, len(tests)+1, fmtEvents(events))
	}
	if got, want := fmt.Sprint(posts), fmt.Sprint(map[string]int{"acme/BB": 2, "globex/BB": 1}); got != want {
		t.Errorf("POSTs before the next command: %s, want %s", got, want)
	}
	var ci consumerInfo
	s.jsonInfo(&ci, "consumer", "info", "INGEST_COMMANDS", "ingest-worker")
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.NumRedelivered != 0 {
		t.Errorf("consumer: %d pending, %d unacknowledged, %d redelivered; want none", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	}
	_, metrics, err := httpGet(s.httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^campaign_ingest_deliveries_total\{kind="redelivery"\} (\S+)$`).FindStringSubmatch(metrics); m != nil && m[1] != "0" {
		t.Errorf("%s redeliveries, want none", m[1])
	}
	if m := regexp.MustCompile(`(?m)^campaign_ingest_deliveries_total\{kind="first"\} (\S+)$`).FindStringSubmatch(metrics); m == nil || m[1] != fmt.Sprint(len(tests)+1) {
		t.Errorf("first deliveries %v, want %d", m, len(tests)+1)
	}
	if code, body, err := httpGet(s.httpBase + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	// SIGTERM: a graceful stop, exit status 0.
	s.worker.stop()
	if _, err := s.worker.exited(); err != nil {
		t.Errorf("ingest-worker stopped by SIGTERM: %v, want exit status 0", err)
	}
}

// readEvents reads INGEST_EVENTS with the nats CLI and decodes each event.
func readEvents(t *testing.T, s *system) []event {
	t.Helper()
	var out []event
	for _, m := range s.events() {
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("event on %s is not JSON: %v", m.Subject, err)
		}
		ev.Subject, ev.Header = m.Subject, m.Header
		out = append(out, ev)
	}
	return out
}

// checkHeaders checks that an event's headers are bounded.
func checkHeaders(t *testing.T, ev event) {
	t.Helper()
	block := len("NATS/1.0\r\n\r\n")
	for k, vs := range ev.Header {
		for _, v := range vs {
			block += len(k) + len(v) + 4
			if len(v) > 512 || strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("event on %s: header %s of %d bytes: %.80q", ev.Subject, k, len(v), v)
			}
		}
	}
	if block >= 8<<10 {
		t.Errorf("event on %s: header block of %d bytes", ev.Subject, block)
	}
	if len(ev.CommandID) > 256 || len(ev.CorrelationID) > 256 {
		t.Errorf("event on %s: command id of %d bytes, correlation id of %d", ev.Subject, len(ev.CommandID), len(ev.CorrelationID))
	}
}

func fmtEvents(evs []event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s/%s id=%.64q", ev.Subject, ev.Type, ev.Reason, ev.CommandID)
	}
	return b.String()
}
