package reliability_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/reliability"
)

// Retry budgets of TestAPIFaults: calls of one operation within a delivery,
// and deliveries. A permanently failing operation is called at most
// apiRetries*maxDeliver times.
const (
	apiRetries = 3
	maxDeliver = 3
	apiTimeout = time.Second
)

// TestAPIFaults is the fault matrix: each row injects faults of the
// simulator on one mapping and runs one command on it, all rows at once on
// one worker process. Every command ends once, correctly classified;
// nothing stays in the work queue; no operation is called more than its
// budget; a Retry-After is honoured to the second.
func TestAPIFaults(t *testing.T) {
	t.Parallel()
	const budget = apiRetries * maxDeliver
	tests := []struct {
		name   string
		faults []campaignsim.Fault // Mapping is set by the test
		want   ingest.EventType
		reason ingest.Reason
		// requests is how many ingestion requests the mapping gets; default 1.
		requests int
		// retryAfter, if set, is the least gap after each throttled call.
		retryAfter time.Duration
		// replayed: net/http's Transport replays an idempotent GET, unseen
		// by the client, when a reused keep-alive connection is closed
		// without an answer, once per idle connection it tries. The API then
		// sees more calls than the budget; only logged (a known gap, see
		// README.md "Known gaps").
		replayed bool
	}{
		{
			name:   "latency beyond the client timeout, twice",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultLatency, Latency: apiTimeout + 500*time.Millisecond, Count: 2}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "latency beyond the client timeout, always",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultLatency, Latency: apiTimeout + 500*time.Millisecond}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable,
		},
		{
			name:   "503 burst longer than one delivery's retries",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 503, Count: apiRetries + 1}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "503 on every POST",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 503}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable, requests: -1,
		},
		{
			name:   "502 on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 502}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable,
		},
		{
			name:   "500 check your URI on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 500}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIError,
		},
		{
			name:   "429 with Retry-After once",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, RetryAfter: 2 * time.Second, Count: 1}},
			want:   ingest.EventSucceeded, retryAfter: 2 * time.Second,
		},
		{
			name:   "429 on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable, retryAfter: time.Second,
		},
		{
			name:   "429 on the POST",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Count: 2}},
			want:   ingest.EventSucceeded, retryAfter: time.Second,
		},
		{
			name:   "dropped status answers",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultDrop, Count: 2}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "dropped connection on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultDrop}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable, replayed: true,
		},
		{
			name:   "POST answer dropped after the request was submitted",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultDrop, Count: 1, AfterProcessing: true}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "POST answer malformed after the request was submitted",
			faults: []campaignsim.Fault{{Op: campaign.OpTrigger, Kind: campaignsim.FaultMalformed, Count: 1, AfterProcessing: true}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "malformed status answers",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultMalformed, Count: 2}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "malformed on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultMalformed}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable,
		},
		{
			name:   "oversized status answer",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultOversized, Count: 1}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "oversized on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultOversized}},
			want:   ingest.EventFailed, reason: ingest.ReasonAPIUnavailable,
		},
		{
			name:   "unauthorized once mid-run",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultUnauthorized, Count: 1}},
			want:   ingest.EventSucceeded,
		},
		{
			name:   "unauthorized on every status call",
			faults: []campaignsim.Fault{{Op: campaign.OpStatus, Kind: campaignsim.FaultUnauthorized}},
			want:   ingest.EventFailed, reason: ingest.ReasonUnauthorized,
		},
	}
	ns, err := reliability.StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	var cmds []ingest.Command
	var mappings []campaignsim.Mapping
	for i := range tests {
		c := ingest.Command{ID: fmt.Sprintf("fault-%02d", i), Organization: reliability.Org, MappingID: fmt.Sprintf("F%02d", i)}
		cmds = append(cmds, c)
		mappings = append(mappings, campaignsim.Mapping{Org: c.Organization, ID: c.MappingID, Script: campaignsim.Script{Records: 5, Polls: 2}})
	}
	r := newRig(t, ns.URL(), mappings,
		"INGEST_API_RETRIES="+strconv.Itoa(apiRetries), "INGEST_MAX_DELIVER="+strconv.Itoa(maxDeliver),
		"INGEST_API_TIMEOUT="+apiTimeout.String())
	for i, tt := range tests {
		for _, f := range tt.faults {
			f.Org, f.Mapping = cmds[i].Organization, cmds[i].MappingID
			r.api.Sim.InjectFault(f)
		}
	}
	r.start()
	r.publish(cmds)
	if err := reliability.WaitDrained(context.Background(), r.js, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	evs, err := reliability.ReadEvents(context.Background(), r.js)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.api.Sim.Calls()
	requests := map[string]int{}
	for _, q := range r.api.Sim.Requests() {
		requests[q.Mapping]++
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := cmds[i]
			var terminal []ingest.Event
			for _, ev := range evs {
				if ev.CommandID == cmd.ID && ev.Type.Terminal() {
					terminal = append(terminal, ev)
				}
			}
			if len(terminal) != 1 {
				t.Fatalf("%d terminal events, want 1: %+v", len(terminal), terminal)
			}
			if ev := terminal[0]; ev.Type != tt.want || ev.Reason != tt.reason {
				t.Errorf("ended %s (%s), want %s (%s); detail %q", ev.Type, ev.Reason, tt.want, tt.reason, ev.Detail)
			}
			want := tt.requests
			if want == 0 {
				want = 1
			} else if want < 0 {
				want = 0
			}
			if got := requests[cmd.MappingID]; got != want {
				t.Errorf("%d ingestion requests, want %d", got, want)
			}
			var mine []campaignsim.Call
			perOp := map[campaignsim.Operation]int{}
			for _, c := range calls {
				if c.Mapping == cmd.MappingID {
					mine = append(mine, c)
					perOp[c.Op]++
				}
			}
			for op, n := range perOp {
				if tt.replayed {
					t.Logf("%d %s calls for a budget of %d: transport replays", n, op, budget)
					continue
				}
				if n > budget {
					t.Errorf("%d %s calls, want at most %d (API retries %d × deliveries %d)", n, op, budget, apiRetries, maxDeliver)
				}
			}
			if tt.retryAfter > 0 {
				throttled := 0
				for j, c := range mine {
					if c.Fault != campaignsim.FaultThrottle {
						continue
					}
					throttled++
					if j+1 < len(mine) {
						if gap := mine[j+1].Time.Sub(c.Time); gap < tt.retryAfter {
							t.Errorf("a call %s after a 429 with Retry-After %s", gap, tt.retryAfter)
						}
					}
				}
				if throttled == 0 {
					t.Error("no call was throttled")
				}
			}
			if t.Failed() {
				t.Logf("calls of %s:%s", cmd.MappingID, fmtCalls(mine))
			}
		})
	}
}

func fmtCalls(cs []campaignsim.Call) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("\n  %s %s %d %s %s %s %s", c.Time.Format("15:04:05.000"), c.Op, c.HTTPStatus, c.RequestID, c.Status, c.ErrorCode, c.Fault)
	}
	return s
}
