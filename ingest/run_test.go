package ingest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// Lines of the call log (see seqLog).
const (
	post      = "POST"
	get2001   = "GET 2001"
	get2002   = "GET 2002"
	getOther  = "GET other-7"
	trig2001  = "triggered 2001 attempt=1"
	stored    = "triggered stored"
	lost      = "triggered lost"
	slow      = "triggered slow"
	waitOther = "progress waiting other-7 polls=0"
)

func running(id string, polls int) string {
	return fmt.Sprintf("progress running %s polls=%d", id, polls)
}

// TestJobOutcome: the status of the job's own request decides its
// terminal event; an Aborted one is submitted again while resubmits last.
func TestJobOutcome(t *testing.T) {
	tests := []jobCase{
		{name: "success at the first check",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			want:    outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1},
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "success after checks in progress, each one recorded",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, inProgress, succeeded(15)}},
			want:    outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 3},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 1), get2001, running("2001", 2), get2001)},
		{name: "failed to fetch: fetch_failed",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, fetchFail}},
			want: outcome{Type: ingest.EventFailed, Reason: ingest.ReasonFetchFailed, RequestID: "2001", Status: "Failed",
				ErrorCode: campaign.CodeFetchFailed, Attempt: 1, Polls: 2}},
		{name: "failed to upload: upload_failed with its batch",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {uploadFail("01JBATCH")}},
			want: outcome{Type: ingest.EventFailed, Reason: ingest.ReasonUploadFailed, RequestID: "2001", Status: "Failed",
				ErrorCode: campaign.CodeUploadFailed, BatchID: "01JBATCH", Attempt: 1, Polls: 1}},
		{name: "failed otherwise: ingestion_failed with the code of its info",
			triggers: []any{accepted("2001")},
			statuses: map[string][]any{"2001": {campaign.StatusResponse{Status: campaign.StatusFailed, Info: "Mapping Id: XDM44. ACP-880185 Validation failed."}}},
			want: outcome{Type: ingest.EventFailed, Reason: ingest.ReasonIngestionFailed, RequestID: "2001", Status: "Failed",
				ErrorCode: campaign.CodeValidationFailed, Attempt: 1, Polls: 1}},
		{name: "an unknown status is polled on",
			triggers: []any{accepted("2001")},
			statuses: map[string][]any{"2001": {campaign.StatusResponse{Status: "Queued"}, succeeded(2)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 2, Attempt: 1, Polls: 2},
			wantLog:  seq(post, trig2001, get2001, stored, running("2001", 1), get2001)},
		{name: "aborted, no resubmit: aborted",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {abortedSt}},
			want:    outcome{Type: ingest.EventAborted, Reason: ingest.ReasonAborted, RequestID: "2001", Status: "Aborted", Attempt: 1, Polls: 1},
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "aborted, resubmitted: the request is stored, then a new trigger with attempt 2",
			cfg:      resubmit(1),
			triggers: []any{accepted("2001"), accepted("2002")},
			statuses: map[string][]any{"2001": {abortedSt}, "2002": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2002", Status: "Success", NumRecords: 15, Attempt: 2, Polls: 1},
			wantLog:  seq(post, trig2001, get2001, stored, running("2001", 1), post, "triggered 2002 attempt=2", get2002, stored)},
		{name: "aborted after every resubmit: aborted with the last attempt",
			cfg:      resubmit(2),
			triggers: []any{accepted("2001"), accepted("2002"), accepted("2003")},
			statuses: map[string][]any{"2001": {abortedSt}, "2002": {inProgress, abortedSt}, "2003": {abortedSt}},
			want:     outcome{Type: ingest.EventAborted, Reason: ingest.ReasonAborted, RequestID: "2003", Status: "Aborted", Attempt: 3, Polls: 1},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 1),
				post, "triggered 2002 attempt=2", get2002, stored, running("2002", 1), get2002,
				post, "triggered 2003 attempt=3", "GET 2003", stored)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
		})
	}
}

