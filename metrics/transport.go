package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// InstrumentTransport wraps next so that every call is counted in
// api_requests_total{operation,code} and timed in
// api_request_duration_seconds{operation}. operation names the call from its
// request context (the Campaign client sets it); "other" when it does not.
// The series of each operation and code are looked up once and kept: both
// label sets are bounded, and resolving labels hashes and checks them on
// every call.
func (m *Metrics) InstrumentTransport(next http.RoundTripper, operation func(context.Context) string) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	var ops sync.Map // operation → *apiSeries
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		op := operation(r.Context())
		if op == "" {
			op = "other"
		}
		s, ok := ops.Load(op)
		if !ok {
			s, _ = ops.LoadOrStore(op, &apiSeries{vec: m.APIRequests, op: op, duration: m.APIDuration.WithLabelValues(op)})
		}
		series := s.(*apiSeries)
		start := time.Now()
		resp, err := next.RoundTrip(r)
		series.duration.Observe(time.Since(start).Seconds())
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		series.requests(code).Inc()
		return resp, err
	})
}

// apiSeries are the series of one operation.
type apiSeries struct {
	vec      *prometheus.CounterVec
	op       string
	duration prometheus.Observer
	codes    sync.Map // status code → prometheus.Counter
}

// requests is the api_requests_total series of the operation and code.
func (s *apiSeries) requests(code int) prometheus.Counter {
	if c, ok := s.codes.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c, _ := s.codes.LoadOrStore(code, s.vec.WithLabelValues(s.op, codeLabel(code)))
	return c.(prometheus.Counter)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
