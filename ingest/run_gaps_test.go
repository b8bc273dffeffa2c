package ingest_test

// Decisions of run.go that the code does not keep yet: these tests fail
// until it does (see the commit message).

import (
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// TestRedeliveryAdoptsItsOwnLostPOST is guarantee 2 (no duplicate
// trigger): a redelivery's POST may be the one its previous delivery sent
// and died before storing (between the POST and the first write). Then the
// POST answers In Progress with the job's own request: it is adopted, not
// waited for and triggered again. That holds whatever the record says the
// previous delivery was doing before that POST: nothing (no record), waiting
// for another request, or polling an attempt that then aborted.
func TestRedeliveryAdoptsItsOwnLostPOST(t *testing.T) {
	tests := []jobCase{
		{name: "no record",
			job:      redelivery(2, nil),
			triggers: []any{busy("2001"), accepted("2002")},
			statuses: map[string][]any{"2001": {succeeded(15)}, "2002": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1},
			wantLog:  seq(post, trig2001, get2001, stored)},
		{name: "a waiting record: the POST after the wait",
			job:      redelivery(2, recordOf(ingest.PhaseWaiting, "other-7", 1, 0)),
			triggers: []any{busy("2001"), accepted("2002")},
			statuses: map[string][]any{"other-7": {succeeded(3)}, "2001": {succeeded(15)}, "2002": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1},
			wantLog:  seq(getOther, post, trig2001, get2001, stored)},
		{name: "a running record that aborted: the resubmit's POST",
			cfg:      resubmit(1),
			job:      redelivery(2, recordOf(ingest.PhaseRunning, "2001", 1, 1)),
			triggers: []any{busy("2002"), accepted("2003")},
			statuses: map[string][]any{"2001": {abortedSt}, "2002": {succeeded(15)}, "2003": {succeeded(15)}},
			want:     outcome{Type: ingest.EventSucceeded, RequestID: "2002", Status: "Success", NumRecords: 15, Attempt: 2, Polls: 1},
			wantLog:  seq(get2001, post, "triggered 2002 attempt=2", get2002, stored)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, res := runCase(t, tt)
			if n := w.api.posts(); n != 1 {
				t.Errorf("%d POSTs, want 1: the job triggered again after meeting its own request", n)
			}
			wantOutcome(t, res, tt.want)
		})
	}
}

// TestJobWaitErrorsAreClassified: the status checks of another request
// that the job waits for (busy policy wait) fail as the job's own do: a
// 401 ends the job (rejected, unauthorized: nothing ran), a 500 "check your
// URI" is final after its retries; only transient failures hand the command
// back (TestJobHandBack), and an unknown request (404) means there is
// nothing to wait for (TestJobBusyMapping).
func TestJobWaitErrorsAreClassified(t *testing.T) {
	tests := []jobCase{
		{name: "401: rejected, unauthorized",
			triggers: []any{busy("other-7")}, statuses: map[string][]any{"other-7": {err401(campaign.OpStatus)}},
			want:    outcome{Type: ingest.EventRejected, Reason: ingest.ReasonUnauthorized, RequestID: "other-7", ErrorCode: "401013", Attempt: 1},
			wantLog: seq(post, waitOther, getOther)},
		{name: "500 check your URI: retried, then rejected, api_error",
			triggers: []any{busy("other-7")}, statuses: map[string][]any{"other-7": {errBadURI(campaign.OpStatus)}},
			want:    outcome{Type: ingest.EventRejected, Reason: ingest.ReasonAPIError, RequestID: "other-7", Attempt: 1},
			wantLog: seq(post, waitOther, rep(3, getOther))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
		})
	}
}

// TestJobBusyLoopIsPaced: when the API keeps answering the trigger In
// Progress with a request whose status check says there is nothing to wait
// for (it is unknown, or it already ended), the job does not POST again at
// once, in a loop without any wait, until its deadline: the POSTs are
// spaced by the polling schedule. With a schedule of an hour and a job
// deadline of 20ms, at most two POSTs fit; an unpaced loop makes hundreds.
func TestJobBusyLoopIsPaced(t *testing.T) {
	tests := []struct {
		name  string
		other []any // status answers of the request the trigger names
	}{
		{name: "the running request is unknown", other: []any{errNotFound(campaign.OpStatus)}},
		{name: "the running request already ended", other: []any{succeeded(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.cfg.Schedule = ingest.Schedule{Initial: time.Hour, Max: time.Hour}
			w.script([]any{busy("other-7")}, map[string][]any{"other-7": tt.other})
			job := newJob()
			job.Command.Timeout = ingest.Duration(20 * time.Millisecond)
			res := w.run(t, job)
			if n := w.api.posts(); n > 2 {
				t.Errorf("%d POSTs within the job's 20ms, want at most 2", n)
			}
			if res.Event == nil || res.Event.Type != ingest.EventTimedOut {
				t.Errorf("result %+v, want timed_out", res)
			}
		})
	}
}
