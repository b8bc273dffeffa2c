package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
)

// benchJobs is the size of the bucket of BenchmarkStatusPage.
const benchJobs = 100_000

// BenchmarkStatusPage seeds an embedded server with a 7-day bucket of
// 100,000 jobs (their records in INGEST_JOBS and their events in
// INGEST_EVENTS), lets a page read it, and times the render of each view
// (the handler, without the network). It logs how long the page took to
// read JetStream and the heap it holds.
//
//	go test -run '^$' -bench BenchmarkStatusPage -benchtime 200x ./statuspage/
func BenchmarkStatusPage(b *testing.B) {
	ns := testenv.NATS(b)
	_, js := testenv.Connect(b, ns.ClientURL())
	ctx := context.Background()
	if _, err := layout.Setup(ctx, js, layout.Topology{Create: true}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	seedStart := time.Now()
	oldest := seed(b, js, benchJobs, now)
	b.Logf("seeded %d records and %d events in %s", benchJobs, benchJobs, time.Since(seedStart).Round(time.Millisecond))
	// A job published now, as the worker would: its events' stream times
	// match their own (the seed's are all from the last seconds).
	recent := Job{Org: "org2", Mapping: "XDMNEW", CommandID: "recent-1"}
	publishRecent(b, js, recent)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, pjs := testenv.Connect(b, ns.ClientURL())
	p, err := New(pjs, Config{Page: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	loadStart := time.Now()
	wg.Go(func() { p.Run(runCtx) })
	for !p.ix.Loaded() || p.ix.Len() < benchJobs+1 {
		if time.Since(loadStart) > 2*time.Minute {
			b.Fatalf("the page read %d jobs in 2 minutes", p.ix.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("the page read %d jobs from JetStream in %s; heap grew by %d MiB", p.ix.Len(),
		time.Since(loadStart).Round(time.Millisecond), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>20)

	mux := http.NewServeMux()
	for pattern, h := range p.Handlers() {
		mux.Handle(pattern, h)
	}
	older, _ := p.ix.Jobs(Filter{}, nil, benchJobs/2)
	views := []struct{ name, path string }{
		{"mappings", "/"},
		{"jobs", "/jobs"},
		{"jobs-older-page", "/jobs?before=" + CursorOf(older[len(older)-1]).String()},
		{"jobs-one-org-failed", "/jobs?org=org2&outcome=failed"},
		{"jobs-rare-reason", "/jobs?reason=api_unavailable"},
		{"jobs-no-match", "/jobs?mapping=NOPE"},
		{"jobs-last-day", "/jobs?from=" + now.Add(-24*time.Hour).UTC().Format("2006-01-02T15:04:05")},
		{"job-recent", recent.URL()},
		{"job-week-old", oldest.URL()},
	}
	for _, v := range views {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, v.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d", v.path, rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}

// seed publishes n jobs over the 7 days before now: 5 organizations of 40
// mappings; about 90 % succeeded, 4 % failed, 2 % rejected, 1 % aborted,
// 1 % timed out, 2 % running. It returns the oldest failed job: reading
// its events reads every event of its mapping published since its time,
// as for a week-old job (the seed's stream times are all recent).
func seed(b *testing.B, js jetstream.JetStream, n int, now time.Time) Job {
	b.Helper()
	step := 7 * 24 * time.Hour / time.Duration(n)
	var sample Job
	for i := range n {
		org, mapping := fmt.Sprintf("org%d", i%5), fmt.Sprintf("XDM%02d", i/5%40)
		id := fmt.Sprintf("etl-%s-%s-%06d", org, mapping, i)
		trig := now.Add(-7*24*time.Hour + time.Duration(i)*step)
		ev := ingest.Event{CommandID: id, CorrelationID: fmt.Sprintf("run-%d", i/100), Organization: org, MappingID: mapping,
			RequestID: fmt.Sprint(3000 + i), Attempt: 1, Polls: 4, TriggeredAt: ingest.Time(trig), FinishedAt: ingest.Time(trig.Add(65 * time.Second))}
		ev.Type, ev.Status, ev.NumRecords = ingest.EventSucceeded, "Success", int64(i%1000)
		switch k := i % 100; {
		case k < 4:
			ev.Type, ev.Status, ev.Reason, ev.ErrorCode, ev.Info = ingest.EventFailed, "Failed", ingest.ReasonFetchFailed, "ACP-880056", "Mapping Id: "+mapping+". ACP-880056 fetch failed"
		case k < 6:
			ev.Type, ev.Status, ev.Reason, ev.TriggeredAt, ev.RequestID = ingest.EventRejected, "Failed", ingest.ReasonMappingNotStopped, ingest.Time{}, ""
		case k < 7:
			ev.Type, ev.Status, ev.Reason = ingest.EventAborted, "Aborted", ingest.ReasonAborted
		case k < 8:
			ev.Type, ev.Status, ev.Reason = ingest.EventTimedOut, "In Progress", ingest.ReasonDeadlineExceeded
		case k < 10:
			ev.Type, ev.Status, ev.FinishedAt = ingest.EventTriggered, "Success", ingest.Time{}
		}
		rec := ingest.Record{CommandID: id, CorrelationID: ev.CorrelationID, Organization: org, MappingID: mapping, Phase: ingest.PhaseDone,
			RequestID: ev.RequestID, Attempt: 1, Polls: 4, Status: ev.Status, Outcome: ev.Type, Reason: ev.Reason, TriggeredAt: ev.TriggeredAt, UpdatedAt: ev.FinishedAt}
		if ev.Type == ingest.EventTriggered {
			rec.Phase, rec.Outcome, rec.UpdatedAt = ingest.PhaseRunning, "", ev.TriggeredAt
		}
		publishJSON(b, js, layout.EventSubject(ev), ev)
		publishJSON(b, js, "$KV."+layout.DefaultBucket+"."+layout.RecordKey(org, id), rec)
		if ev.Type == ingest.EventFailed && sample.CommandID == "" {
			sample = Job{Org: org, CommandID: id}
		}
		if i%1000 == 999 || i == n-1 {
			acknowledged(b, js)
		}
	}
	return sample
}

// acknowledged waits for the acknowledgement of what js published.
func acknowledged(b *testing.B, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("the seed was not acknowledged within a minute")
	}
}

// publishRecent publishes the triggered and succeeded events and the
// record of job j, triggered a second ago.
func publishRecent(b *testing.B, js jetstream.JetStream, j Job) {
	trig := ingest.Time(time.Now().Add(-time.Second))
	ev := ingest.Event{Type: ingest.EventTriggered, CommandID: j.CommandID, Organization: j.Org, MappingID: j.Mapping,
		RequestID: "9999", Status: "Success", Attempt: 1, TriggeredAt: trig}
	publishJSON(b, js, layout.EventSubject(ev), ev)
	ev.Type, ev.NumRecords, ev.Polls, ev.FinishedAt = ingest.EventSucceeded, 15, 2, ingest.Time(time.Now())
	publishJSON(b, js, layout.EventSubject(ev), ev)
	rec := ingest.Record{CommandID: j.CommandID, Organization: j.Org, MappingID: j.Mapping, Phase: ingest.PhaseDone, RequestID: "9999",
		Attempt: 1, Polls: 2, Status: "Success", Outcome: ingest.EventSucceeded, TriggeredAt: trig, UpdatedAt: ev.FinishedAt}
	publishJSON(b, js, "$KV."+layout.DefaultBucket+"."+layout.RecordKey(j.Org, j.CommandID), rec)
	acknowledged(b, js)
}

func publishJSON(b *testing.B, js jetstream.JetStream, subject string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.PublishAsync(subject, data); err != nil {
		b.Fatal(err)
	}
}
