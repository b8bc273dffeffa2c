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
