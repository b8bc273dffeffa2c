package layout

import (
	"strings"
	"testing"

	"github.com/acme/campaign-ingest/ingest"
)

func TestEventSubjectAndMsgID(t *testing.T) {
	tests := []struct {
		ev          ingest.Event
		subject, id string
	}{
		{ev: ingest.Event{Type: ingest.EventTriggered, CommandID: "c1", Organization: "acme", MappingID: "XDM44", Attempt: 2},
			subject: "ingest.events.acme.XDM44.triggered", id: "acme:c1:triggered:2"},
		{ev: ingest.Event{Type: ingest.EventSucceeded, CommandID: "c1", Organization: "acme", MappingID: "XDM44"},
			subject: "ingest.events.acme.XDM44.succeeded", id: "acme:c1:terminal"},
		{ev: ingest.Event{Type: ingest.EventSucceeded, CommandID: "c1", Organization: "globex", MappingID: "XDM44"},
			subject: "ingest.events.globex.XDM44.succeeded", id: "globex:c1:terminal"},
		{ev: ingest.Event{Type: ingest.EventTimedOut, CommandID: "c1", Organization: "acme", MappingID: "XDM44"},
			subject: "ingest.events.acme.XDM44.timed_out", id: "acme:c1:terminal"},
		{ev: ingest.Event{Type: ingest.EventRejected, CommandID: "c2", Organization: "ACME", MappingID: "a.b"},
			subject: "ingest.events._._.rejected", id: "_QUNNRQ:c2:terminal"},
		{ev: ingest.Event{Type: ingest.EventRejected, CommandID: "c3"},
			subject: "ingest.events._._.rejected", id: "_:c3:terminal"},
	}
	for _, tt := range tests {
		if got := EventSubject(tt.ev); got != tt.subject {
			t.Errorf("EventSubject(%+v) = %q, want %q", tt.ev, got, tt.subject)
		}
		if got := EventMsgID(tt.ev); got != tt.id {
			t.Errorf("EventMsgID(%+v) = %q, want %q", tt.ev, got, tt.id)
		}
	}
}

func TestRecordKey(t *testing.T) {
	tests := []struct{ org, id, key string }{
		{org: "acme", id: "etl-2026-12-01", key: "acme.etl-2026-12-01"},
		{org: "globex", id: "etl-2026-12-01", key: "globex.etl-2026-12-01"},
		{org: "acme", id: "INGEST_COMMANDS-42", key: "acme.INGEST_COMMANDS-42"},
		{org: "acme", id: "a.b", key: "acme.a.b"},
		{org: "acme", id: "a..b", key: "acme.b64.YS4uYg"},
		{org: "acme", id: "a.", key: "acme.b64.YS4"},
		{org: "acme", id: ".a", key: "acme.b64.LmE"},
		{org: "acme", id: "with space", key: "acme.b64.d2l0aCBzcGFjZQ"},
		{org: "acme", id: "ünï", key: "acme.b64.w7xuw68"},
		{org: "acme", id: "a*b>", key: "acme.b64.YSpiPg"},
		// A plain id that looks encoded is encoded, so it cannot meet the
		// key of the id it looks like ("a" is "b64.YQ").
		{org: "acme", id: "b64.YQ", key: "acme.b64.YjY0LllR"},
		{org: "acme", id: strings.Repeat("x", 201), key: "acme.b64." + strings.Repeat("eHh4", 67)},
	}
	for _, tt := range tests {
		if got := RecordKey(tt.org, tt.id); got != tt.key {
			t.Errorf("RecordKey(%q, %q) = %q, want %q", tt.org, tt.id, got, tt.key)
		}
	}
}

func TestSplitCommandSubject(t *testing.T) {
	tests := []struct {
		subject, org, mapping string
		ok                    bool
	}{
		{"ingest.commands.acme.XDM44", "acme", "XDM44", true},
		{"ingest.commands.ACME.x y", "ACME", "x y", true}, // tokens are validated by ingest
		{"ingest.commands.acme", "", "", false},
		{"ingest.commands.acme.XDM44.extra", "", "", false},
		{"ingest.events.acme.XDM44", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		org, mapping, ok := SplitCommandSubject(tt.subject)
		if org != tt.org || mapping != tt.mapping || ok != tt.ok {
			t.Errorf("SplitCommandSubject(%q) = %q, %q, %v; want %q, %q, %v", tt.subject, org, mapping, ok, tt.org, tt.mapping, tt.ok)
		}
	}
}
