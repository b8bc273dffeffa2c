package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// job is one INGEST_JOBS entry.
type job struct {
	ingest.Record
	raw     []byte
	created time.Time // the entry's last write
}

// since is when the job began, as far as the record tells.
func (j job) since() time.Time {
	for _, t := range []ingest.Time{j.TriggeredAt, j.UpdatedAt} {
		if !t.IsZero() {
			return time.Time(t)
		}
	}
	return j.created
}

// decodeJob reads a job bucket message; ok is false for a deletion or a
// value that is not a job record.
func decodeJob(m *nats.Msg) (j job, ok bool) {
	if isDeletion(m) {
		return job{}, false
	}
	if md, err := m.Metadata(); err == nil {
		j.created = md.Timestamp
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m.Data); err != nil {
		return job{}, false
	}
	rec, err := layout.DecodeRecord(buf.Bytes())
	if err != nil {
		return job{}, false
	}
	j.Record, j.raw = *rec, buf.Bytes()
	return j, true
}

// jobFilter selects job records.
type jobFilter struct {
	state        string // "", "running" (every phase but done) or "done"
	org, mapping string
}

func (f jobFilter) match(r ingest.Record) bool {
	switch {
	case f.org != "" && r.Organization != f.org,
		f.mapping != "" && r.MappingID != f.mapping,
		f.state == "done" && r.Phase != ingest.PhaseDone,
		f.state == "running" && r.Phase == ingest.PhaseDone:
		return false
	}
	return true
}

// jobsFlags are `ingestctl jobs`'s flags.
type jobsFlags struct {
	conn   connFlags
	filter jobFilter
	limit  int
	follow bool
	out    output
}

// jobs is `ingestctl jobs`. With --org it reads only that organization's
// keys ($KV.INGEST_JOBS.<org>.>).
func (a *app) jobs(ctx context.Context, args []string) error {
	var f jobsFlags
	fs := a.newFlagSet("jobs", "[--state running|done] [--org O] [--mapping M] [--limit N] [-f] [-o json]", &f.conn)
	fs.StringVar(&f.filter.state, "state", "", "running (claimed, waiting or running) or done; default both")
	fs.StringVar(&f.filter.org, "org", "", "only this organization (required for a user restricted to one)")
	fs.StringVar(&f.filter.mapping, "mapping", "", "only this mapping id")
	fs.IntVar(&f.limit, "limit", 1000, "print at most this many jobs, the most recently updated")
	followFlag(fs, &f.follow, "then print every change of a matching job until interrupted")
	f.out.register(fs, "each job record as one JSON object (as stored)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	switch {
	case f.filter.state != "" && f.filter.state != "running" && f.filter.state != "done":
		return usageErrorf("jobs: --state %q: want running or done", f.filter.state)
	case f.filter.org != "" && !ingest.ValidOrganization(f.filter.org):
		return usageErrorf("jobs: --org %q is not a valid organization", f.filter.org)
	case f.limit < 1:
		return usageErrorf("jobs: --limit must be at least 1")
	}
	s, err := a.connect(ctx, &f.conn)
	if err != nil {
		return err
	}
	defer s.close()
	if f.filter.org == "" {
		s.setHint(orgHint)
	}
	r, err := s.open(s.ctx, jobsStream, jobsFilter(f.filter.org), startAt{lastPerSubject: true})
	if err != nil {
		return err
	}
	return a.listJobs(s, r, f)
}

// listJobs prints the matching jobs of r's backlog, then with --follow
// every change.
func (a *app) listJobs(s *session, r *reader, f jobsFlags) error {
	jobs, more, err := readJobs(s.ctx, r, f.filter, f.limit)
	if err != nil {
		return err
	}
	t := jobTable{w: a.stdout, json: f.out.json, now: a.now}
	if err := t.print(jobs); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(a.stderr, "ingestctl: %d older matching jobs not shown (--limit %d)\n", more, f.limit)
	}
	for f.follow {
		m, err := r.next(s.ctx)
		switch {
		case s.ctx.Err() != nil && s.denied() == nil:
			return nil // interrupted
		case err != nil:
			return err
		}
		if j, ok := decodeJob(m); ok && f.filter.match(j.Record) {
			if err := t.print([]job{j}); err != nil {
				return err
			}
		}
	}
	return nil
}

// readJobs reads r's backlog (the current value of each key, in the order
// of their last writes) and keeps the last limit records that match f.
// more counts the matching records left out.
func readJobs(ctx context.Context, r *reader, f jobFilter, limit int) (jobs []job, more int, err error) {
	ring := make([]job, 0, min(limit, 1024))
	next := 0 // with a full ring, the oldest
	for n := uint64(0); n < r.backlog; n++ {
		m, err := r.next(ctx)
		if err != nil {
			return nil, 0, err
		}
		j, ok := decodeJob(m)
		if !ok || !f.match(j.Record) {
			continue
		}
		if len(ring) < limit {
			ring = append(ring, j)
			continue
		}
		ring[next] = j
		next = (next + 1) % limit
		more++
	}
	return append(ring[next:], ring[:next]...), more, nil
}

// jobTable prints jobs as JSON lines, or as a table whose header comes
// with the first rows and whose columns only grow.
type jobTable struct {
	w      io.Writer
	json   bool
	now    func() time.Time
	widths []int
}

var jobColumns = []string{"COMMAND", "ORG/MAPPING", "REQUEST", "STATE", "OUTCOME", "REASON", "ATTEMPT", "POLLS", "AGE"}

func (t *jobTable) print(jobs []job) error {
	if t.json {
		for _, j := range jobs {
			if _, err := fmt.Fprintf(t.w, "%s\n", j.raw); err != nil {
				return err
			}
		}
		return nil
	}
	rows := make([][]string, 0, len(jobs)+1)
	if t.widths == nil {
		rows = append(rows, jobColumns)
	}
	now := t.now()
	for _, j := range jobs {
		rows = append(rows, []string{j.CommandID, j.Organization + "/" + j.MappingID, orDash(j.RequestID), string(j.Phase),
			orDash(string(j.Outcome)), orDash(string(j.Reason)), fmt.Sprint(j.Attempt), fmt.Sprint(j.Polls), age(now.Sub(j.since()))})
	}
	t.grow(rows)
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row[:len(row)-1] {
			fmt.Fprintf(&b, "%-*s", t.widths[i]+2, cell)
		}
		b.WriteString(row[len(row)-1] + "\n")
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// grow widens the columns to rows' cells.
func (t *jobTable) grow(rows [][]string) {
	if t.widths == nil {
		t.widths = make([]int, len(jobColumns))
	}
	for _, row := range rows {
		for i, cell := range row {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(cell))
		}
	}
}
