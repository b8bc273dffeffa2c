package statuspage

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

var t0 = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func itime(sec int) ingest.Time { return ingest.Time(at(sec)) }

func rec(org, id, mapping string, phase ingest.Phase, mut ...func(*ingest.Record)) *ingest.Record {
	r := &ingest.Record{CommandID: id, Organization: org, MappingID: mapping, Phase: phase, Attempt: 1}
	for _, m := range mut {
		m(r)
	}
	return r
}

func event(typ ingest.EventType, org, id, mapping string, mut ...func(*ingest.Event)) ingest.Event {
	ev := ingest.Event{Type: typ, Organization: org, CommandID: id, MappingID: mapping, Attempt: 1}
	for _, m := range mut {
		m(&ev)
	}
	return ev
}

func TestJobMerge(t *testing.T) {
	running := rec("acme", "c1", "XDM44", ingest.PhaseRunning, func(r *ingest.Record) {
		r.RequestID, r.Polls, r.Status, r.TriggeredAt, r.UpdatedAt = "3520", 2, "In Progress", itime(10), itime(12)
	})
	done := rec("acme", "c1", "XDM44", ingest.PhaseDone, func(r *ingest.Record) {
		r.RequestID, r.Polls, r.Status, r.Outcome, r.TriggeredAt, r.UpdatedAt = "3520", 4, "Success", ingest.EventSucceeded, itime(10), itime(65)
	})
	triggered := event(ingest.EventTriggered, "acme", "c1", "XDM44", func(e *ingest.Event) {
		e.RequestID, e.TriggeredAt, e.CorrelationID = "3520", itime(10), "run-42"
	})
	succeeded := event(ingest.EventSucceeded, "acme", "c1", "XDM44", func(e *ingest.Event) {
		e.RequestID, e.Status, e.NumRecords, e.Polls, e.TriggeredAt, e.FinishedAt = "3520", "Success", 15, 4, itime(10), itime(65)
	})
	claimed := rec("acme", "c1", "XDM44", ingest.PhaseClaimed, func(r *ingest.Record) { r.UpdatedAt = itime(5) })
	waiting := rec("acme", "c1", "XDM44", ingest.PhaseWaiting, func(r *ingest.Record) { r.RequestID, r.UpdatedAt = "other", itime(6) })
	rejected := event(ingest.EventRejected, "acme", "c1", "XDMDRAFT", func(e *ingest.Event) {
		e.Reason, e.Detail, e.FinishedAt = ingest.ReasonMappingNotPublished, "not published", itime(3)
	})
	type step struct {
		rec *ingest.Record
		ev  *ingest.Event
		at  int
	}
	tests := []struct {
		name                 string
		steps                []step
		state, requestID     string
		running              bool
		records              int64
		polls                int
		first, finished      time.Time
		correlation, mapping string
	}{
		{name: "record running", steps: []step{{rec: running, at: 12}},
			state: "running", requestID: "3520", running: true, polls: 2, first: at(10), mapping: "XDM44"},
		{name: "events then record", steps: []step{{ev: &triggered, at: 10}, {rec: running, at: 12}, {ev: &succeeded, at: 65}, {rec: done, at: 66}},
			state: "succeeded", requestID: "3520", records: 15, polls: 4, first: at(10), finished: at(65), correlation: "run-42", mapping: "XDM44"},
		{name: "terminal event wins over a late running record", steps: []step{{ev: &succeeded, at: 65}, {rec: running, at: 66}},
			state: "succeeded", requestID: "3520", records: 15, polls: 4, first: at(10), finished: at(65), mapping: "XDM44"},
		{name: "done record without event", steps: []step{{rec: done, at: 66}},
			state: "succeeded", requestID: "3520", polls: 4, first: at(10), finished: at(65), mapping: "XDM44"},
		{name: "claimed then waiting: the other request is not the job's", steps: []step{{rec: claimed, at: 5}, {rec: waiting, at: 6}},
			state: "waiting", running: true, first: at(5), mapping: "XDM44"},
		{name: "claimed then triggered", steps: []step{{rec: claimed, at: 5}, {ev: &triggered, at: 10}},
			state: "running", requestID: "3520", running: true, first: at(5), correlation: "run-42", mapping: "XDM44"},
		{name: "rejected, no record", steps: []step{{ev: &rejected, at: 3}},
			state: "rejected", first: at(3), finished: at(3), mapping: "XDMDRAFT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex(100, "")
			for _, s := range tt.steps {
				if s.rec != nil {
					ix.PutRecord(s.rec, at(s.at))
				} else {
					ix.PutEvent(*s.ev, at(s.at))
				}
			}
			j, ok := ix.Job("acme", "c1")
			if !ok {
				t.Fatal("job not held")
			}
			if j.State() != tt.state || j.RequestID != tt.requestID || j.Running() != tt.running || j.NumRecords != tt.records ||
				j.Polls != tt.polls || !j.First.Equal(tt.first) || !j.FinishedAt.Equal(tt.finished) ||
				j.CorrelationID != tt.correlation || j.Mapping != tt.mapping {
				t.Errorf("job = state %q request %q running %v records %d polls %d first %v finished %v correlation %q mapping %q; want %q %q %v %d %d %v %v %q %q",
					j.State(), j.RequestID, j.Running(), j.NumRecords, j.Polls, j.First, j.FinishedAt, j.CorrelationID, j.Mapping,
					tt.state, tt.requestID, tt.running, tt.records, tt.polls, tt.first, tt.finished, tt.correlation, tt.mapping)
			}
		})
	}
}

