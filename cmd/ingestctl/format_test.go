package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/publisher"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestEventFormats pins the readable line and the JSON line of events
// against testdata/events.golden.
func TestEventFormats(t *testing.T) {
	t.Parallel()
	at := func(s string) ingest.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ingest.Time(v)
	}
	events := []ingest.Event{
		{Type: ingest.EventTriggered, CommandID: "etl-1", CorrelationID: "run-42", Organization: "acme", MappingID: "XDM44",
			RequestID: "3520", Status: "Success", Attempt: 1, TriggeredAt: at("2026-12-01T02:00:00Z")},
		{Type: ingest.EventSucceeded, CommandID: "etl-1", CorrelationID: "run-42", Organization: "acme", MappingID: "XDM44",
			RequestID: "3520", Status: "Success", NumRecords: 15, Info: "Mapping Id: XDM44. ", Attempt: 1, Polls: 4,
			TriggeredAt: at("2026-12-01T02:00:00Z"), FinishedAt: at("2026-12-01T02:01:05.12Z")},
		{Type: ingest.EventFailed, CommandID: "etl 2", Organization: "acme", MappingID: "XDMUPLOAD", RequestID: "3521",
			Status: "Failed", ErrorCode: "ACP-880096", BatchID: "a27d800531ac4d95945a2bc234eb0d86", Reason: ingest.ReasonUploadFailed,
			Attempt: 2, FinishedAt: at("2026-12-01T03:00:00.5Z")},
		{Type: ingest.EventRejected, CommandID: "stream-7", Organization: "acme", MappingID: "XDM1", Reason: ingest.ReasonSubjectMismatch,
			Detail: `body names organization "globex", subject "acme"`, FinishedAt: at("2026-12-01T04:00:00Z")},
		{Type: ingest.EventTimedOut, CommandID: "etl-3", Organization: "acme", MappingID: "XDMNEVER", RequestID: "3522",
			Status: "In Progress", Reason: ingest.ReasonDeadlineExceeded, Attempt: 1, Polls: 30,
			TriggeredAt: at("2026-12-01T05:00:00Z"), FinishedAt: at("2026-12-01T11:00:00Z")},
	}
	var got strings.Builder
	for _, ev := range events {
		msg, err := publisher.EventMsg(ev)
		if err != nil {
			t.Fatal(err)
		}
		r := received{subject: msg.Subject, raw: msg.Data}
		if err := json.Unmarshal(msg.Data, &r.Event); err != nil {
			t.Fatal(err)
		}
		b, err := r.jsonLine()
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil || back["subject"] != msg.Subject || back["commandId"] != ev.CommandID {
			t.Errorf("JSON line %s does not read back with subject and body: %v", b, err)
		}
		got.WriteString(r.line() + "\n" + string(b) + "\n")
	}
	golden(t, "events.golden", got.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestJSONLineEdges: the subject goes first whatever the body.
func TestJSONLineEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want string
	}{
		{raw: `{"type":"failed"}`, want: `{"subject":"s.x","type":"failed"}`},
		{raw: " {\n \"type\" : \"failed\" }\n", want: `{"subject":"s.x","type":"failed"}`},
		{raw: `{}`, want: `{"subject":"s.x"}`},
		{raw: `[1]`, want: ""},
		{raw: `not json`, want: ""},
	}
	for _, tt := range tests {
		b, err := received{subject: "s.x", raw: []byte(tt.raw)}.jsonLine()
		if string(b) != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("jsonLine(%q) = %s, %v; want %s", tt.raw, b, err, tt.want)
		}
	}
}

// TestAge pins the human durations of the jobs table and the progress line.
func TestAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "-"},
		{0, "0s"},
		{1499 * time.Millisecond, "1s"},
		{59 * time.Second, "59s"},
		{61 * time.Second, "1m01s"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1h02m"},
		{47 * time.Hour, "47h00m"},
		{50 * time.Hour, "2d02h"},
	}
	for _, tt := range tests {
		if got := age(tt.d); got != tt.want {
			t.Errorf("age(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
