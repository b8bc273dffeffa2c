package metrics

import (
	"context"
	"net/http"
	"time"
)

// InstrumentTransport wraps next so that every call is counted in
// api_requests_total{operation,code} and timed in
// api_request_duration_seconds{operation}. operation names the call from its
// request context (the Campaign client sets it).
func (m *Metrics) InstrumentTransport(next http.RoundTripper, operation func(context.Context) string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		op := operation(r.Context())
		if op == "" {
			op = "other"
		}
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.APIDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		m.APIRequests.WithLabelValues(op, codeLabel(code)).Inc()
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
