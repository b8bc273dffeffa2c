package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// wantInOrder checks that lines occur in the call log in this order (other
// lines may come between).
func wantInOrder(t *testing.T, w *world, lines ...string) {
	t.Helper()
	got := w.log.get()
	i := 0
	for _, l := range got {
		if i < len(lines) && l == lines[i] {
			i++
		}
	}
	if i < len(lines) {
		t.Errorf("calls %q: %q missing or out of order (want %q in order)", got, lines[i], lines)
	}
}

// TestJobRequestDurableBeforeStatus is guarantee 2 (no duplicate
// trigger): the request id is durable, in the triggered event or else in
// the job state, before the job acts on any status of it. When the
// triggered event was not stored, Progress stores the request before the
// outcome, the next check or a resubmit; when that fails too, the command
// is handed back and no terminal event is given.
func TestJobRequestDurableBeforeStatus(t *testing.T) {
	errPublish := errors.New("nats: timeout")
	errKV := errors.New("kv: no responders")
	tests := []struct {
		jobCase
		wantOrder []string
	}{
		{jobCase: jobCase{name: "first check terminal: stored before the outcome",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			triggeredErr: errPublish,
			want:         outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1}},
			wantOrder: seq(post, trig2001, get2001, lost, running("2001", 1))},
		{jobCase: jobCase{name: "first check in progress: stored before the next check",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, succeeded(15)}},
			triggeredErr: errPublish,
			want:         outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 2}},
			wantOrder: seq(post, trig2001, get2001, lost, running("2001", 1), get2001)},
		{jobCase: jobCase{name: "first check aborted: stored before the resubmit's POST",
			cfg:      resubmit(1),
			triggers: []any{accepted("2001"), accepted("2002")}, statuses: map[string][]any{"2001": {abortedSt}, "2002": {succeeded(15)}},
			triggeredErr: errPublish,
			want:         outcome{Type: ingest.EventSucceeded, RequestID: "2002", Status: "Success", NumRecords: 15, Attempt: 2, Polls: 1}},
			wantOrder: seq(post, trig2001, get2001, lost, running("2001", 1), post, "triggered 2002 attempt=2", get2002, lost, running("2002", 1))},
		{jobCase: jobCase{name: "triggered event slow, then stored: the request is recorded meanwhile",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, succeeded(15)}},
			triggeredSlow: true,
			want:          outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 2}},
			wantOrder: seq(post, trig2001, get2001, slow, running("2001", 1), stored, get2001)},
		{jobCase: jobCase{name: "triggered event slow, then lost: the request is recorded meanwhile",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			triggeredSlow: true, triggeredErr: errPublish,
			want: outcome{Type: ingest.EventSucceeded, RequestID: "2001", Status: "Success", NumRecords: 15, Attempt: 1, Polls: 1}},
			wantOrder: seq(post, trig2001, get2001, slow, running("2001", 1), lost)},
		{jobCase: jobCase{name: "first check fails for good (404): stored before the failed event",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errNotFound("status")}},
			triggeredErr: errPublish,
			want:         outcome{Type: ingest.EventFailed, Reason: ingest.ReasonAPIError, RequestID: "2001", Attempt: 1}},
			wantOrder: seq(post, trig2001, get2001, lost, running("2001", 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, res := runCase(t, tt.jobCase)
			wantInOrder(t, w, tt.wantOrder...)
			wantOutcome(t, res, tt.want)
		})
	}

	nothingDurable := []jobCase{
		{name: "nothing durable, first check terminal: handed back, no terminal event",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			wantLog: seq(post, trig2001, get2001, lost, running("2001", 1)+" failed", running("2001", 1)+" failed")},
		{name: "nothing durable, first check fails for good: handed back, no terminal event",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {errNotFound("status")}},
			wantLog: seq(post, trig2001, get2001, lost, running("2001", 0)+" failed", running("2001", 0)+" failed")},
	}
	for _, slowEvent := range []bool{false, true} {
		for _, tt := range nothingDurable {
			if slowEvent {
				tt.name += ", the event slow at first"
				tt.wantLog = nil
			}
			tt.triggeredSlow = slowEvent
			t.Run(tt.name, func(t *testing.T) {
				tt.triggeredErr, tt.progressErr = errPublish, errKV
				_, res := runCase(t, tt)
				wantHandBack(t, res, 15*time.Second)
				if !errors.Is(res.Err, errKV) || !errors.Is(res.Err, errPublish) {
					t.Errorf("hand-back error %v, want both the publication's and the write's", res.Err)
				}
			})
		}
	}
}

