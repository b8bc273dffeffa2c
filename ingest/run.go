package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/internal/pause"
)

// jobRun is one delivery of a job in progress.
type jobRun struct {
	*Runner
	journal Journal
	job     Job
	log     *slog.Logger
	rec     Record
	// pending waits for the triggered event's publication in flight.
	pending func(within time.Duration) error
	// unsaved: the job's request is not stored in the journal yet.
	unsaved bool
	// stored: the job has a record in the store (Result.Stored).
	stored bool
	// posted: the job has POSTed in this delivery.
	posted bool
}

func (j *jobRun) begin(ctx context.Context) (*Event, error) {
	if j.rec.Phase == PhaseRunning && j.rec.RequestID != "" {
		j.log.InfoContext(ctx, "resuming", "requestId", j.rec.RequestID, "polls", j.rec.Polls)
		return j.poll(ctx)
	}
	if j.rec.Phase == PhaseWaiting && j.rec.RequestID != "" {
		if _, err := j.waitOther(ctx, j.rec.RequestID); err != nil {
			return j.apiFailure(ctx, err, j.refusedType())
		}
	}
	return j.trigger(ctx)
}

// trigger POSTs until the job has a request of its own (or adopts one), then polls.
func (j *jobRun) trigger(ctx context.Context) (*Event, error) {
	for round := 1; ; round++ {
		// lost: a POST of this loop failed in a way that may have
		// submitted the request all the same (answer dropped, spoiled or
		// too late, 5xx): a retry answered In Progress is then our own.
		lost := false
		res, err := retry(ctx, j.cfg, func() (campaign.TriggerResponse, error) {
			res, err := j.api.Trigger(ctx, j.rec.Organization, j.rec.MappingID)
			lost = lost || mayHaveSubmitted(err)
			return res, err
		})
		// The first POST of a redelivery may meet the request its previous
		// delivery submitted before it died, unrecorded.
		first := !j.posted
		j.posted = true
		if err != nil {
			return j.apiFailure(ctx, err, j.refusedType())
		}
		switch res.Kind() {
		case campaign.TriggerAccepted:
			return j.accepted(ctx, res, false)
		case campaign.TriggerBusy:
			other := string(res.RequestID)
			if j.job.Delivery > 1 && first || lost || j.cfg.BusyPolicy == BusyAttach {
				// On the first POST of a redelivery, or after a POST whose
				// answer was lost, the running request is almost surely
				// this job's own.
				return j.accepted(ctx, res, true)
			}
			j.log.InfoContext(ctx, "mapping busy, waiting for its running request", "otherRequestId", other)
			j.rec.Phase, j.rec.RequestID, j.rec.UpdatedAt = PhaseWaiting, other, Time(j.cfg.Now())
			if err := j.progress(ctx); err != nil {
				return nil, fmt.Errorf("record waiting state: %w", err)
			}
			checks, err := j.waitOther(ctx, other)
			if err != nil {
				return j.apiFailure(ctx, err, j.refusedType())
			}
			if checks <= 1 {
				// The other request had ended (or was unknown) at once, yet
				// the mapping answered busy: pause before POSTing again.
				if err := pause.For(ctx, j.cfg.Schedule.Next(round)); err != nil {
					return nil, err
				}
			}
		case campaign.TriggerNotStopped:
			return j.triggerRefused(res, ReasonMappingNotStopped), nil
		case campaign.TriggerNotPublished:
			return j.triggerRefused(res, ReasonMappingNotPublished), nil
		default:
			if res.RequestID != "" {
				j.log.WarnContext(ctx, "unknown trigger status with a request id: polling it", "status", res.Status)
				return j.accepted(ctx, res, false)
			}
			// No request to poll: nothing ran (on the first attempt).
			ev := j.event(j.refusedType(), ReasonIngestionFailed)
			ev.Status, ev.Info, ev.ErrorCode = string(res.Status), res.Info, campaign.ErrorCode(res.Info)
			ev.Detail = "the API answered the trigger with status " + Bounded(string(res.Status), 64) + " and no request id"
			return ev, nil
		}
	}
}

// refusedType is the type of the event of a trigger that did not start an
// ingestion: rejected on the first attempt (nothing ran), failed on a
// resubmit (an earlier attempt ran).
func (j *jobRun) refusedType() EventType {
	if j.rec.Attempt > 1 {
		return EventFailed
	}
	return EventRejected
}

func (j *jobRun) triggerRefused(res campaign.TriggerResponse, reason Reason) *Event {
	ev := j.event(EventRejected, reason)
	ev.Status, ev.Info, ev.ErrorCode = string(res.Status), res.Info, campaign.ErrorCode(res.Info)
	ev.Detail = res.Info
	return ev
}