// fill holds n jobs of org "acme" c0000… with First at(i), in random
// order; every third failed, every fifth running.
func fill(ix *Index, n int) {
	for _, i := range rand.Perm(n) {
		id := fmt.Sprintf("c%04d", i)
		switch {
		case i%5 == 0:
			ix.PutRecord(rec("acme", id, "XDM44", ingest.PhaseRunning, func(r *ingest.Record) { r.TriggeredAt, r.UpdatedAt = itime(i), itime(i) }), at(i))
		case i%3 == 0:
			ix.PutEvent(event(ingest.EventFailed, "acme", id, "XDMFETCH", func(e *ingest.Event) {
				e.Reason, e.TriggeredAt, e.FinishedAt = ingest.ReasonFetchFailed, itime(i), itime(i+1)
			}), at(i+1))
		default:
			ix.PutEvent(event(ingest.EventSucceeded, "acme", id, "XDM44", func(e *ingest.Event) {
				e.NumRecords, e.TriggeredAt, e.FinishedAt = int64(i), itime(i), itime(i+1)
			}), at(i+1))
		}
	}
}

func ids(jobs []Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.CommandID
	}
	return out
}

func TestJobsNewestFirstWithCursor(t *testing.T) {
	ix := NewIndex(1000, "")
	fill(ix, 250)
	var all []string
	var before *Cursor
	for page := 0; ; page++ {
		jobs, more := ix.Jobs(Filter{}, before, 100)
		all = append(all, ids(jobs)...)
		if !more {
			break
		}
		c := CursorOf(jobs[len(jobs)-1])
		if back, ok := ParseCursor(c.String()); !ok || back.Org != c.Org || back.ID != c.ID || !back.First.Equal(c.First) {
			t.Fatalf("cursor %+v does not round-trip: %+v", c, back)
		}
		before = &c
		if page > 3 {
			t.Fatal("too many pages")
		}
	}
	if len(all) != 250 {
		t.Fatalf("got %d jobs over the pages, want 250", len(all))
	}
	for i, id := range all {
		if want := fmt.Sprintf("c%04d", 249-i); id != want {
			t.Fatalf("job %d is %s, want %s", i, id, want)
		}
	}
}

func TestFilter(t *testing.T) {
	ix := NewIndex(1000, "")
	fill(ix, 60)
	ix.PutEvent(event(ingest.EventRejected, "globex", "g1", "XDM44", func(e *ingest.Event) {
		e.Reason, e.FinishedAt, e.CorrelationID = ingest.ReasonForbidden, itime(30), "etl-run-7"
	}), at(30))
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 61},
		{"org", Filter{Org: "globex"}, 1},
		{"mapping", Filter{Mapping: "XDMFETCH"}, 16}, // multiples of 3 that are not of 5 below 60
		{"running", Filter{Outcome: OutcomeRunning}, 12},
		{"succeeded", Filter{Outcome: "succeeded"}, 32},
		{"reason", Filter{Reason: ingest.ReasonFetchFailed}, 16},
		{"reason and org", Filter{Org: "acme", Reason: ingest.ReasonForbidden}, 0},
		{"from", Filter{From: at(50)}, 10},
		{"until", Filter{Until: at(9)}, 10},
		{"from and until", Filter{From: at(20), Until: at(29)}, 10},
		{"text in command id", Filter{Text: "c005"}, 10},
		{"text in correlation id", Filter{Text: "run-7"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, _ := ix.Jobs(tt.f, nil, 1000)
			if len(jobs) != tt.want {
				t.Errorf("%+v selects %d jobs, want %d: %v", tt.f, len(jobs), tt.want, ids(jobs))
			}
			for _, j := range jobs {
				if !tt.f.Match(&j) {
					t.Errorf("%s does not match", j.CommandID)
				}
			}
		})
	}
}

