package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
	"github.com/acme/campaign-ingest/worker"
)

// TestRecoverFromTriggeredEvent: a worker died after its POST and its
// triggered event, before any state write. The redelivery finds no record,
// reads the command's triggered event, and resumes that request: no second
// POST, even though the ingestion ended before the redelivery (a POST then
// would have started a second ingestion).
func TestRecoverFromTriggeredEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 4, Duration: campaignsim.Duration(time.Second)}})
	ctx := context.Background()
	bound, err := layout.Setup(ctx, h.js, layout.Topology{AckWait: 3 * time.Second, MaxDeliver: 5, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "died-1"})
	// The "dead" worker: takes the command, POSTs, publishes the
	// triggered event, and never acks.
	batch, err := bound.Consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var cmd ingest.Command
	for m := range batch.Messages() {
		if cmd, err = ingest.ParseCommand(layout.Envelope(m.Subject(), m.Headers().Get, "INGEST_COMMANDS", 1), m.Data()); err != nil {
			t.Fatal(err)
		}
	}
	requestID := triggerDirectly(t, h, "acme", "XDM44")
	ev := ingest.NewEvent(ingest.EventTriggered, cmd)
	ev.RequestID, ev.Attempt, ev.Status, ev.TriggeredAt = requestID, 1, "Success", ingest.Time(time.Now())
	if _, err := publisher.New(h.js).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}

	h.start(func(c *worker.Config) { c.AckWait, c.MaxDeliver = 3*time.Second, 5 })
	got := h.events.Terminal(t, "died-1", 20*time.Second)
	if got.Type != ingest.EventSucceeded || got.RequestID != requestID || got.NumRecords != 4 {
		t.Errorf("event %+v, want succeeded for the dead worker's request %s", got.Event, requestID)
	}
	if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
		t.Errorf("POSTs = %d, want 1 (the dead worker's):%s", n, fmtCalls(h.sim.Calls()))
	}
	h.settled()
}
