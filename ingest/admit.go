package ingest

import (
	"context"
	"time"
)

// Records is where jobs' state is kept; the JetStream layout's store
// implements it. Every method is scoped by organization: a command of one
// organization never reads or writes another's record.
type Records interface {
	// Load returns the record of command id in org, or nil when none. It
	// may be answered by a replica that has not applied the latest writes.
	Load(ctx context.Context, org, commandID string) (*Record, error)
	// LoadLatest is Load answered by the store's leader: it sees every
	// write acknowledged before it.
	LoadLatest(ctx context.Context, org, commandID string) (*Record, error)
	// Recover rebuilds the record of cmd from its own events published
	// since (a triggered event names its request, a terminal one says it
	// is done), or returns nil when they tell nothing.
	Recover(ctx context.Context, cmd Command, since time.Time) (*Record, error)
	// Claim creates rec when its command id has no record yet and reports
	// whether it did.
	Claim(ctx context.Context, rec Record) (bool, error)
}

// Verdict is what becomes of a delivery.
type Verdict int

// The verdicts of Admit.
const (
	// Run: run the job (Admission.Record is its state, nil when new).
	Run Verdict = iota
	// Done: the command already ended; acknowledge it.
	Done
	// Duplicate: another message with the same command id owns the job;
	// acknowledge this one.
	Duplicate
	// Later: the state could not be read; hand the command back after
	// Admission.Retry.
	Later
)

func (v Verdict) String() string {
	switch v {
	case Run:
		return "run"
	case Done:
		return "done"
	case Duplicate:
		return "duplicate"
	case Later:
		return "later"
	}
	return "unknown"
}

// Admission is the decision on one delivery.
type Admission struct {
	Verdict Verdict
	// Record is the command's state: the job resumes from it (Run), or what
	// says it is done or owned elsewhere (Done, Duplicate). Nil when none.
	Record *Record
	// Recovered: Record was rebuilt from the command's events.
	Recovered bool
	// Stored: the command has a record in the store (found, or claimed by
	// Admit), which its done record must replace when it ends.
	Stored bool
	// Retry is the hand-back delay of Later.
	Retry time.Duration
	// Err is why the state could not be read (Later).
	Err error
}

// Admit decides what becomes of one delivery of a valid command, from its
// recorded state:
//
//   - a record that says done: Done;
//   - a record found by a first delivery: another message holds the id
//     (Duplicate);
//   - a redelivery reads its record from the store's leader (LoadLatest):
//     its previous delivery may have written it a moment ago, and a replica
//     that has not applied that write would make the job POST again;
//   - a redelivery without a record: its previous delivery may have died
//     between the POST and the first state write, so its events are read
//     (Recover) before anything else;
//   - no record, and a command id the stream could not deduplicate (it is
//     neither the Nats-Msg-Id nor the stream's own id): the id is claimed
//     first, and a claim that fails means Duplicate;
//   - otherwise Run, resuming from the record if there is one.
func (r *Runner) Admit(ctx context.Context, recs Records, job Job, env Envelope) Admission {
	cmd := job.Command
	load := recs.Load
	if job.Delivery > 1 {
		load = recs.LoadLatest
	}
	rec, err := load(ctx, cmd.Organization, cmd.ID)
	if err != nil {
		return r.later(err)
	}
	recovered := false
	if rec == nil && job.Delivery > 1 {
		if rec, err = recs.Recover(ctx, cmd, job.Published); err != nil {
			return r.later(err)
		}
		recovered = rec != nil
	}
	switch {
	case rec != nil && rec.Phase == PhaseDone:
		return Admission{Verdict: Done, Record: rec, Recovered: recovered}
	case rec != nil && job.Delivery == 1:
		return Admission{Verdict: Duplicate, Record: rec}
	case rec == nil && !env.Deduplicates(cmd):
		ok, err := recs.Claim(ctx, Record{
			CommandID: cmd.ID, CorrelationID: cmd.CorrelationID,
			Organization: cmd.Organization, MappingID: cmd.MappingID,
			Phase: PhaseClaimed, Attempt: 1, UpdatedAt: Time(r.cfg.Now()),
		})
		if err != nil {
			return r.later(err)
		}
		if !ok {
			return Admission{Verdict: Duplicate}
		}
		return Admission{Verdict: Run, Stored: true}
	}
	return Admission{Verdict: Run, Record: rec, Recovered: recovered, Stored: rec != nil && !recovered}
}

func (r *Runner) later(err error) Admission {
	return Admission{Verdict: Later, Retry: r.cfg.RedeliverDelay, Err: err}
}
