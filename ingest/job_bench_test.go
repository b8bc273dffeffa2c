package ingest_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
)

// nopJournal stores nothing.
type nopJournal struct{}

func (nopJournal) Triggered(context.Context, ingest.Event) func(time.Duration) error {
	return func(time.Duration) error { return nil }
}
func (nopJournal) Progress(context.Context, ingest.Record) error { return nil }

// BenchmarkRunnerRun runs a job's state transitions (trigger, first status
// check, outcome) against the simulator over real HTTP on loopback, with a
// journal that stores nothing: the job's own cost plus two HTTP round
// trips.
func BenchmarkRunnerRun(b *testing.B) {
	sim := campaignsim.New(campaignsim.Options{CallLogLimit: 1024, RequestLimit: 1024})
	sim.PutMapping(campaignsim.Mapping{Org: "acme", ID: "INSTANT", Script: campaignsim.Script{Records: 15}})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	api, err := campaign.New(campaign.Config{
		BaseURL: srv.URL,
		IMS:     campaign.IMSConfig{TokenURL: srv.URL + "/ims/token/v3", ClientID: campaignsim.DemoClientID, ClientSecret: campaignsim.DemoClientSecret},
	})
	if err != nil {
		b.Fatal(err)
	}
	r := ingest.NewRunner(api, ingest.Config{})
	ctx := context.Background()
	published := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		res := r.Run(ctx, nopJournal{}, ingest.Job{
			Command:   ingest.Command{ID: fmt.Sprint("bench-", i), Organization: "acme", MappingID: "INSTANT"},
			Published: published, Delivery: 1,
		})
		if res.Event == nil || res.Event.Type != ingest.EventSucceeded {
			b.Fatalf("job ended with %+v", res)
		}
	}
}
