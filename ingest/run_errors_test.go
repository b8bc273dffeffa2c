package ingest_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// TestJobAPIErrors: the API's errors are classified. 401 and 403 end the
// job at once (the client already tried a fresh token); 400/404 are
// api_error; 500 "check your URI" is retried within the delivery, then
// final; 429, 5xx, network errors and malformed answers are retried within
// the delivery (tests of the hand-back are in TestJobHandBack).
func TestJobAPIErrors(t *testing.T) {
	const (
		trig = campaign.OpTrigger
		stat = campaign.OpStatus
	)
	succeeded2001 := outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1}
	ok2001 := map[string][]any{"2001": {succeeded(15)}}
	tests := []jobCase{
		{name: "401 on the trigger: rejected, unauthorized, not retried",
			triggers: []any{err401(trig)},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonUnauthorized, ErrorCode: "401013", Attempt: 1},
			wantLog:  seq(post)},
		{name: "401 on a resubmit's trigger: failed, unauthorized (an attempt ran)",
			cfg:      resubmit(1),
			triggers: []any{accepted("2001"), err401(trig)},
			statuses: map[string][]any{"2001": {abortedSt}},
			want:     outcome{Type: ingest.EventFailed, Reason: ingest.ReasonUnauthorized, RequestID: "2001", ErrorCode: "401013", Attempt: 2, Polls: 1},
			wantLog:  seq(post, trig2001, get2001, stored, running("2001", 1), post)},
		{name: "401 on a status check: failed, unauthorized",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {err401(stat)}},
			want:    outcome{Type: ingest.EventFailed, Reason: ingest.ReasonUnauthorized, RequestID: "2001", ErrorCode: "401013", Attempt: 1},
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "403 on the trigger: rejected, forbidden, not retried",
			triggers: []any{err403(trig, "403003")},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonForbidden, ErrorCode: "403003", Attempt: 1},
			wantLog:  seq(post)},
		{name: "403 token missing (403010) on the trigger: rejected, unauthorized",
			triggers: []any{err403(trig, "403010")},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonUnauthorized, ErrorCode: "403010", Attempt: 1},
			wantLog:  seq(post)},
		{name: "403 on a status check: failed, forbidden",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, err403(stat, "403003")}},
			want:    outcome{Type: ingest.EventFailed, Reason: ingest.ReasonForbidden, RequestID: "2001", ErrorCode: "403003", Attempt: 1, Polls: 1},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 1), get2001)},
		{name: "400 on the trigger: rejected, api_error, not retried",
			triggers: []any{errBadRequest(trig)},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonAPIError, Attempt: 1},
			wantLog:  seq(post)},
		{name: "404 on a status check: failed, api_error",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errNotFound(stat)}},
			want:    outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIError, RequestID: "2001", Attempt: 1},
			wantLog: seq(post, trig2001, get2001, stored)},
		{name: "500 check your URI on every try: retried RetryAttempts times, then rejected, api_error",
			triggers: []any{errBadURI(trig)},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonAPIError, Attempt: 1},
			wantLog:  rep(3, post)},
		{name: "500 check your URI on every check: retried, then failed, api_error",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errBadURI(stat)}},
			want:    outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIError, RequestID: "2001", Attempt: 1},
			wantLog: seq(post, trig2001, rep(3, get2001), stored)},
		{name: "500 check your URI once: retried within the delivery",
			triggers: []any{errBadURI(trig), accepted("2001")}, statuses: ok2001,
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "503 once: retried within the delivery",
			triggers: []any{err503(trig, 0), accepted("2001")}, statuses: ok2001,
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "no answer once: retried within the delivery",
			triggers: []any{errNetwork(trig), accepted("2001")}, statuses: ok2001,
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "malformed answer once: retried within the delivery",
			triggers: []any{errMalformed(trig), accepted("2001")}, statuses: ok2001,
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
		{name: "status check failing twice: retried, the errors are not checks",
			triggers: []any{accepted("2001")},
			statuses: map[string][]any{"2001": {err503(stat, 0), errNetwork(stat), succeeded(15)}},
			want:     succeeded2001,
			wantLog:  seq(post, trig2001, get2001, get2001, get2001, stored)},
		{name: "429 with Retry-After: retried after the Retry-After, not the backoff",
			// With a backoff of an hour, only the Retry-After (1ms) lets
			// the job end before its deadline of 2s (it would end timed_out).
			cfg: func(c *ingest.Config) {
				c.RetryInitial, c.RetryMax, c.JobTimeout = time.Hour, time.Hour, 2*time.Second
			},
			triggers: []any{err429(trig, time.Millisecond), accepted("2001")}, statuses: ok2001,
			want:    succeeded2001,
			wantLog: seq(post, post, trig2001, get2001, stored)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
			if tt.want.Type != ingest.EventSucceeded && (res.Event == nil || res.Event.Detail == "") {
				t.Errorf("the event's detail does not say which answer ended the job")
			}
		})
	}
}