// TestJobTriggerRefused: a trigger answer that starts no ingestion ends the
// job at once: rejected on the first attempt (nothing ran), failed on a
// resubmit (an earlier attempt ran).
func TestJobTriggerRefused(t *testing.T) {
	tests := []struct {
		jobCase
		wantDetail string
	}{
		{jobCase: jobCase{name: "mapping not stopped: rejected",
			triggers: []any{notStopped()},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonMappingNotStopped, Status: "Failed", Attempt: 1},
			wantLog:  seq(post)},
			wantDetail: "XDM Mapping ID: XDM44 is not stopped"},
		{jobCase: jobCase{name: "mapping not published: rejected",
			triggers: []any{notPublished()},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonMappingNotPublished, Status: "Failed", Attempt: 1},
			wantLog:  seq(post)},
			wantDetail: "XDM Mapping ID: XDM44 is not published"},
		{jobCase: jobCase{name: "Failed without a request id: rejected, ingestion_failed",
			triggers: []any{campaign.TriggerResponse{Status: campaign.StatusFailed, Info: "ACP-880185 Validation failed for the mapping"}},
			want: outcome{Type: ingest.EventRejected, Reason: ingest.ReasonIngestionFailed, Status: "Failed",
				ErrorCode: campaign.CodeValidationFailed, Attempt: 1},
			wantLog: seq(post)},
			wantDetail: "status Failed and no request id"},
		{jobCase: jobCase{name: "unknown status without a request id: rejected, ingestion_failed",
			triggers: []any{campaign.TriggerResponse{Status: "Queued"}},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonIngestionFailed, Status: "Queued", Attempt: 1},
			wantLog:  seq(post)},
			wantDetail: "status Queued and no request id"},
		{jobCase: jobCase{name: "unknown status with a request id: polled as the job's own",
			triggers: []any{campaign.TriggerResponse{Status: "Queued", RequestID: "2001"}},
			statuses: map[string][]any{"2001": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1},
			wantLog:  seq(post, trig2001, get2001, stored)}},
		{jobCase: jobCase{name: "Failed without a request id on a resubmit: failed, ingestion_failed",
			cfg:      resubmit(1),
			triggers: []any{accepted("2001"), campaign.TriggerResponse{Status: campaign.StatusFailed, Info: "unexpected"}},
			statuses: map[string][]any{"2001": {abortedSt}},
			want:     outcome{Type: ingest.EventFailed, Reason: ingest.ReasonIngestionFailed, RequestID: "2001", Status: "Failed", Attempt: 2, Polls: 1},
			wantLog:  seq(post, trig2001, get2001, stored, running("2001", 1), post)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt.jobCase)
			wantOutcome(t, res, tt.want)
			if res.Event != nil && !strings.Contains(res.Event.Detail, tt.wantDetail) {
				t.Errorf("detail %q, want it to hold %q", res.Event.Detail, tt.wantDetail)
			}
		})
	}
}