// TestJobDeadline: the job's deadline counts from the command's
// publication (its timeout, capped by JobTimeout); once passed, the job
// ends timed_out/deadline_exceeded with what it knows, even on the last
// delivery.
func TestJobDeadline(t *testing.T) {
	longAgo := func(job ingest.Job, timeout time.Duration) ingest.Job {
		job.Published = time.Now().Add(-2 * time.Hour)
		job.Command.Timeout = ingest.Duration(timeout)
		return job
	}
	resumed := &ingest.Record{CommandID: testCmdID, Organization: testOrg, MappingID: testMapping,
		Phase: ingest.PhaseRunning, RequestID: "2001", Attempt: 1, Polls: 4, Status: "In Progress"}
	timedOut := outcome{Type: ingest.EventTimedOut, Reason: ingest.ReasonDeadlineExceeded, Attempt: 1}
	tests := []jobCase{
		{name: "passed before a first delivery: timed_out, nothing triggered",
			job:     longAgo(newJob(), time.Hour),
			want:    timedOut,
			wantLog: seq(post + " abandoned")},
		{name: "passed before a redelivery: timed_out with the recorded request and status",
			job:     longAgo(redelivery(2, resumed), time.Hour),
			want:    outcome{Type: ingest.EventTimedOut, Reason: ingest.ReasonDeadlineExceeded, RequestID: "2001", Status: "In Progress", Attempt: 1, Polls: 4},
			wantLog: seq(get2001 + " abandoned")},
		{name: "passed, on the last delivery: timed_out, not api_unavailable",
			job:     last(longAgo(redelivery(5, resumed), time.Hour)),
			want:    outcome{Type: ingest.EventTimedOut, Reason: ingest.ReasonDeadlineExceeded, RequestID: "2001", Status: "In Progress", Attempt: 1, Polls: 4},
			wantLog: seq(get2001 + " abandoned")},
		{name: "a timeout beyond JobTimeout is capped by it",
			cfg:     func(c *ingest.Config) { c.JobTimeout = time.Hour },
			job:     longAgo(newJob(), 10*time.Hour),
			want:    timedOut,
			wantLog: seq(post + " abandoned")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt)
			wantOutcome(t, res, tt.want)
			if res.Event != nil && !strings.Contains(res.Event.Detail, "deadline") {
				t.Errorf("detail %q does not name the deadline", res.Event.Detail)
			}
		})
	}

	t.Run("passes during a status check: the request is stored, timed_out", func(t *testing.T) {
		w := newWorld(t)
		w.script([]any{accepted("2001")}, map[string][]any{"2001": {stall{}}})
		job := newJob()
		job.Command.Timeout = ingest.Duration(20 * time.Millisecond)
		res := w.run(t, job)
		if got := w.log.get(); len(got) > 0 && got[0] == post+" abandoned" {
			t.Skip("the machine is too slow: the 20ms deadline passed before the POST")
		}
		wantLog(t, w, post, trig2001, get2001, stored, running("2001", 0))
		wantOutcome(t, res, outcome{Type: ingest.EventTimedOut, Reason: ingest.ReasonDeadlineExceeded, RequestID: "2001", Attempt: 1})
	})
}

// TestJobWorkerStopping: the worker's context ends (it is stopping): the
// job returns Interrupted at its next step, with its request stored, and
// neither ends the command nor asks for a delay, even on the last delivery.
func TestJobWorkerStopping(t *testing.T) {
	tests := []struct {
		jobCase
		stopOn      string // "stall": when a stalled call starts; "progress": after the first Progress
		wantRequest string // of the result's record
	}{
		{jobCase: jobCase{name: "during the POST: nothing to store",
			triggers: []any{stall{}},
			wantLog:  seq(post)}, stopOn: "stall"},
		{jobCase: jobCase{name: "during the first status check: the request is stored first",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {stall{}}},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 0))}, stopOn: "stall", wantRequest: "2001"},
		{jobCase: jobCase{name: "during the first status check, triggered event lost: stored once",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {stall{}}},
			triggeredErr: errors.New("nats: timeout"),
			wantLog:      seq(post, trig2001, get2001, lost, running("2001", 0))}, stopOn: "stall", wantRequest: "2001"},
		{jobCase: jobCase{name: "between two checks: already stored, nothing more",
			// A wait of an hour: the stop, not the timer, ends it.
			cfg:      func(c *ingest.Config) { c.Schedule = ingest.Schedule{Initial: time.Hour, Max: time.Hour} },
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress}},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 1))}, stopOn: "progress", wantRequest: "2001"},
		{jobCase: jobCase{name: "while waiting for another request: the wait is stored",
			triggers: []any{busy("other-7")}, statuses: map[string][]any{"other-7": {stall{}}},
			wantLog: seq(post, waitOther, getOther)}, stopOn: "stall", wantRequest: "other-7"},
		{jobCase: jobCase{name: "on the last delivery: interrupted all the same",
			job:      last(redelivery(5, nil)),
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {stall{}}},
			wantLog: seq(post, trig2001, get2001, stored, running("2001", 0))}, stopOn: "stall", wantRequest: "2001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.cfg != nil {
				tt.cfg(&w.cfg)
			}
			w.script(tt.triggers, tt.statuses)
			w.journal.triggeredErr = tt.triggeredErr
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			switch tt.stopOn {
			case "stall":
				w.api.onStall = stop
			case "progress":
				w.journal.onProgress = func(ingest.Record) { stop() }
			}
			job := tt.job
			if job.Command.ID == "" {
				job = newJob()
			}
			res := w.runCtx(t, ctx, job)
			wantLog(t, w, tt.wantLog...)
			if !res.Interrupted || res.Event != nil || res.Retry != 0 || !errors.Is(res.Err, context.Canceled) {
				t.Errorf("result %+v, want interrupted by the stop, no event, no delay", res)
			}
			if res.Record.RequestID != tt.wantRequest || res.Record.Phase == ingest.PhaseDone {
				t.Errorf("record %+v, want request %q not done", res.Record, tt.wantRequest)
			}
		})
	}
}