// TestJobHandBack: a transient failure that outlasts RetryAttempts within
// the delivery hands the command back, after RedeliverDelay or the answer's
// Retry-After when longer, with no event; the job's request is stored first.
func TestJobHandBack(t *testing.T) {
	const (
		trig = campaign.OpTrigger
		stat = campaign.OpStatus
	)
	errJournal := errors.New("kv: no responders")
	tests := []struct {
		jobCase
		wantStatus int // HTTP status of the cause; 0: the journal's error
	}{
		{jobCase: jobCase{name: "503 on every POST: handed back, nothing to record",
			triggers: []any{err503(trig, 0)}, wantRetry: 15 * time.Second,
			wantLog: rep(3, post)}, wantStatus: http.StatusServiceUnavailable},
		{jobCase: jobCase{name: "503 with a Retry-After longer than the delay: handed back after the Retry-After",
			cfg:      func(c *ingest.Config) { c.RedeliverDelay, c.RetryMax = time.Millisecond, 10*time.Millisecond },
			triggers: []any{err503(trig, 3*time.Millisecond)}, wantRetry: 3 * time.Millisecond,
			wantLog: rep(3, post)}, wantStatus: http.StatusServiceUnavailable},
		{jobCase: jobCase{name: "429 with a Retry-After longer than RetryMax: handed back at once after the Retry-After",
			cfg:      func(c *ingest.Config) { c.RedeliverDelay = time.Millisecond },
			triggers: []any{err429(trig, time.Hour)}, wantRetry: time.Hour,
			wantLog: rep(1, post)}, wantStatus: http.StatusTooManyRequests},
		{jobCase: jobCase{name: "429 with a Retry-After shorter than the delay: handed back after the delay",
			triggers: []any{err429(trig, time.Millisecond)}, wantRetry: 15 * time.Second,
			wantLog: rep(3, post)}, wantStatus: http.StatusTooManyRequests},
		{jobCase: jobCase{name: "no answer to any status check: the request is stored, then handed back",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errNetwork(stat)}},
			wantRetry: 15 * time.Second,
			wantLog:   seq(post, trig2001, rep(3, get2001), stored, running("2001", 0))}},
		{jobCase: jobCase{name: "malformed answers after a stored check: handed back, nothing more to store",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, errMalformed(stat)}},
			wantRetry: 15 * time.Second,
			wantLog:   seq(post, trig2001, get2001, stored, running("2001", 1), rep(3, get2001))}, wantStatus: http.StatusOK},
		{jobCase: jobCase{name: "the request waited for cannot be checked: handed back, still waiting",
			triggers: []any{busy("other-7")}, statuses: map[string][]any{"other-7": {err503(stat, 0)}},
			wantRetry: 15 * time.Second,
			wantLog:   seq(post, waitOther, rep(3, getOther))}, wantStatus: http.StatusServiceUnavailable},
		{jobCase: jobCase{name: "the waiting state cannot be stored: handed back before waiting",
			triggers: []any{busy("other-7")}, progressErr: errJournal, wantRetry: 15 * time.Second,
			wantLog: seq(post, waitOther+" failed")}},
		{jobCase: jobCase{name: "a check cannot be stored: handed back",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress}},
			progressErr: errJournal, wantRetry: 15 * time.Second,
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 1)+" failed", running("2001", 1)+" failed")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt.jobCase)
			wantHandBack(t, res, tt.wantRetry)
			var ae *campaign.APIError
			switch {
			case tt.wantStatus == 0 && tt.progressErr != nil && !errors.Is(res.Err, tt.progressErr):
				t.Errorf("hand-back error %v, want the journal's", res.Err)
			case tt.wantStatus != 0 && (!errors.As(res.Err, &ae) || ae.StatusCode != tt.wantStatus):
				t.Errorf("hand-back error %v, want the API's %d", res.Err, tt.wantStatus)
			}
		})
	}
}

// TestJobLastDelivery: on the last delivery no redelivery follows, so a
// transient failure ends the job: failed, api_unavailable.
func TestJobLastDelivery(t *testing.T) {
	tests := []jobCase{
		{name: "503 on every POST: failed, api_unavailable",
			job:      last(redelivery(5, nil)),
			triggers: []any{err503(campaign.OpTrigger, time.Millisecond)},
			want:     outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIUnavailable, Attempt: 1},
			wantLog:  rep(3, post)},
		{name: "status checks keep failing: failed with the request, stored first",
			job:      last(newJob()),
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errNetwork(campaign.OpStatus)}},
			want:    outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIUnavailable, RequestID: "2001", Attempt: 1},
			wantLog: seq(post, trig2001, rep(3, get2001), stored, running("2001", 0))},
		{name: "resumed request keeps failing: failed with its last status",
			job:      last(redelivery(5, &ingest.Record{CommandID: testCmdID, Organization: testOrg, MappingID: testMapping, Phase: ingest.PhaseRunning, RequestID: "2001", Attempt: 1, Polls: 4, Status: "In Progress"})),
			statuses: map[string][]any{"2001": {err503(campaign.OpStatus, 0)}},
			want:     outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIUnavailable, RequestID: "2001", Status: "In Progress", Attempt: 1, Polls: 4},
			wantLog:  rep(3, get2001)},
		{name: "a permanent answer keeps its own reason",
			job:      last(newJob()),
			triggers: []any{err403(campaign.OpTrigger, "403003")},
			want:     outcome{Type: ingest.EventRejected, Reason: ingest.ReasonForbidden, ErrorCode: "403003", Attempt: 1},
			wantLog:  seq(post)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
		})
	}
}
