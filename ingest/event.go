package ingest

import (
	"fmt"
	"time"
)

// EventType is the last token of an event's subject.
type EventType string

// The event types of the contract.
const (
	EventTriggered EventType = "triggered"
	EventSucceeded EventType = "succeeded"
	EventFailed    EventType = "failed"
	EventAborted   EventType = "aborted"
	EventRejected  EventType = "rejected"
	EventTimedOut  EventType = "timed_out"
)

// EventTypes lists every event type, terminal ones last.
var EventTypes = []EventType{EventTriggered, EventSucceeded, EventFailed, EventAborted, EventRejected, EventTimedOut}

// Terminal reports whether an event of type t ends its command.
func (t EventType) Terminal() bool { return t != EventTriggered && t != "" }

// Reason explains a terminal event other than succeeded. The set is fixed and
// documented; dashboards and alerts use it as a label value.
type Reason string

// The documented reasons.
const (
	ReasonInvalidCommand      Reason = "invalid_command"       // rejected: the command cannot be read or is invalid
	ReasonSubjectMismatch     Reason = "subject_mismatch"      // rejected: the body names another organization or mapping
	ReasonMappingNotStopped   Reason = "mapping_not_stopped"   // rejected: the mapping runs on its schedule
	ReasonMappingNotPublished Reason = "mapping_not_published" // rejected: the mapping is not published (or unknown)
	ReasonForbidden           Reason = "forbidden"             // rejected: 403 (API key, profile, SQL role)
	ReasonUnauthorized        Reason = "unauthorized"          // rejected or failed: 401 even with a fresh token
	ReasonAPIError            Reason = "api_error"             // rejected or failed: another permanent API error (400, 404, 500 "check your URI")
	ReasonFetchFailed         Reason = "fetch_failed"          // failed: ACP-880056
	ReasonUploadFailed        Reason = "upload_failed"         // failed: ACP-880096, batchId set
	ReasonIngestionFailed     Reason = "ingestion_failed"      // failed: another Failed status
	ReasonAborted             Reason = "aborted"               // aborted: Aborted after every resubmit
	ReasonAPIUnavailable      Reason = "api_unavailable"       // failed: the API stayed unusable through every delivery
	ReasonDeadlineExceeded    Reason = "deadline_exceeded"     // timed_out: the job's deadline passed
	ReasonUnknownOrganization Reason = "unknown_organization"  // rejected: no credential for the organization
)

// Reasons lists every reason.
var Reasons = []Reason{
	ReasonInvalidCommand, ReasonSubjectMismatch, ReasonMappingNotStopped, ReasonMappingNotPublished,
	ReasonForbidden, ReasonUnauthorized, ReasonAPIError, ReasonFetchFailed, ReasonUploadFailed,
	ReasonIngestionFailed, ReasonAborted, ReasonAPIUnavailable, ReasonDeadlineExceeded,
	ReasonUnknownOrganization,
}

// Event tells the world what happened to a command. Field order and names are
// the contract's; every field is always written.
type Event struct {
	Type          EventType `json:"type"`
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId"`
	Organization  string    `json:"organization"`
	MappingID     string    `json:"mappingId"`
	RequestID     string    `json:"requestId"`
	Status        string    `json:"status"`
	NumRecords    int64     `json:"numRecords"`
	BatchID       string    `json:"batchId"`
	Info          string    `json:"info"`
	ErrorCode     string    `json:"errorCode"`
	Reason        Reason    `json:"reason"`
	// Detail is a human explanation of Reason (for example which field of a
	// rejected command is wrong). Added to the contract in v1.
	Detail      string `json:"detail"`
	Attempt     int    `json:"attempt"`
	Polls       int    `json:"polls"`
	TriggeredAt Time   `json:"triggeredAt,omitzero"`
	FinishedAt  Time   `json:"finishedAt,omitzero"`

	// Trace is carried from the command into the event's headers.
	Trace Trace `json:"-"`
}

// NewEvent starts an event of type t for cmd.
func NewEvent(t EventType, cmd Command) Event {
	return Event{
		Type:          t,
		CommandID:     cmd.ID,
		CorrelationID: cmd.CorrelationID,
		Organization:  cmd.Organization,
		MappingID:     cmd.MappingID,
		Trace:         cmd.Trace,
	}
}

// maxDetailLen bounds an event's detail.
const maxDetailLen = 1024

// Rejected is the event for a command that was not run.
func Rejected(cmd Command, err *RejectError, now time.Time) Event {
	ev := NewEvent(EventRejected, cmd)
	ev.Reason, ev.Detail, ev.FinishedAt = err.Reason, Bounded(err.Detail, maxDetailLen), Time(now)
	return ev
}

// Exhausted is the failed event of a command that used up its deliveries
// without an outcome (a worker stopped during its last delivery). rec is its
// recorded state, or nil.
func Exhausted(cmd Command, rec *Record, deliveries int, now time.Time) Event {
	ev := NewEvent(EventFailed, cmd)
	ev.Reason, ev.FinishedAt = ReasonAPIUnavailable, Time(now)
	ev.Detail = fmt.Sprintf("delivered %d times without an outcome", deliveries)
	if rec != nil {
		ev.RequestID, ev.Status, ev.Attempt, ev.Polls, ev.TriggeredAt = rec.RequestID, rec.Status, rec.Attempt, rec.Polls, rec.TriggeredAt
	}
	return ev
}

// Time is a UTC timestamp written with millisecond precision
// ("2026-12-01T02:01:05.120Z").
type Time time.Time

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes t in UTC with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+8) // quotes, and room for a 5-digit year
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads an RFC 3339 timestamp.
func (t *Time) UnmarshalJSON(b []byte) error {
	v, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(b))
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// IsZero reports whether t is unset.
func (t Time) IsZero() bool { return time.Time(t).IsZero() }
