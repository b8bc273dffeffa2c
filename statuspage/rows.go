package statuspage

import (
	"strconv"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// jobRow is a job as its row in the jobs view shows it: formatted and
// bounded here, so that the template only escapes and places strings.
type jobRow struct {
	Key, URL string
	T        int64 // the job's time, for ordering rows in the browser

	ID, State, Org, Mapping, Triggered, Finished, Duration, Records string
	Reason, ErrorCode, Status, RequestID, BatchID, Correlation      string

	Attempt, Polls int
}

func newJobRow(j *Job, now time.Time) jobRow {
	return jobRow{
		Key: j.Key(), URL: j.URL(), T: j.First.UnixNano(),
		ID: ingest.Bounded(j.CommandID, shortLen), State: j.State(),
		Org: ingest.Bounded(j.Org, shortLen), Mapping: ingest.Bounded(j.Mapping, shortLen),
		Triggered: when(j.TriggeredAt), Finished: when(j.FinishedAt),
		Duration: formatDuration(j.Duration(now)), Records: records(j),
		Reason: dash(string(j.Reason)), ErrorCode: dash(j.ErrorCode), Status: dash(j.Status),
		RequestID: dash(j.RequestID), BatchID: dash(j.BatchID), Correlation: dash(j.CorrelationID),
		Attempt: j.Attempt, Polls: j.Polls,
	}
}

func jobRows(jobs []Job, now time.Time) []jobRow {
	rows := make([]jobRow, len(jobs))
	for i := range jobs {
		rows[i] = newJobRow(&jobs[i], now)
	}
	return rows
}

// mappingRow is a mapping as its row in the mappings view shows it.
type mappingRow struct {
	Key, JobsURL, Mapping, Org string

	LastURL, LastID, LastTime, State, Records, LastSuccess string

	Failures, Running, Jobs int
}

func mappingRows(ms []MappingSummary) []mappingRow {
	rows := make([]mappingRow, len(ms))
	for i := range ms {
		m := &ms[i]
		last := &m.Last
		rows[i] = mappingRow{
			Key: m.Key(), JobsURL: mappingJobsURL(m.Org, m.Mapping),
			Mapping: orNone(ingest.Bounded(m.Mapping, shortLen)), Org: orNone(ingest.Bounded(m.Org, shortLen)),
			LastURL: last.URL(), LastID: ingest.Bounded(last.CommandID, shortLen), LastTime: when(last.First),
			State: last.State(), Records: records(last), LastSuccess: when(m.LastSuccess),
			Failures: m.Failures, Running: m.Running, Jobs: m.Jobs,
		}
		if m.LastSuccess.IsZero() {
			rows[i].LastSuccess = "never"
		}
	}
	return rows
}

// records is a job's records: only a succeeded job has them.
func records(j *Job) string {
	if j.Outcome != ingest.EventSucceeded {
		return "—"
	}
	return strconv.FormatInt(j.NumRecords, 10)
}

// dash bounds s for a table cell, or is a dash when s is empty.
func dash(s string) string {
	if s == "" {
		return "—"
	}
	return ingest.Bounded(s, shortLen)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
