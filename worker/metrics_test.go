package worker_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// TestMetrics checks the metric values after three commands with known
// outcomes, and the /metrics, /healthz and /readyz endpoints. With
// INGEST_METRICS_SCRAPE=FILE it writes the scrape there (for
// `promtool check metrics` in .ci/run).
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		campaignsim.Mapping{Org: "acme", ID: "OK", Script: campaignsim.Script{Records: 15, Polls: 2}},
		campaignsim.Mapping{Org: "acme", ID: "FETCH", Script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure}},
	)
	r := h.start(nil)
	h.publish("ingest.commands.acme.OK", "", map[string]string{"Nats-Msg-Id": "m-ok"})
	h.publish("ingest.commands.acme.FETCH", "", map[string]string{"Nats-Msg-Id": "m-fetch"})
	h.publish("ingest.commands.acme.OK", "{", map[string]string{"Nats-Msg-Id": "m-bad"})
	for _, id := range []string{"m-ok", "m-fetch", "m-bad"} {
		h.events.Terminal(t, id, 20*time.Second)
	}
	h.settled()
	m := r.w.Metrics()
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"requests_total{succeeded}", testutil.ToFloat64(m.Requests.WithLabelValues("_other", "succeeded")), 1},
		{"requests_total{failed}", testutil.ToFloat64(m.Requests.WithLabelValues("_other", "failed")), 1},
		{"requests_total{rejected}", testutil.ToFloat64(m.Requests.WithLabelValues("_other", "rejected")), 1},
		{"requests_total{aborted}", testutil.ToFloat64(m.Requests.WithLabelValues("_other", "aborted")), 0},
		{"failures_total{fetch_failed}", testutil.ToFloat64(m.Failures.WithLabelValues("_other", "fetch_failed")), 1},
		{"failures_total{invalid_command}", testutil.ToFloat64(m.Failures.WithLabelValues("_other", "invalid_command")), 1},
		{"records_total", testutil.ToFloat64(m.Records), 15},
		{"polls_total", testutil.ToFloat64(m.Polls), 3},
		{"in_flight", testutil.ToFloat64(m.InFlight), 0},
		{"api_requests_total{trigger,200}", testutil.ToFloat64(m.APIRequests.WithLabelValues("trigger", "200")), 2},
		{"api_requests_total{status,200}", testutil.ToFloat64(m.APIRequests.WithLabelValues("status", "200")), 3},
		{"api_requests_total{token,200}", testutil.ToFloat64(m.APIRequests.WithLabelValues("token", "200")), 1},
		{"events_published_total{triggered}", testutil.ToFloat64(m.Events.WithLabelValues("triggered")), 2},
		{"deliveries_total{first}", testutil.ToFloat64(m.Deliveries.WithLabelValues("first")), 3},
		{"duration_seconds count", float64(testutil.CollectAndCount(m.Duration)), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if ts := testutil.ToFloat64(m.LastSuccess); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last_success_timestamp_seconds = %v, want about now", ts)
	}

	base := "http://" + r.w.HTTPAddr()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/debug/pprof/": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path != "/metrics" {
			continue
		}
		for _, s := range []string{`campaign_ingest_requests_total{organization="_other",outcome="succeeded"} 1`, "go_goroutines", "process_resident_memory_bytes", "campaign_ingest_build_info{"} {
			if !strings.Contains(string(body), s) {
				t.Errorf("/metrics lacks %q", s)
			}
		}
		if f := os.Getenv("INGEST_METRICS_SCRAPE"); f != "" {
			if err := os.WriteFile(f, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
