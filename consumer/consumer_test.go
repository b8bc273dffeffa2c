package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/oauth2"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/consumer"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/metrics"
	"github.com/acme/campaign-ingest/publisher"
)

// world is a consumer's surroundings in a test: an embedded server with
// the streams and bucket, its events recorded, and the simulator with its
// Campaign client (a token issued beforehand).
type world struct {
	js     jetstream.JetStream
	events *testenv.Events
	sim    *campaignsim.Server
	client *campaign.Client
	bound  *layout.Handles
}

func newWorld(t *testing.T, mappings ...campaignsim.Mapping) *world {
	t.Helper()
	ns := testenv.NATS(t)
	_, js := testenv.Connect(t, ns.ClientURL())
	w := &world{js: js, events: testenv.RecordEvents(t, js)}
	var simURL string
	w.sim, simURL = testenv.Simulator(t, mappings...)
	tok, err := w.sim.IssueToken(campaignsim.DemoClientID)
	if err != nil {
		t.Fatal(err)
	}
	if w.client, err = campaign.New(campaign.Config{BaseURL: simURL, APIKey: campaignsim.DemoClientID,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})}); err != nil {
		t.Fatal(err)
	}
	if w.bound, err = layout.Setup(t.Context(), js, layout.Topology{AckWait: 3 * time.Second, Create: true}); err != nil {
		t.Fatal(err)
	}
	return w
}

// consumer is a consumer of w running jobs through api, polling every
// 10 ms.
func (w *world) consumer(api ingest.API, m *metrics.Metrics, cfg consumer.Config) *consumer.Consumer {
	runner := ingest.NewRunner(api, ingest.Config{Schedule: ingest.Schedule{Initial: 10 * time.Millisecond}})
	return consumer.New(w.bound, publisher.New(w.js), runner, m, nil, cfg)
}

// panicOnce is the Campaign client with a bug that bites once.
type panicOnce struct {
	ingest.API
	bitten atomic.Bool
}

func (p *panicOnce) Trigger(ctx context.Context, org, mapping string) (campaign.TriggerResponse, error) {
	if p.bitten.CompareAndSwap(false, true) {
		panic("a bug in the job")
	}
	return p.API.Trigger(ctx, org, mapping)
}

// TestPanicIsRecovered: a panic in a job is recovered, the command handed
// back, and its redelivery ends normally.
func TestPanicIsRecovered(t *testing.T) {
	w := newWorld(t, campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 3}})
	js, events, sim := w.js, w.events, w.sim
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := metrics.New(prometheus.NewRegistry(), "test")
	c := w.consumer(&panicOnce{API: w.client}, m, consumer.Config{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	if _, err := publisher.PublishCommand(ctx, js, ingest.Command{ID: "p-1", Organization: "acme", MappingID: "XDM44"}); err != nil {
		t.Fatal(err)
	}
	ev := events.Terminal(t, "p-1", 20*time.Second)
	if ev.Type != ingest.EventSucceeded {
		t.Errorf("event %+v, want succeeded", ev.Event)
	}
	if got := testutil.ToFloat64(m.Naks.WithLabelValues("panic")); got != 1 {
		t.Errorf("naks_total{panic} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("redelivery")); got != 1 {
		t.Errorf("deliveries_total{redelivery} = %v, want 1", got)
	}
	if n := len(testenv.Calls(sim, "acme", "XDM44", campaign.OpTrigger)); n != 1 {
		t.Errorf("POSTs = %d, want 1", n)
	}
}

// concurrentTriggers is the Campaign client counting the triggers in
// progress at once; each takes a few milliseconds.
type concurrentTriggers struct {
	ingest.API
	now, most atomic.Int64
}

func (c *concurrentTriggers) Trigger(ctx context.Context, org, mapping string) (campaign.TriggerResponse, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	time.Sleep(5 * time.Millisecond)
	return c.API.Trigger(ctx, org, mapping)
}

// TestFirstStepsAreBounded: a burst of commands larger than MaxStarting
// makes at most MaxStarting first steps at once, and every command ends.
func TestFirstStepsAreBounded(t *testing.T) {
	const commands, maxStarting = 20, 3
	var mappings []campaignsim.Mapping
	for i := range commands {
		mappings = append(mappings, campaignsim.Mapping{Org: "acme", ID: fmt.Sprintf("M%02d", i), Script: campaignsim.Script{Records: 1}})
	}
	w := newWorld(t, mappings...)
	js, events := w.js, w.events
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := &concurrentTriggers{API: w.client}
	c := w.consumer(api, nil, consumer.Config{MaxInFlight: commands, MaxStarting: maxStarting})
	for _, m := range mappings {
		if _, err := publisher.PublishCommand(ctx, js, ingest.Command{ID: "c-" + m.ID, Organization: "acme", MappingID: m.ID}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	for _, m := range mappings {
		if ev := events.Terminal(t, "c-"+m.ID, 20*time.Second); ev.Type != ingest.EventSucceeded {
			t.Errorf("event %+v, want succeeded", ev.Event)
		}
	}
	if most := api.most.Load(); most > maxStarting || most < 1 {
		t.Errorf("at most %d triggers at once, want 1 to %d", most, maxStarting)
	}
}