// accepted takes the request as the job's own and makes the first status
// check; the triggered event is published alongside it. The request is
// stored with the first check that is not terminal (or with the done
// record), and before any hand-back.
func (j *jobRun) accepted(ctx context.Context, res campaign.TriggerResponse, adopted bool) (*Event, error) {
	requestID := string(res.RequestID)
	now := j.cfg.Now()
	j.rec.Phase, j.rec.RequestID, j.rec.Polls, j.rec.Status = PhaseRunning, requestID, 0, ""
	j.rec.TriggeredAt, j.rec.UpdatedAt = Time(now), Time(now)
	ev := j.event(EventTriggered, "")
	ev.Status, ev.Info, ev.FinishedAt = string(res.Status), res.Info, Time{}
	j.log.InfoContext(ctx, "ingestion triggered", "requestId", requestID, "attempt", j.rec.Attempt, "adopted", adopted)
	j.pending, j.unsaved = j.journal.Triggered(ctx, *ev), true
	return j.poll(ctx)
}

// save stores the job's request if it is not stored yet, so that a
// redelivery resumes it instead of triggering again.
func (j *jobRun) save(ctx context.Context) error {
	if !j.unsaved {
		return nil
	}
	j.rec.UpdatedAt = Time(j.cfg.Now())
	if err := j.progress(ctx); err != nil {
		return fmt.Errorf("record triggered request: %w", err)
	}
	j.unsaved = false
	return nil
}

// progress stores the job's state.
func (j *jobRun) progress(ctx context.Context) error {
	if err := j.journal.Progress(ctx, j.rec); err != nil {
		return err
	}
	j.stored = true
	return nil
}

// flush waits for the triggered event's publication. The request must be
// durable before the job acts on any status of it: a triggered event that
// was not stored is replaced by a write of the job's state; one that takes
// longer than TriggeredPatience gets that write too, and the job then waits
// on for the event with its request already durable.
func (j *jobRun) flush(ctx context.Context) error {
	if j.pending == nil {
		return nil
	}
	wait := j.pending
	j.pending = nil
	err := wait(j.cfg.TriggeredPatience)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrPublishing) {
		j.log.WarnContext(ctx, "the triggered event is not stored yet; recording the request in the job state too", "after", j.cfg.TriggeredPatience)
		serr := j.save(ctx)
		err = wait(0)
		if err != nil && serr != nil {
			return fmt.Errorf("record triggered request: %w", errors.Join(err, serr))
		}
		if err != nil {
			j.log.WarnContext(ctx, "the triggered event was not stored; the job state holds the request", "err", err)
		}
		return nil
	}
	j.log.WarnContext(ctx, "the triggered event was not stored; recording the request in the job state instead", "err", err)
	if serr := j.save(ctx); serr != nil {
		return fmt.Errorf("record triggered request: %w", errors.Join(err, serr))
	}
	return nil
}

// poll checks the job's request once. An ingestion still running returns
// a waitError with the time to the next check: Start waits on a timer, then
// polls again.
// The first check is at once, also when a redelivered job resumes.
func (j *jobRun) poll(ctx context.Context) (*Event, error) {
	st, err := retry(ctx, j.cfg, func() (campaign.StatusResponse, error) {
		return j.api.Status(ctx, j.rec.Organization, j.rec.MappingID, j.rec.RequestID)
	})
	if err != nil {
		return j.apiFailure(ctx, err, EventFailed)
	}
	j.rec.Polls++
	j.rec.Status = string(st.Status)
	j.observe(st.Status)
	if !st.Status.Terminal() {
		if !st.Status.Known() {
			j.log.WarnContext(ctx, "unknown ingestion status, polling on", "status", st.Status, "info", st.Info)
		}
		if err := j.flush(ctx); err != nil {
			return nil, err
		}
		j.rec.UpdatedAt = Time(j.cfg.Now())
		if err := j.progress(ctx); err != nil {
			return nil, fmt.Errorf("record poll: %w", err)
		}
		j.unsaved = false
		return nil, waitError{d: j.cfg.Schedule.Next(j.rec.Polls)}
	}
	if err := j.flush(ctx); err != nil {
		return nil, err
	}
	if st.Status == campaign.StatusAborted && j.rec.Attempt <= j.cfg.ResubmitAborted {
		j.log.WarnContext(ctx, "ingestion aborted, submitting a new request", "requestId", j.rec.RequestID, "attempt", j.rec.Attempt)
		if err := j.save(ctx); err != nil {
			return nil, err
		}
		j.rec.Attempt++
		return j.trigger(ctx)
	}
	return j.finished(st), nil
}

// waitOther polls another request of the mapping to its end (busy policy
// wait) and returns how many checks it made.
func (j *jobRun) waitOther(ctx context.Context, requestID string) (int, error) {
	for n := 1; ; n++ {
		st, err := retry(ctx, j.cfg, func() (campaign.StatusResponse, error) {
			return j.api.Status(ctx, j.rec.Organization, j.rec.MappingID, requestID)
		})
		if err != nil && !campaign.Permanent(err) {
			return n, err
		}
		// A permanent error (the request is unknown) means there is
		// nothing to wait for.
		if err != nil || st.Status.Terminal() {
			return n, nil
		}
		if err := pause.For(ctx, j.cfg.Schedule.Next(n)); err != nil {
			return n, err
		}
	}
}

