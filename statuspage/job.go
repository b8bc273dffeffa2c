package statuspage

import (
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// Job is what the page knows of one command: its record in the job bucket
// merged with its events. Strings are stored as read; the templates bound
// them when they show them.
type Job struct {
	Org, Mapping, CommandID, CorrelationID string

	RequestID, Status, BatchID, ErrorCode, Info, Detail string

	Phase      ingest.Phase
	Outcome    ingest.EventType // the terminal event's type; "" while the job runs
	Reason     ingest.Reason
	NumRecords int64
	Attempt    int
	Polls      int

	TriggeredAt, FinishedAt time.Time
	// First is the earliest time known of the job (its first record,
	// trigger or event): the jobs are ordered by it, newest first.
	First time.Time
	// Seen is the time of the job's last write to JetStream (record or
	// event), for expiry.
	Seen time.Time

	HasRecord bool
	// final: a terminal event was read; it wins over the record.
	final bool
	// removed: dropped from the index, not yet compacted out of its order.
	removed bool
}

// jobKey identifies a job: a command id is unique within its organization.
type jobKey struct{ org, id string }

func (j *Job) key() jobKey { return jobKey{j.Org, j.CommandID} }

// Key is the job's identity in the page (HTML data-key and live updates).
func (j Job) Key() string { return keyString(j.Org, j.CommandID) }

func keyString(org, id string) string { return url.Values{"org": {org}, "id": {id}}.Encode() }

// splitRecordKey is the inverse of layout.RecordKey.
func splitRecordKey(key string) (org, id string, ok bool) {
	org, id, ok = strings.Cut(key, ".")
	if !ok {
		return "", "", false
	}
	if enc, found := strings.CutPrefix(id, "b64."); found {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", "", false
		}
		id = string(b)
	}
	return org, id, true
}

// URL is the job's detail page.
func (j Job) URL() string { return "/job?" + j.Key() }

// Running reports whether the job has not ended yet.
func (j Job) Running() bool { return !j.final && j.Phase != ingest.PhaseDone }

// State is what the job's outcome column shows: the terminal event's type,
// else the record's phase ("claimed", "waiting", "running").
func (j Job) State() string {
	switch {
	case j.Outcome != "":
		return string(j.Outcome)
	case j.Phase == "" || j.Phase == ingest.PhaseDone:
		return "running"
	}
	return string(j.Phase)
}

// Failed reports whether the job ended without success.
func (j Job) Failed() bool { return j.Outcome.Terminal() && j.Outcome != ingest.EventSucceeded }

// Duration is the time from trigger to end, or to now while the job runs;
// 0 when the job never triggered.
func (j Job) Duration(now time.Time) time.Duration {
	if j.TriggeredAt.IsZero() {
		return 0
	}
	end := j.FinishedAt
	if end.IsZero() {
		if !j.Running() {
			return 0
		}
		end = now
	}
	return max(end.Sub(j.TriggeredAt), 0)
}

// applyRecord merges a record written at (the KV entry's time).
func (j *Job) applyRecord(r *ingest.Record, at time.Time) {
	j.HasRecord = true
	j.Mapping = firstNonEmpty(r.MappingID, j.Mapping)
	j.CorrelationID = firstNonEmpty(r.CorrelationID, j.CorrelationID)
	j.touch(time.Time(r.TriggeredAt), time.Time(r.UpdatedAt), at)
	if j.final {
		j.Polls = max(j.Polls, r.Polls)
		return
	}
	j.Phase, j.Status, j.Attempt, j.Polls = r.Phase, r.Status, r.Attempt, r.Polls
	if r.Phase != ingest.PhaseWaiting { // a waiting record names the other request
		j.RequestID = firstNonEmpty(r.RequestID, j.RequestID)
	}
	j.Outcome, j.Reason = r.Outcome, r.Reason
	if !r.TriggeredAt.IsZero() {
		j.TriggeredAt = time.Time(r.TriggeredAt)
	}
	if r.Phase == ingest.PhaseDone {
		j.FinishedAt = time.Time(r.UpdatedAt)
	}
}

// clearRecord forgets the record (deleted from the bucket); it reports
// whether the job is still known from its events.
func (j *Job) clearRecord() bool {
	j.HasRecord = false
	return j.final
}

// applyEvent merges an event stored at.
func (j *Job) applyEvent(ev ingest.Event, at time.Time) {
	j.Mapping = firstNonEmpty(j.Mapping, ev.MappingID)
	j.CorrelationID = firstNonEmpty(j.CorrelationID, ev.CorrelationID)
	trig, fin := time.Time(ev.TriggeredAt), time.Time(ev.FinishedAt)
	j.touch(trig, fin, at)
	if ev.Type.Terminal() {
		j.final, j.Phase, j.Outcome, j.Reason = true, ingest.PhaseDone, ev.Type, ev.Reason
		j.Status, j.NumRecords, j.BatchID, j.ErrorCode = ev.Status, ev.NumRecords, ev.BatchID, ev.ErrorCode
		j.Info, j.Detail = ev.Info, ev.Detail
		j.Attempt, j.Polls = max(j.Attempt, ev.Attempt), max(j.Polls, ev.Polls)
		j.RequestID = firstNonEmpty(ev.RequestID, j.RequestID)
		if !trig.IsZero() {
			j.TriggeredAt = trig
		}
		j.FinishedAt = firstTime(fin, at)
		return
	}
	if j.final || ev.Attempt < j.Attempt {
		return
	}
	j.RequestID, j.Attempt, j.Info = ev.RequestID, ev.Attempt, ev.Info
	if !trig.IsZero() {
		j.TriggeredAt = trig
	}
	if j.Phase != ingest.PhaseDone {
		j.Phase = ingest.PhaseRunning
	}
}

// touch lowers First to the earliest of times and raises Seen to at.
func (j *Job) touch(times ...time.Time) {
	for _, t := range times {
		if !t.IsZero() && (j.First.IsZero() || t.Before(j.First)) {
			j.First = t
		}
	}
	if at := times[len(times)-1]; at.After(j.Seen) {
		j.Seen = at
	}
}

// cmpJobs orders jobs by First, then organization, then command id.
func cmpJobs(a, b *Job) int {
	if c := a.First.Compare(b.First); c != 0 {
		return c
	}
	if a.Org != b.Org {
		if a.Org < b.Org {
			return -1
		}
		return 1
	}
	switch {
	case a.CommandID < b.CommandID:
		return -1
	case a.CommandID > b.CommandID:
		return 1
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstTime(t ...time.Time) time.Time {
	for _, v := range t {
		if !v.IsZero() {
			return v
		}
	}
	return time.Time{}
}