// TestJobBusyMapping: a trigger answered In Progress names a running
// request of the mapping. Policy wait polls it to its end (recording the
// wait), then triggers again; policy attach adopts it. A request that is
// almost surely the job's own (a redelivery without a request of its own,
// a POST whose answer was lost) is adopted whatever the policy.
func TestJobBusyMapping(t *testing.T) {
	succeeded2001 := outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1}
	tests := []jobCase{
		{name: "wait: polls the other request to its end, then triggers its own",
			cfg:      policy(ingest.BusyWait),
			triggers: []any{busy("other-7"), accepted("2001")},
			statuses: map[string][]any{"other-7": {inProgress, succeeded(3)}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(post, waitOther, getOther, getOther, post, trig2001, get2001, stored)},
		{name: "wait is the default policy",
			triggers: []any{busy("other-7"), accepted("2001")},
			statuses: map[string][]any{"other-7": {fetchFail}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(post, waitOther, getOther, post, trig2001, get2001, stored)},
		{name: "wait: the other request is unknown (404), nothing to wait for",
			triggers: []any{busy("other-7"), accepted("2001")},
			statuses: map[string][]any{"other-7": {errNotFound(campaign.OpStatus)}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(post, waitOther, getOther, post, trig2001, get2001, stored)},
		{name: "wait: busy again with a third request, wait again",
			triggers: []any{busy("other-7"), busy("other-8"), accepted("2001")},
			statuses: map[string][]any{"other-7": {abortedSt}, "other-8": {succeeded(1)}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog: seq(post, waitOther, getOther, post, "progress waiting other-8 polls=0", "GET other-8",
				post, trig2001, get2001, stored)},
		{name: "attach: adopts the running request, no second POST",
			cfg:      policy(ingest.BusyAttach),
			triggers: []any{busy("other-7")},
			statuses: map[string][]any{"other-7": {inProgress, succeeded(3)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "other-7", Status: "Success", NumRecords: 3, Attempt: 1, Polls: 2},
			wantLog:  seq(post, "triggered other-7 attempt=1", getOther, stored, running("other-7", 1), getOther)},
		{name: "redelivery without a record: In Progress is its own, adopted under wait",
			cfg: policy(ingest.BusyWait), job: redelivery(2, nil),
			triggers: []any{busy("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			want:    succeeded2001,
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "redelivery of a claimed id (no request yet): In Progress is its own",
			job:      redelivery(2, recordOf(ingest.PhaseClaimed, "", 1, 0)),
			triggers: []any{busy("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			want:    succeeded2001,
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "a POST answered 503 (maybe submitted), then In Progress: its own, adopted",
			triggers: []any{err503(campaign.OpTrigger, 0), busy("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "a POST without an answer, then In Progress: its own, adopted",
			triggers: []any{errNetwork(campaign.OpTrigger), busy("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "a POST throttled (429, not submitted), then In Progress: another's, waited for",
			triggers: []any{err429(campaign.OpTrigger, time.Millisecond), busy("other-7"), accepted("2001")},
			statuses: map[string][]any{"other-7": {succeeded(3)}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(post, post, waitOther, getOther, post, trig2001, get2001, stored)},
		{name: "redelivery of a waiting record: waits for the other request before any POST",
			job:      redelivery(2, recordOf(ingest.PhaseWaiting, "other-7", 1, 0)),
			triggers: []any{accepted("2001")},
			statuses: map[string][]any{"other-7": {inProgress, succeeded(3)}, "2001": {succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(getOther, getOther, post, trig2001, get2001, stored)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
			for _, rec := range w.journal.records() {
				if rec.Phase == ingest.PhaseWaiting && (rec.RequestID == "" || rec.Attempt != 1 || !time.Time(rec.UpdatedAt).Equal(t0)) {
					t.Errorf("waiting record %+v does not name the request waited for", rec)
				}
			}
		})
	}
}

// TestJobResume: a redelivery whose record names its request polls it and
// never triggers again; the checks go on counting.
func TestJobResume(t *testing.T) {
	tests := []jobCase{
		{name: "running record: no POST, polls the recorded request",
			job:      redelivery(2, recordOf(ingest.PhaseRunning, "2001", 1, 3)),
			statuses: map[string][]any{"2001": {inProgress, succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 5},
			wantLog:  seq(get2001, running("2001", 4), get2001)},
		{name: "running record of a resubmit: resumes that attempt",
			cfg:      resubmit(2),
			job:      redelivery(3, recordOf(ingest.PhaseRunning, "2002", 2, 1)),
			statuses: map[string][]any{"2002": {fetchFail}},
			want: outcome{Type: ingest.EventFailed, Reason: ingest.ReasonFetchFailed, RequestID: "2002", Status: "Failed",
				ErrorCode: campaign.CodeFetchFailed, Attempt: 2, Polls: 2},
			wantLog: seq(get2002)},
		{name: "running record aborted, a resubmit left: triggers attempt 2 (the record is already stored)",
			cfg:      resubmit(1),
			job:      redelivery(2, recordOf(ingest.PhaseRunning, "2001", 1, 1)),
			triggers: []any{accepted("2002")},
			statuses: map[string][]any{"2001": {abortedSt}, "2002": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2002", Status: "Success", NumRecords: 15, Attempt: 2, Polls: 1},
			wantLog:  seq(get2001, post, "triggered 2002 attempt=2", get2002, stored)},
		{name: "running record of the last attempt aborted: aborted",
			cfg:      resubmit(1),
			job:      redelivery(2, recordOf(ingest.PhaseRunning, "2002", 2, 1)),
			statuses: map[string][]any{"2002": {abortedSt}},
			want:     outcome{Type: ingest.EventAborted, Reason: ingest.ReasonAborted, RequestID: "2002", Status: "Aborted", Attempt: 2, Polls: 2},
			wantLog:  seq(get2002)},
		{name: "recovered record (from a triggered event): no POST",
			job:      redelivery(2, &ingest.Record{CommandID: testCmdID, Organization: testOrg, MappingID: testMapping, Phase: ingest.PhaseRunning, RequestID: "2001", Attempt: 1}),
			statuses: map[string][]any{"2001": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1},
			wantLog:  seq(get2001)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
		})
	}
}

// TestJobTriggeredEvent: the triggered event names the request, its
// attempt and the trigger's answer, at the clock's time; the final record
// keeps when the request was triggered.
func TestJobTriggeredEvent(t *testing.T) {
	tests := []struct {
		name       string
		cfg        func(*ingest.Config)
		triggers   []any
		wantStatus string
		wantInfo   string
	}{
		{name: "accepted", triggers: []any{accepted("2001")},
			wantStatus: "Success", wantInfo: "Ingestion request submitted successfully for the Mapping ID: XDM44"},
		{name: "adopted", cfg: policy(ingest.BusyAttach), triggers: []any{busy("2001")},
			wantStatus: "In Progress", wantInfo: "Ingestion request already in progress for the Mapping ID: XDM44"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, res := runCase(t, jobCase{cfg: tt.cfg, triggers: tt.triggers, statuses: map[string][]any{"2001": {succeeded(1)}}})
			want := ingest.Event{
				Type: ingest.EventTriggered, CommandID: testCmdID, CorrelationID: "corr-1", Organization: testOrg, MappingID: testMapping,
				RequestID: "2001", Status: tt.wantStatus, Info: tt.wantInfo, Attempt: 1, TriggeredAt: ingest.Time(t0),
			}
			if evs := w.journal.events(); len(evs) != 1 || evs[0] != want {
				t.Errorf("triggered events\n got  %+v\n want [%+v]", evs, want)
			}
			if res.Event == nil || !time.Time(res.Record.TriggeredAt).Equal(t0) || !time.Time(res.Event.TriggeredAt).Equal(t0) {
				t.Errorf("result %+v does not keep triggeredAt %v", res, t0)
			}
		})
	}
}

// TestJobObserver: every check of the job's own request is observed, an
// unknown status as unknown.
func TestJobObserver(t *testing.T) {
	w, res := runCase(t, jobCase{triggers: []any{accepted("2001")},
		statuses: map[string][]any{"2001": {inProgress, campaign.StatusResponse{Status: "Queued"}, succeeded(1)}}})
	if res.Event == nil || res.Event.Type != ingest.EventSucceeded {
		t.Fatalf("result %+v", res)
	}
	want := []string{"In Progress known=true", "Queued known=false", "Success known=true"}
	if got := w.obs.seen(); !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}
