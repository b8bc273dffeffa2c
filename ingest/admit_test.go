package ingest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// Envelopes of cmd-1 (body id "cmd-1"), by what JetStream's duplicate
// window guards.
var (
	// the publisher set Nats-Msg-Id to the id: the stream deduplicates it.
	envBareMsgID = ingest.Envelope{MsgID: testCmdID, FallbackID: "INGEST_COMMANDS-42"}
	// … or to "<org>:<id>".
	envScopedMsgID = ingest.Envelope{MsgID: testOrg + ":" + testCmdID, FallbackID: "INGEST_COMMANDS-42"}
	// the body names another id than the Nats-Msg-Id: the id must be claimed.
	envOtherMsgID = ingest.Envelope{MsgID: "batch-7", FallbackID: "INGEST_COMMANDS-42"}
	// the body names the id and there is no Nats-Msg-Id: claimed.
	envNoMsgID = ingest.Envelope{FallbackID: "INGEST_COMMANDS-42"}
	// a Nats-Msg-Id scoped to another organization guards nothing of acme's.
	envOtherOrgMsgID = ingest.Envelope{MsgID: "globex:" + testCmdID, FallbackID: "INGEST_COMMANDS-42"}
)

func storedRecord(p ingest.Phase, requestID string) ingest.Record {
	return *recordOf(p, requestID, 1, 2)
}

