package layout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// TestRecover: a redelivery's record is rebuilt from its own organization's
// events on its mapping, and a read of the events that ends before the
// last event the stream's leader has (a consumer on a lagging replica, or
// one that got no answer) fails instead of telling "no events".
func TestRecover(t *testing.T) {
	_, _, js, h := newTopology(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store := layout.NewStore(h.Jobs, js)
	published := time.Now()
	pub := publisher.New(js)
	for _, ev := range []ingest.Event{
		{Type: ingest.EventTriggered, CommandID: "a", Organization: "acme", MappingID: "XDM44", RequestID: "r1", Attempt: 1},
		{Type: ingest.EventSucceeded, CommandID: "b", Organization: "acme", MappingID: "XDM44", RequestID: "r2", Attempt: 1},
		{Type: ingest.EventSucceeded, CommandID: "a", Organization: "globex", MappingID: "XDM44", RequestID: "r3", Attempt: 1},
	} {
		ev.FinishedAt = ingest.Time(time.Now())
		if _, err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	cmd := func(org, id string) ingest.Command {
		return ingest.Command{ID: id, Organization: org, MappingID: "XDM44"}
	}

	tests := []struct {
		name      string
		cmd       ingest.Command
		since     time.Time
		wantPhase ingest.Phase // "": no record
		wantReq   string
	}{
		{name: "triggered, a later event of another command on the mapping", cmd: cmd("acme", "a"), since: published, wantPhase: ingest.PhaseRunning, wantReq: "r1"},
		{name: "done", cmd: cmd("acme", "b"), since: published, wantPhase: ingest.PhaseDone, wantReq: "r2"},
		{name: "another organization's command with the same id", cmd: cmd("globex", "a"), since: published, wantPhase: ingest.PhaseDone, wantReq: "r3"},
		{name: "no events of its own", cmd: cmd("acme", "never"), since: published},
		{name: "no events since it was published", cmd: cmd("acme", "a"), since: time.Now().Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := store.Recover(ctx, tt.cmd, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantPhase == "" && rec != nil:
				t.Fatalf("record %+v, want none", rec)
			case tt.wantPhase == "":
			case rec == nil:
				t.Fatalf("no record, want %s with request %s", tt.wantPhase, tt.wantReq)
			case rec.Phase != tt.wantPhase || rec.RequestID != tt.wantReq:
				t.Fatalf("record %s with request %s, want %s with %s", rec.Phase, rec.RequestID, tt.wantPhase, tt.wantReq)
			}
		})
	}

	t.Run("a read behind the leader", func(t *testing.T) {
		_, err := layout.RecoverFromEvents(ctx, js, cmd("acme", "a"), published, 1000)
		if !errors.Is(err, layout.ErrEventsBehind) {
			t.Fatalf("err %v, want ErrEventsBehind", err)
		}
	})
}