func (j *jobRun) finished(st campaign.StatusResponse) *Event {
	var ev *Event
	switch st.Status {
	case campaign.StatusSuccess:
		ev = j.event(EventSucceeded, "")
		ev.NumRecords = st.NumRecords
	case campaign.StatusAborted:
		ev = j.event(EventAborted, ReasonAborted)
	default:
		reason := ReasonIngestionFailed
		switch st.ErrorCode() {
		case campaign.CodeFetchFailed:
			reason = ReasonFetchFailed
		case campaign.CodeUploadFailed:
			reason = ReasonUploadFailed
		}
		ev = j.event(EventFailed, reason)
	}
	ev.Status, ev.Info, ev.BatchID, ev.ErrorCode = string(st.Status), st.Info, st.BatchID, st.ErrorCode()
	return ev
}

// apiFailure turns an error of the API into a terminal event or a hand-back.
// typ is the event type of a permanent failure (rejected before the
// ingestion ran, failed after).
func (j *jobRun) apiFailure(ctx context.Context, err error, typ EventType) (*Event, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	switch {
	case errors.Is(err, ErrUnknownOrganization):
		return j.failure(EventRejected, ReasonUnknownOrganization, err), nil
	case campaign.Unauthorized(err):
		return j.failure(typ, ReasonUnauthorized, err), nil
	case campaign.Forbidden(err):
		return j.failure(typ, ReasonForbidden, err), nil
	case campaign.Permanent(err) || campaign.FinalAfterRetries(err):
		return j.failure(typ, ReasonAPIError, err), nil
	}
	return nil, err
}

func (j *jobRun) failure(typ EventType, reason Reason, err error) *Event {
	ev := j.event(typ, reason)
	ev.Detail = err.Error()
	var ae *campaign.APIError
	if errors.As(err, &ae) {
		ev.ErrorCode = ae.ErrorCode
	}
	return ev
}

func (j *jobRun) event(t EventType, reason Reason) *Event {
	ev := NewEvent(t, j.job.Command)
	ev.RequestID, ev.Attempt, ev.Polls = j.rec.RequestID, j.rec.Attempt, j.rec.Polls
	ev.TriggeredAt, ev.FinishedAt, ev.Reason = j.rec.TriggeredAt, Time(j.cfg.Now()), reason
	return &ev
}

func (j *jobRun) observe(s campaign.Status) {
	if j.cfg.Observer != nil {
		j.cfg.Observer.ObservePoll(string(s), s.Known())
	}
}

// result turns the end of run into a Result.
func (j *jobRun) result(parent, jctx context.Context, ev *Event, err error) Result {
	if ferr := j.flush(parent); err == nil && ev != nil && ferr != nil {
		// The triggered write failed: the job's state is not safe, hand
		// the command back rather than end it.
		ev, err = nil, ferr
	}
	if ev == nil && j.rec.Phase != PhaseDone {
		// A hand-back: the redelivery must find the request to resume
		// it (the journal's writes outlive the stopping worker).
		if serr := j.save(parent); serr != nil {
			j.log.Warn("cannot record the triggered request before handing the command back", "err", serr)
		}
	}
	switch {
	case ev != nil:
		return j.done(ev)
	case parent.Err() == nil && errors.Is(context.Cause(jctx), errDeadline):
		ev := j.event(EventTimedOut, ReasonDeadlineExceeded)
		ev.Status = j.rec.Status
		ev.Detail = fmt.Sprintf("the ingestion did not end before the job's deadline (%s after the command)", j.deadline())
		return j.done(ev)
	case parent.Err() != nil:
		return Result{Record: j.rec, Stored: j.stored, Interrupted: true, Err: err}
	case j.job.LastDelivery:
		ev := j.event(EventFailed, ReasonAPIUnavailable)
		ev.Status = j.rec.Status
		ev.Detail = fmt.Sprintf("the API stayed unusable through the last delivery (%d): %v", j.job.Delivery, err)
		return j.done(ev)
	}
	delay := j.cfg.RedeliverDelay
	if ra, ok := campaign.RetryAfterOf(err); ok && ra > delay {
		delay = ra
	}
	return Result{Record: j.rec, Stored: j.stored, Retry: delay, Err: err}
}

func (j *jobRun) deadline() time.Duration {
	return j.job.Command.Deadline(j.job.Published, j.cfg.JobTimeout).Sub(j.job.Published)
}

func (j *jobRun) done(ev *Event) Result {
	j.rec.Phase, j.rec.Outcome, j.rec.Reason = PhaseDone, ev.Type, ev.Reason
	j.rec.Status, j.rec.UpdatedAt = ev.Status, ev.FinishedAt
	return Result{Event: ev, Record: j.rec, Stored: j.stored}
}
