package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type opKey struct{}

func opOf(ctx context.Context) string { s, _ := ctx.Value(opKey{}).(string); return s }

// TestInstrumentTransport: every call counted under its operation and
// code, and timed under its operation, however often the series are used
// (they are looked up once and kept).
func TestInstrumentTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := New(prometheus.NewRegistry(), "test")
	c := &http.Client{Transport: m.InstrumentTransport(srv.Client().Transport, opOf)}
	call := func(op, path string) {
		ctx := context.WithValue(context.Background(), opKey{}, op)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for range 3 {
		call("trigger", "/")
	}
	call("trigger", "/missing")
	call("status", "/")
	call("", "/")
	for _, tc := range []struct {
		op, code string
		want     float64
	}{
		{"trigger", "200", 3},
		{"trigger", "404", 1},
		{"status", "200", 1},
		{"other", "200", 1},
		{"status", "404", 0},
	} {
		if got := testutil.ToFloat64(m.APIRequests.WithLabelValues(tc.op, tc.code)); got != tc.want {
			t.Errorf("api_requests_total{operation=%q,code=%q} = %v, want %v", tc.op, tc.code, got, tc.want)
		}
	}
	if got := testutil.CollectAndCount(m.APIDuration); got != 3 {
		t.Errorf("%d duration series, want 3 (trigger, status, other)", got)
	}
}

// BenchmarkInstrumentTransport is the instrumentation's cost per call.
func BenchmarkInstrumentTransport(b *testing.B) {
	m := New(prometheus.NewRegistry(), "test")
	ok := &http.Response{StatusCode: http.StatusOK}
	rt := m.InstrumentTransport(roundTripperFunc(func(*http.Request) (*http.Response, error) { return ok, nil }), opOf)
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), opKey{}, "status"), http.MethodGet, "http://127.0.0.1/", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
