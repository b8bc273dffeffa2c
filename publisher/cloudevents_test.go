package publisher_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// TestCloudEventsBinding: an event, as stored in INGEST_EVENTS, decodes
// with the CloudEvents Go SDK's NATS JetStream binding into the CloudEvent
// the contract describes.
func TestCloudEventsBinding(t *testing.T) {
	ns := testenv.NATS(t)
	_, js := testenv.Connect(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, layout.EventStreamConfig(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	finished := time.Date(2026, 12, 1, 2, 1, 5, 120_000_000, time.UTC)
	ev := ingest.Event{
		Type: ingest.EventSucceeded, CommandID: "etl-1", Organization: "acme", MappingID: "XDM44",
		RequestID: "3520", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 2,
		FinishedAt: ingest.Time(finished),
		Trace:      ingest.ParseTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""),
	}
	if _, err := publisher.New(js).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := cejs.NewMessage(natsMsg(stored))
	if enc := msg.ReadEncoding(); enc != binding.EncodingBinary {
		t.Fatalf("encoding %v, want binary", enc)
	}
	ce, err := binding.ToEvent(ctx, msg)
	if err != nil {
		t.Fatalf("the binding cannot decode the event: %v", err)
	}
	want := map[string]string{
		"specversion":     "1.0",
		"id":              "acme:etl-1:terminal",
		"source":          "/campaign/acme/mappings/XDM44",
		"type":            "campaign.ingestion.succeeded",
		"subject":         "etl-1",
		"datacontenttype": "application/json",
		"time":            finished.Format(time.RFC3339Nano),
	}
	got := map[string]string{
		"specversion": ce.SpecVersion(), "id": ce.ID(), "source": ce.Source(), "type": ce.Type(),
		"subject": ce.Subject(), "datacontenttype": ce.DataContentType(), "time": ce.Time().UTC().Format(time.RFC3339Nano),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	var data ingest.Event
	if err := json.Unmarshal(ce.Data(), &data); err != nil || data.RequestID != "3520" || data.NumRecords != 15 {
		t.Errorf("data %s (%v), want the event's JSON body", ce.Data(), err)
	}
	if err := ce.Validate(); err != nil {
		t.Errorf("the CloudEvent is not valid: %v", err)
	}
}

// natsMsg is the core NATS message of a stored JetStream message, as the
// binding takes it.
func natsMsg(m jetstream.Msg) *nats.Msg {
	return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
}