// TestAdmit is the admission of one delivery of cmd-1 of acme, given its
// record, its envelope and its delivery count.
func TestAdmit(t *testing.T) {
	errStore := errors.New("kv: timeout")
	acme := func(id string) string { return key(testOrg, id) }
	globex := func(id string) string { return key("globex", id) }
	tests := []struct {
		name        string
		delivery    int
		env         ingest.Envelope
		records     map[string]ingest.Record // stored, by org/id
		recoverable map[string]ingest.Record // what the events tell, by org/id
		claimRace   bool
		loadErr     error
		recoverErr  error
		claimErr    error

		want          ingest.Verdict
		wantPhase     ingest.Phase // of Admission.Record; "" when nil
		wantRecovered bool
		// wantStored: the command has a record in the store that its
		// done record must replace (found there, or claimed).
		wantStored bool
		wantCalls  []string
		wantErr    error
	}{
		// A record decides.
		{name: "record done, first delivery: done", delivery: 1, env: envBareMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseDone, "2001")},
			want:    ingest.Done, wantPhase: ingest.PhaseDone, wantCalls: []string{"load acme/cmd-1"}},
		{name: "record done, redelivery: done", delivery: 3, env: envOtherMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseDone, "2001")},
			want:    ingest.Done, wantPhase: ingest.PhaseDone, wantCalls: []string{"load latest acme/cmd-1"}},
		{name: "record running, first delivery: another message owns the id", delivery: 1, env: envOtherMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseRunning, "2001")},
			want:    ingest.Duplicate, wantPhase: ingest.PhaseRunning, wantCalls: []string{"load acme/cmd-1"}},
		{name: "record claimed, first delivery: another message owns the id", delivery: 1, env: envNoMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseClaimed, "")},
			want:    ingest.Duplicate, wantPhase: ingest.PhaseClaimed, wantCalls: []string{"load acme/cmd-1"}},
		{name: "record running, redelivery: resume it, events not read", wantStored: true, delivery: 2, env: envOtherMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseRunning, "2001")},
			want:    ingest.Run, wantPhase: ingest.PhaseRunning, wantCalls: []string{"load latest acme/cmd-1"}},
		{name: "record waiting, redelivery: resume it", wantStored: true, delivery: 2, env: envBareMsgID,
			records: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseWaiting, "other-7")},
			want:    ingest.Run, wantPhase: ingest.PhaseWaiting, wantCalls: []string{"load latest acme/cmd-1"}},

		// A redelivery without a record reads the command's events first.
		{name: "redelivery, no record, events name a request: resume it", delivery: 2, env: envBareMsgID,
			recoverable: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseRunning, "2001")},
			want:        ingest.Run, wantPhase: ingest.PhaseRunning, wantRecovered: true,
			wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
		{name: "redelivery, no record, events say done: done", delivery: 2, env: envOtherMsgID,
			recoverable: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseDone, "2001")},
			want:        ingest.Done, wantPhase: ingest.PhaseDone, wantRecovered: true,
			wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
		{name: "redelivery, events not deduplicated tell a request: resumed without a claim", delivery: 2, env: envNoMsgID,
			recoverable: map[string]ingest.Record{acme(testCmdID): storedRecord(ingest.PhaseRunning, "2001")},
			want:        ingest.Run, wantPhase: ingest.PhaseRunning, wantRecovered: true,
			wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
		{name: "redelivery, events tell nothing, id deduplicated: run anew", delivery: 2, env: envBareMsgID,
			want: ingest.Run, wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
		{name: "redelivery, events tell nothing, id not deduplicated: claim, run", wantStored: true, delivery: 2, env: envOtherMsgID,
			want: ingest.Run, wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1", "claim acme/cmd-1"}},

		// A first delivery without a record: the stream's duplicate
		// window guards the id, or the id is claimed.
		{name: "first delivery, Nats-Msg-Id is the id: run, no claim", delivery: 1, env: envBareMsgID,
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1"}},
		{name: "first delivery, Nats-Msg-Id is <org>:<id>: run, no claim", delivery: 1, env: envScopedMsgID,
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1"}},
		{name: "first delivery, the id is the stream's own: run, no claim", delivery: 1,
			env:  ingest.Envelope{FallbackID: testCmdID},
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1"}},
		{name: "first delivery, body id is not the Nats-Msg-Id: claim, run", wantStored: true, delivery: 1, env: envOtherMsgID,
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},
		{name: "first delivery, body id and no Nats-Msg-Id: claim, run", wantStored: true, delivery: 1, env: envNoMsgID,
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},
		{name: "first delivery, Nats-Msg-Id scoped to another org: claim, run", wantStored: true, delivery: 1, env: envOtherOrgMsgID,
			want: ingest.Run, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},
		{name: "claim lost to another message: duplicate", delivery: 1, env: envOtherMsgID, claimRace: true,
			want: ingest.Duplicate, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},

		// State that cannot be read: hand back later.
		{name: "load fails: later", delivery: 1, env: envOtherMsgID, loadErr: errStore,
			want: ingest.Later, wantErr: errStore, wantCalls: []string{"load acme/cmd-1"}},
		{name: "recover fails: later", delivery: 2, env: envBareMsgID, recoverErr: errStore,
			want: ingest.Later, wantErr: errStore, wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
		{name: "claim fails: later", delivery: 1, env: envNoMsgID, claimErr: errStore,
			want: ingest.Later, wantErr: errStore, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},

		// Organizations never meet: another org's record, events and
		// claim of the same id are not acme's.
		{name: "another org's done record of the same id is not seen", delivery: 1, env: envBareMsgID,
			records: map[string]ingest.Record{globex(testCmdID): storedRecord(ingest.PhaseDone, "9")},
			want:    ingest.Run, wantCalls: []string{"load acme/cmd-1"}},
		{name: "another org's record of the same id does not hold acme's claim", wantStored: true, delivery: 1, env: envOtherMsgID,
			records: map[string]ingest.Record{globex(testCmdID): storedRecord(ingest.PhaseClaimed, "")},
			want:    ingest.Run, wantCalls: []string{"load acme/cmd-1", "claim acme/cmd-1"}},
		{name: "another org's events of the same id are not recovered", delivery: 2, env: envBareMsgID,
			recoverable: map[string]ingest.Record{globex(testCmdID): storedRecord(ingest.PhaseDone, "9")},
			want:        ingest.Run, wantCalls: []string{"load latest acme/cmd-1", "recover acme/cmd-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := &fakeRecords{
				records: tt.records, recoverable: tt.recoverable, claimRace: tt.claimRace,
				loadErr: tt.loadErr, recoverErr: tt.recoverErr, claimErr: tt.claimErr,
			}
			w := newWorld(t)
			job := newJob()
			job.Delivery = tt.delivery
			got := ingest.NewRunner(w.api, w.cfg).Admit(context.Background(), recs, job, tt.env)

			if got.Verdict != tt.want {
				t.Errorf("verdict %s, want %s", got.Verdict, tt.want)
			}
			var phase ingest.Phase
			if got.Record != nil {
				phase = got.Record.Phase
			}
			if phase != tt.wantPhase || got.Recovered != tt.wantRecovered {
				t.Errorf("record phase %q recovered %v, want %q recovered %v", phase, got.Recovered, tt.wantPhase, tt.wantRecovered)
			}
			if got.Stored != tt.wantStored {
				t.Errorf("stored %v, want %v", got.Stored, tt.wantStored)
			}
			if got.Record != nil && got.Record.Organization != testOrg {
				t.Errorf("admitted a record of organization %q", got.Record.Organization)
			}
			if !slices.Equal(recs.calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", recs.calls, tt.wantCalls)
			}
			wantRetry := time.Duration(0)
			if tt.want == ingest.Later {
				wantRetry = w.cfg.RedeliverDelay
			}
			if got.Retry != wantRetry || !errors.Is(got.Err, tt.wantErr) || (tt.wantErr == nil) != (got.Err == nil) {
				t.Errorf("retry %v err %v, want retry %v err %v", got.Retry, got.Err, wantRetry, tt.wantErr)
			}
		})
	}
}

// TestAdmitClaimsRecord: a claim holds the command's id in its own
// organization, phase claimed, first attempt, at the clock's time; events
// are read since the command's publication.
func TestAdmitClaimsRecord(t *testing.T) {
	w := newWorld(t)
	recs := &fakeRecords{}
	job := redelivery(2, nil)
	job.Published = t0.Add(-time.Minute)
	adm := ingest.NewRunner(w.api, w.cfg).Admit(context.Background(), recs, job, envOtherMsgID)
	if adm.Verdict != ingest.Run || adm.Record != nil {
		t.Fatalf("admission %+v, want run without a record", adm)
	}
	if !recs.since.Equal(job.Published) {
		t.Errorf("events read since %v, want the publication %v", recs.since, job.Published)
	}
	want := ingest.Record{
		CommandID: testCmdID, CorrelationID: "corr-1", Organization: testOrg, MappingID: testMapping,
		Phase: ingest.PhaseClaimed, Attempt: 1, UpdatedAt: ingest.Time(t0),
	}
	if len(recs.claimed) != 1 || recs.claimed[0] != want {
		t.Errorf("claimed %+v, want %+v", recs.claimed, want)
	}
}
