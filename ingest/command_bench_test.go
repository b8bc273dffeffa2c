package ingest

import "testing"

// BenchmarkParseCommand decodes and validates a command as the consumer
// does for every delivery.
func BenchmarkParseCommand(b *testing.B) {
	benchmarks := []struct {
		name string
		env  Envelope
		body string
	}{
		{"empty body", testEnvelope("ingest.commands.acme.XDM44", "etl-2026-12-01-profiles", ""), ""},
		{"full body", testEnvelope("ingest.commands.acme.XDM44", "etl-2026-12-01-profiles", ""),
			`{"id":"etl-2026-12-01-profiles","organization":"acme","mappingId":"XDM44","correlationId":"etl-run-42","timeout":"2h"}`},
		{"rejected", testEnvelope("ingest.commands.acme.XDM44", "x", ""), `{"organization":"other"}`},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			body := []byte(bm.body)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ParseCommand(bm.env, body)
			}
		})
	}
}
