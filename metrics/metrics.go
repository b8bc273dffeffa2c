// Package metrics owns the worker's Prometheus metrics and its HTTP server
// (/metrics, /healthz, /readyz).
package metrics

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "campaign_ingest"

// DurationBuckets are the job duration buckets: 1 s to 6 h.
var DurationBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600}

// APIBuckets are the API call duration buckets: 5 ms to 30 s.
var APIBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics is the worker's metric set. Build it with New.
type Metrics struct {
	Requests       *prometheus.CounterVec   // requests_total{organization,outcome}: terminal events by type
	Failures       *prometheus.CounterVec   // failures_total{organization,reason}: terminal events with a reason
	InFlight       *prometheus.GaugeVec     // in_flight{organization}: jobs running in this worker
	Duration       *prometheus.HistogramVec // duration_seconds{organization}: trigger to terminal event
	Records        prometheus.Counter       // records_total: numRecords of succeeded ingestions
	Polls          prometheus.Counter       // polls_total: status checks
	UnknownStatus  prometheus.Counter       // unknown_status_total: status checks answering an undocumented status
	APIRequests    *prometheus.CounterVec   // api_requests_total{operation,code}
	APIDuration    *prometheus.HistogramVec // api_request_duration_seconds{operation}
	Deliveries     *prometheus.CounterVec   // deliveries_total{kind}: first or redelivery
	Events         *prometheus.CounterVec   // events_published_total{type}
	EventsDropped  *prometheus.CounterVec   // events_dropped_total{type}: events the server refused for good
	Naks           *prometheus.CounterVec   // naks_total{reason}: commands handed back
	Pending        prometheus.Gauge         // commands_pending: the consumer's unprocessed commands
	OldestInFlight prometheus.Gauge         // oldest_in_flight_seconds: age of the oldest running job
	LastSuccess    prometheus.Gauge         // last_success_timestamp_seconds
	NATSConnected  prometheus.Gauge         // nats_connected: 1 when connected
	Reloads        *prometheus.CounterVec   // config_reloads_total{result}: reloads of the organizations
}

// New builds the metric set and registers it, with the build info, on reg.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Commands that ended, by terminal outcome (succeeded, failed, aborted, rejected, timed_out).",
		}, []string{"organization", "outcome"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "failures_total",
			Help: "Commands that did not succeed, by documented reason.",
		}, []string{"organization", "reason"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "in_flight",
			Help: "Jobs running in this worker.",
		}, []string{"organization"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "duration_seconds",
			Help:    "Time from the trigger to the terminal event of ingestions that were triggered.",
			Buckets: DurationBuckets,
		}, []string{"organization"}),
		Records: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_total",
			Help: "Records ingested by successful ingestions.",
		}),
		Polls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "polls_total",
			Help: "Status checks answered by the API.",
		}),
		UnknownStatus: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "unknown_status_total",
			Help: "Status checks that answered a status the worker does not know.",
		}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "Calls to the Campaign API and IMS by operation (trigger, status, token) and HTTP code (\"error\" when no answer came).",
		}, []string{"operation", "code"}),
		APIDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "api_request_duration_seconds",
			Help:    "Duration of calls to the Campaign API and IMS by operation.",
			Buckets: APIBuckets,
		}, []string{"operation"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_total",
			Help: "Commands received, by kind (first, redelivery).",
		}, []string{"kind"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_published_total",
			Help: "Events published, by type.",
		}, []string{"type"}),
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_dropped_total",
			Help: "Events that could not be published for a reason no retry can pass (the server refused the message); their command was ended without them.",
		}, []string{"type"}),
		Naks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "naks_total",
			Help: "Commands handed back for redelivery, by reason (api, nats, shutdown, panic).",
		}, []string{"reason"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "commands_pending",
			Help: "Commands in the stream not yet delivered to a worker (refreshed every 15 s).",
		}),
		OldestInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "oldest_in_flight_seconds",
			Help: "Age of the oldest job running in this worker, from the command's publication.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_success_timestamp_seconds",
			Help: "Unix time of the last succeeded ingestion seen by this worker.",
		}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "nats_connected",
			Help: "1 when the worker is connected to NATS.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Reloads of the organizations file and secrets, by result (success, failure).",
		}, []string{"result"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Build information of the worker; always 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(m.Requests, m.Failures, m.InFlight, m.Duration, m.Records, m.Polls, m.UnknownStatus,
		m.APIRequests, m.APIDuration, m.Deliveries, m.Events, m.EventsDropped, m.Naks, m.Pending, m.OldestInFlight,
		m.LastSuccess, m.NATSConnected, m.Reloads, build)
	return m
}

// Init creates the series of every organization label value and every
// known outcome and reason at zero, so that rates and alerts see them
// before the first event.
func (m *Metrics) Init(organizations, outcomes, reasons []string) {
	for _, org := range organizations {
		for _, o := range outcomes {
			m.Requests.WithLabelValues(org, o)
		}
		for _, r := range reasons {
			m.Failures.WithLabelValues(org, r)
		}
		m.InFlight.WithLabelValues(org)
	}
	for _, r := range []string{"success", "failure"} {
		m.Reloads.WithLabelValues(r)
	}
}

// ObserveReload counts a reload of the organizations.
func (m *Metrics) ObserveReload(err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.Reloads.WithLabelValues(result).Inc()
}

// Discard returns a metric set registered nowhere, for parts built
// without metrics.
func Discard() *Metrics { return New(prometheus.NewRegistry(), "") }

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ObservePoll counts a status check.
func (m *Metrics) ObservePoll(_ string, known bool) {
	m.Polls.Inc()
	if !known {
		m.UnknownStatus.Inc()
	}
}

// ObserveOutcome counts a terminal event of the organization label value
// org. triggered is the zero time for commands that never reached the API.
func (m *Metrics) ObserveOutcome(org, outcome, reason string, records int64, triggered, finished time.Time) {
	m.Requests.WithLabelValues(org, outcome).Inc()
	if reason != "" {
		m.Failures.WithLabelValues(org, reason).Inc()
	}
	if outcome == "succeeded" {
		m.Records.Add(float64(records))
		m.LastSuccess.Set(float64(finished.UnixNano()) / 1e9)
	}
	if !triggered.IsZero() {
		m.Duration.WithLabelValues(org).Observe(finished.Sub(triggered).Seconds())
	}
}

// codeLabel is the code label value of an HTTP status (0: no answer).
func codeLabel(code int) string {
	switch {
	case code == 0:
		return "error"
	case code >= 100 && code < 100+len(statusLabels):
		return statusLabels[code-100]
	}
	return strconv.Itoa(code)
}

// statusLabels is the label value of every status from 100 to 599, made
// once instead of per request.
var statusLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(100 + i)
	}
	return l
}()
