package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// jobs is `ingestctl jobs`.
func (a *app) jobs(ctx context.Context, args []string) error {
	var (
		conn   connFlags
		f      jobFilter
		limit  int
		asJSON bool
	)
	fs := a.newFlagSet("jobs", "[--state running|done] [--org O] [--mapping M] [--limit N] [--json]", &conn)
	fs.StringVar(&f.state, "state", "", "running (claimed, waiting or running) or done; default both")
	fs.StringVar(&f.org, "org", "", "only this organization")
	fs.StringVar(&f.mapping, "mapping", "", "only this mapping id")
	fs.IntVar(&limit, "limit", 1000, "print at most this many jobs, the most recently updated")
	fs.BoolVar(&asJSON, "json", false, "print each job record as one JSON object (as stored)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	switch {
	case f.state != "" && f.state != "running" && f.state != "done":
		return usageErrorf("jobs: --state %q: want running or done", f.state)
	case limit < 1:
		return usageErrorf("jobs: --limit must be at least 1")
	}
	s, err := conn.connect()
	if err != nil {
		return err
	}
	defer s.close()
	kv, err := s.bucket(ctx, layout.DefaultBucket)
	if err != nil {
		return err
	}
	jobs, more, err := listJobs(ctx, kv, f, limit)
	if err != nil {
		return err
	}
	if asJSON {
		for _, j := range jobs {
			if _, err := fmt.Fprintf(a.stdout, "%s\n", j.raw); err != nil {
				return err
			}
		}
	} else if err := a.printJobs(jobs); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(a.stderr, "ingestctl: %d older matching jobs not shown (--limit %d)\n", more, limit)
	}
	return nil
}

// listJobs reads the bucket once, in the order of the entries' last writes,
// and keeps the last limit records that match f. more counts the matching
// records left out.
func listJobs(ctx context.Context, kv jetstream.KeyValue, f jobFilter, limit int) (jobs []job, more int, err error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	defer w.Stop()
	ring := make([]job, 0, min(limit, 1024))
	next := 0 // with a full ring, the oldest
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case e = <-w.Updates():
		}
		if e == nil {
			break // every current entry was delivered
		}
		j := job{created: e.Created()}
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Value()); err != nil || json.Unmarshal(buf.Bytes(), &j.Record) != nil {
			continue // not a job record
		}
		j.raw = buf.Bytes()
		if !f.match(j.Record) {
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

func (a *app) printJobs(jobs []job) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMAND\tORG/MAPPING\tREQUEST\tSTATE\tOUTCOME\tREASON\tATTEMPT\tPOLLS\tAGE")
	now := a.now()
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
			j.CommandID, j.Organization, j.MappingID, orDash(j.RequestID), j.Phase,
			orDash(string(j.Outcome)), orDash(string(j.Reason)), j.Attempt, j.Polls, age(now.Sub(j.since())))
	}
	return tw.Flush()
}