func TestIndexBounds(t *testing.T) {
	ix := NewIndex(1000, "")
	fill(ix, 1200)
	if n := ix.Len(); n < 1000 || n > 1010 {
		t.Fatalf("holds %d jobs, want 1000 to 1010", n)
	}
	for i := 200; i < 1200; i++ { // the newest 1000 are never dropped
		if _, ok := ix.Job("acme", fmt.Sprintf("c%04d", i)); !ok {
			t.Fatalf("c%04d, one of the newest 1000, was dropped", i)
		}
	}
	if n := ix.Expire(at(1100)); n == 0 || ix.Len() > 101 {
		t.Errorf("Expire dropped %d, %d held", n, ix.Len())
	}
	jobs, _ := ix.Jobs(Filter{}, nil, 2000)
	if len(jobs) != ix.Len() {
		t.Errorf("Jobs lists %d, Len is %d", len(jobs), ix.Len())
	}
}

func TestDeleteRecord(t *testing.T) {
	ix := NewIndex(100, "")
	ix.PutRecord(rec("acme", "only-record", "XDM44", ingest.PhaseRunning), at(1))
	ix.PutRecord(rec("acme", "both", "XDM44", ingest.PhaseDone), at(1))
	ix.PutEvent(event(ingest.EventSucceeded, "acme", "both", "XDM44"), at(2))
	ix.DeleteRecord("acme", "only-record")
	ix.DeleteRecord("acme", "both")
	if _, ok := ix.Job("acme", "only-record"); ok {
		t.Error("a job known only from its deleted record is still held")
	}
	if j, ok := ix.Job("acme", "both"); !ok || j.HasRecord {
		t.Errorf("a job with events: held %v, record %v; want held without record", ok, j.HasRecord)
	}
	if jobs, _ := ix.Jobs(Filter{}, nil, 10); len(jobs) != 1 {
		t.Errorf("Jobs lists %v", ids(jobs))
	}
}

func TestIndexFixedOrganization(t *testing.T) {
	ix := NewIndex(100, "acme")
	ix.PutRecord(rec("globex", "g1", "XDM44", ingest.PhaseRunning), at(1))
	ix.PutEvent(event(ingest.EventSucceeded, "globex", "g2", "XDM44"), at(1))
	ix.PutEvent(event(ingest.EventSucceeded, "acme", "a1", "XDM44"), at(1))
	if ix.Len() != 1 {
		t.Errorf("holds %d jobs, want acme's only", ix.Len())
	}
}

func TestSplitRecordKey(t *testing.T) {
	for _, id := range []string{"etl-2026-12-01", "a.b", "a..b", ".a", "with space", "ünï", "b64.YQ", strings.Repeat("x", 300), "INGEST_COMMANDS-42"} {
		org, back, ok := splitRecordKey(layout.RecordKey("acme", id))
		if !ok || org != "acme" || back != id {
			t.Errorf("splitRecordKey(RecordKey(acme, %q)) = %q, %q, %v", id, org, back, ok)
		}
	}
	if _, _, ok := splitRecordKey("nodot"); ok {
		t.Error("a key without an organization split")
	}
}

func TestMappingSummaries(t *testing.T) {
	ix := NewIndex(1000, "")
	fill(ix, 60)
	now := at(60).Add(FailureWindow - 30*time.Second) // failures that finished at 31s and later count
	rows := ix.Mappings("", now)
	if len(rows) != 2 || rows[0].Mapping != "XDM44" || rows[1].Mapping != "XDMFETCH" {
		t.Fatalf("mappings = %+v", rows)
	}
	xdm, fetch := rows[0], rows[1]
	if xdm.Jobs != 44 || xdm.Running != 12 || xdm.Last.CommandID != "c0059" || xdm.Last.NumRecords != 59 || !xdm.LastSuccess.Equal(at(60)) {
		t.Errorf("XDM44 = jobs %d running %d last %s (%d records) last success %v", xdm.Jobs, xdm.Running, xdm.Last.CommandID, xdm.Last.NumRecords, xdm.LastSuccess)
	}
	if fetch.Jobs != 16 || fetch.Failures != 8 || fetch.Running != 0 || !fetch.LastSuccess.IsZero() || fetch.Last.State() != "failed" {
		t.Errorf("XDMFETCH = jobs %d failures %d running %d last success %v last %s", fetch.Jobs, fetch.Failures, fetch.Running, fetch.LastSuccess, fetch.Last.State())
	}
	if again := ix.Mappings("", now); &again[0] != &rows[0] {
		t.Error("an unchanged index was summarized again")
	}
	if other := ix.Mappings("globex", now); len(other) != 0 {
		t.Errorf("globex's mappings = %+v", other)
	}
}
