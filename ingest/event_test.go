package ingest

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestEventJSON pins the event body of the contract.
func TestEventJSON(t *testing.T) {
	ev := Event{
		Type: EventSucceeded, CommandID: "etl-2026-12-01-profiles", CorrelationID: "etl-run-42",
		Organization: "acme", MappingID: "XDM44", RequestID: "3520", Status: "Success", NumRecords: 15,
		Info: "Mapping Id: XDM44. ", Attempt: 1, Polls: 4,
		TriggeredAt: Time(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)),
		FinishedAt:  Time(time.Date(2026, 12, 1, 2, 1, 5, 120_000_000, time.UTC)),
	}
	got, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "event_succeeded.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Errorf("event JSON:\n%s\nwant (%s):\n%s", got, golden, want)
	}
	var back Event
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !time.Time(back.FinishedAt).Equal(time.Time(ev.FinishedAt)) || back.RequestID != "3520" {
		t.Errorf("round trip: %+v", back)
	}
}

func TestEventSubjectAndMsgID(t *testing.T) {
	tests := []struct {
		ev          Event
		subject, id string
	}{
		{ev: Event{Type: EventTriggered, CommandID: "c1", Organization: "acme", MappingID: "XDM44", Attempt: 2},
			subject: "ingest.events.acme.XDM44.triggered", id: "c1:triggered:2"},
		{ev: Event{Type: EventSucceeded, CommandID: "c1", Organization: "acme", MappingID: "XDM44"},
			subject: "ingest.events.acme.XDM44.succeeded", id: "c1:terminal"},
		{ev: Event{Type: EventTimedOut, CommandID: "c1", Organization: "acme", MappingID: "XDM44"},
			subject: "ingest.events.acme.XDM44.timed_out", id: "c1:terminal"},
		{ev: Event{Type: EventRejected, CommandID: "c2", Organization: "ACME", MappingID: "a.b"},
			subject: "ingest.events._._.rejected", id: "c2:terminal"},
		{ev: Event{Type: EventRejected, CommandID: "c3"},
			subject: "ingest.events._._.rejected", id: "c3:terminal"},
	}
	for _, tt := range tests {
		if got := tt.ev.Subject(); got != tt.subject {
			t.Errorf("Subject() = %q, want %q", got, tt.subject)
		}
		if got := tt.ev.MsgID(); got != tt.id {
			t.Errorf("MsgID() = %q, want %q", got, tt.id)
		}
	}
}

func TestRecordKey(t *testing.T) {
	tests := []struct{ id, key string }{
		{id: "etl-2026-12-01", key: "etl-2026-12-01"},
		{id: "INGEST_COMMANDS-42", key: "INGEST_COMMANDS-42"},
		{id: "a.b", key: "a.b"},
		{id: "a..b", key: "b64.YS4uYg"},
		{id: "a.", key: "b64.YS4"},
		{id: ".a", key: "b64.LmE"},
		{id: "with space", key: "b64.d2l0aCBzcGFjZQ"},
		{id: "ünï", key: "b64.w7xuw68"},
		{id: "a*b>", key: "b64.YSpiPg"},
	}
	for _, tt := range tests {
		if got := RecordKey(tt.id); got != tt.key {
			t.Errorf("RecordKey(%q) = %q, want %q", tt.id, got, tt.key)
		}
	}
}
