package publisher

import (
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// BenchmarkEventMsg encodes a terminal event with its CloudEvents headers,
// as the worker does for every triggered and terminal event.
func BenchmarkEventMsg(b *testing.B) {
	at := time.Date(2026, 12, 1, 2, 1, 5, 120e6, time.UTC)
	ev := ingest.Event{
		Type: ingest.EventSucceeded, CommandID: "etl-2026-12-01-profiles", CorrelationID: "etl-run-42",
		Organization: "acme", MappingID: "XDM44", RequestID: "3520", Status: "Success", NumRecords: 15,
		Info: "Mapping Id: XDM44. ", Attempt: 1, Polls: 4,
		TriggeredAt: ingest.Time(at.Add(-time.Minute)), FinishedAt: ingest.Time(at),
		Trace: ingest.Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EventMsg(ev); err != nil {
			b.Fatal(err)
		}
	}
}
