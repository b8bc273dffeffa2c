package statuspage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// MaxDetailEvents bounds the events of a mapping read for one job's
// detail: its events are searched among its mapping's from its first time.
const MaxDetailEvents = 10_000

// detailTimeout bounds the JetStream reads of one job's detail.
const detailTimeout = 5 * time.Second

// maxRecordJSON bounds the record shown, in bytes.
const maxRecordJSON = 8 << 10

type recordView struct {
	Key      string
	Revision uint64
	Written  time.Time
	JSON     string
}

type jobView struct {
	chrome
	Job         *Job
	Events      []ingest.Event
	EventsErr   string
	EventsFrom  time.Time
	EventsLimit int
	Record      *recordView
	RecordNote  string
}

type notFoundView struct {
	chrome
	Message string
}

// job serves one job's detail: its summary, its events from the event
// stream and its record from the job bucket.
func (p *Page) job(w http.ResponseWriter, r *http.Request, scope string) {
	q := r.URL.Query()
	org, id := q.Get("org"), q.Get("id")
	if id == "" || len(id) > 4*ingest.MaxIDLen || len(org) > 256 || scope != "" && org != scope {
		p.notFound(w, scope)
		return
	}
	ver := p.ix.Version()
	ctx, cancel := context.WithTimeout(r.Context(), detailTimeout)
	defer cancel()
	v := jobView{chrome: p.chrome("Job", "jobs", scope), EventsLimit: MaxDetailEvents}
	rec, view, recErr := p.loadRecord(ctx, org, id)
	v.Record = view
	switch {
	case recErr != nil:
		v.RecordNote = "The record could not be read: " + ingest.Bounded(recErr.Error(), longLen)
	case view == nil:
		v.RecordNote = "No record in the bucket: its record expired, or could not be written."
	}
	job, known := p.ix.Job(org, id)
	if !known && rec == nil {
		if recErr != nil {
			p.log.Warn("status page: cannot read a job record", "err", recErr)
			http.Error(w, "503 service unavailable: the job bucket cannot be read", http.StatusServiceUnavailable)
			return
		}
		p.notFound(w, scope)
		return
	}
	if !known {
		job = Job{Org: org, CommandID: id}
		job.applyRecord(rec, view.Written)
	}
	v.Job = &job
	v.EventsFrom = eventsFrom(job, known)
	events, err := p.jobEvents(ctx, job, v.EventsFrom)
	v.Events = events
	if err != nil {
		v.EventsErr = ingest.Bounded(err.Error(), longLen)
	}
	v.Title = "Job " + ingest.Bounded(id, shortLen)
	v.Live = liveURL(ver, url.Values{"view": {"job"}, "org": {org}, "id": {id}})
	p.render(w, http.StatusOK, "job", v)
}

// eventsFrom is where a job's events are searched from: a minute before
// its first time; six hours more for a resubmitted job known only from its
// record (which holds its last trigger).
func eventsFrom(j Job, known bool) time.Time {
	from := j.First.Add(-time.Minute)
	if !known && j.Attempt > 1 {
		from = from.Add(-6 * time.Hour)
	}
	return from
}

// jobEvents reads the events of job j from its mapping's, oldest first.
func (p *Page) jobEvents(ctx context.Context, j Job, from time.Time) ([]ingest.Event, error) {
	org, mapping := j.Org, j.Mapping
	if !ingest.ValidOrganization(org) {
		org = "_"
	}
	if !ingest.ValidMappingID(mapping) {
		mapping = "_"
	}
	return layout.ReadEvents(ctx, p.js, layout.MappingEvents(org, mapping), from, MaxDetailEvents,
		func(ev ingest.Event) bool { return ev.CommandID == j.CommandID && ev.Organization == j.Org })
}

// loadRecord reads the record of command id in org from the job bucket;
// nil when there is none.
func (p *Page) loadRecord(ctx context.Context, org, id string) (*ingest.Record, *recordView, error) {
	if !ingest.ValidOrganization(org) {
		return nil, nil, nil // no record is kept under an invalid organization
	}
	kv, err := p.bucket(ctx)
	if err != nil {
		return nil, nil, err
	}
	key := layout.RecordKey(org, id)
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", key, err)
	}
	rec, err := layout.DecodeRecord(e.Value())
	if err != nil {
		return nil, nil, err
	}
	return rec, &recordView{Key: key, Revision: e.Revision(), Written: e.Created(), JSON: prettyJSON(e.Value())}, nil
}

// bucket is the job bucket, as found by the watcher or looked up.
func (p *Page) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	if kv := p.kv.Load(); kv != nil {
		return *kv, nil
	}
	kv, err := p.js.KeyValue(ctx, layout.DefaultBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", layout.DefaultBucket, err)
	}
	return kv, nil
}

// prettyJSON indents b, cut to maxRecordJSON bytes of valid UTF-8.
func prettyJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		buf.Reset()
		buf.Write(b)
	}
	s := buf.String()
	if len(s) > maxRecordJSON {
		cut := maxRecordJSON
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "\n…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (p *Page) notFound(w http.ResponseWriter, scope string) {
	v := notFoundView{chrome: p.chrome("Job not found", "jobs", scope),
		Message: "No such job is held: its id or organization is wrong, or it expired."}
	p.render(w, http.StatusNotFound, "notfound", v)
}
