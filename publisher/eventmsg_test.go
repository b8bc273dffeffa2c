package publisher

import (
	"testing"

	"github.com/acme/campaign-ingest/ingest"
)

// TestEventMsgHeadersFit: an event with every optional header has exactly
// maxEventHeaders headers, the size its header map is made with.
func TestEventMsgHeadersFit(t *testing.T) {
	ev := ingest.Event{
		Type: ingest.EventTriggered, CommandID: "etl-1", Organization: "acme", MappingID: "XDM44",
		Trace: ingest.ParseTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=1"),
	}
	msg, err := EventMsg(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Header) != maxEventHeaders {
		t.Fatalf("%d headers, want maxEventHeaders (%d): %v", len(msg.Header), maxEventHeaders, msg.Header)
	}
}