// TestStartPanic: a panic in a step, the first one or a later check on the
// timer's goroutine, is recovered and reported once in Result.Panic with
// its stack; Run raises it again in the caller.
func TestStartPanic(t *testing.T) {
	tests := []struct {
		name        string
		triggers    []any
		statuses    map[string][]any
		wantRequest string
	}{
		{name: "in the first step", triggers: []any{boom{}}},
		{name: "in a later check", triggers: []any{accepted("2001")},
			statuses: map[string][]any{"2001": {inProgress, boom{}}}, wantRequest: "2001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.script(tt.triggers, tt.statuses)
			results := make(chan ingest.Result, 2)
			ingest.NewRunner(w.api, w.cfg).Start(context.Background(), w.journal, newJob(), func(res ingest.Result) { results <- res })
			res := <-results
			if res.Panic == nil || !strings.Contains(fmt.Sprint(res.Panic.Value), "boom") || len(res.Panic.Stack) == 0 {
				t.Fatalf("result %+v, want the panic with its stack", res)
			}
			if res.Event != nil || res.Record.RequestID != tt.wantRequest {
				t.Errorf("result %+v, want no event and request %q", res, tt.wantRequest)
			}
			select {
			case res := <-results:
				t.Errorf("done called twice, again with %+v", res)
			default:
			}
		})
	}
	t.Run("Run raises it again", func(t *testing.T) {
		w := newWorld(t)
		w.script([]any{boom{}}, nil)
		defer func() {
			if p, ok := recover().(*ingest.StepPanic); !ok || !strings.Contains(fmt.Sprint(p.Value), "boom") {
				t.Errorf("Run panicked with %v, want the step's *StepPanic", p)
			}
		}()
		w.run(t, newJob())
		t.Error("Run returned")
	})
}

// TestJobResultStored: a job reports whether it has a record in the store
// that its done record must replace. A job that ends at its first status
// check, with its triggered event stored, wrote none: its terminal event
// is all a redelivery needs, so the consumer writes no done record.
func TestJobResultStored(t *testing.T) {
	errPublish := errors.New("nats: timeout")
	stored := func(job ingest.Job) ingest.Job { job.Stored = true; return job }
	tests := []struct {
		jobCase
		wantStored bool
	}{
		{jobCase: jobCase{name: "first check terminal: nothing stored",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}}}},
		{jobCase: jobCase{name: "trigger refused: nothing stored",
			triggers: []any{notPublished()}}},
		{jobCase: jobCase{name: "a check in progress was recorded",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {inProgress, succeeded(15)}}},
			wantStored: true},
		{jobCase: jobCase{name: "triggered event lost: the request was recorded instead",
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}},
			triggeredErr: errPublish},
			wantStored: true},
		{jobCase: jobCase{name: "aborted and resubmitted: the first request was recorded",
			cfg:      resubmit(1),
			triggers: []any{accepted("2001"), accepted("2002")}, statuses: map[string][]any{"2001": {abortedSt}, "2002": {succeeded(15)}}},
			wantStored: true},
		{jobCase: jobCase{name: "busy mapping waited for: the wait was recorded",
			triggers: []any{busy("other-7"), accepted("2001")},
			statuses: map[string][]any{"other-7": {succeeded(1)}, "2001": {succeeded(15)}}},
			wantStored: true},
		{jobCase: jobCase{name: "resumed from a stored record",
			job:      stored(redelivery(2, recordOf(ingest.PhaseRunning, "2001", 1, 3))),
			statuses: map[string][]any{"2001": {succeeded(15)}}},
			wantStored: true},
		{jobCase: jobCase{name: "claimed at admission",
			job:      stored(newJob()),
			triggers: []any{accepted("2001")}, statuses: map[string][]any{"2001": {succeeded(15)}}},
			wantStored: true},
		{jobCase: jobCase{name: "resumed from a record recovered from events, ended at once: nothing stored",
			job:      redelivery(2, recordOf(ingest.PhaseRunning, "2001", 1, 0)),
			statuses: map[string][]any{"2001": {succeeded(15)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := runCase(t, tt.jobCase)
			if res.Event == nil {
				t.Fatalf("no terminal event: %+v", res)
			}
			if res.Stored != tt.wantStored {
				t.Errorf("stored %v, want %v", res.Stored, tt.wantStored)
			}
		})
	}
}
