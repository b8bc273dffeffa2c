package main

import (
	"bufio"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/syncbuf"
)

// TestJobs is the specification of `jobs`: which records it lists. A job
// that ended at its first status check kept no state (its terminal event
// is its only trace), so it is not listed.
func TestJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		campaignsim.Mapping{ID: "OK", Script: campaignsim.Script{Records: 4, Polls: 2}},
		campaignsim.Mapping{ID: "FETCH", Script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure, Polls: 2}},
		campaignsim.Mapping{ID: "INSTANT", Script: campaignsim.Script{Records: 1}},
		campaignsim.Mapping{ID: "NEVER", Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}},
	)
	e.ctl(t, "trigger", "--org", "acme", "--mapping", "INSTANT", "--id", "job-instant", "--wait")
	e.ctl(t, "trigger", "--org", "acme", "--mapping", "OK", "--id", "job-ok", "--wait")
	e.ctl(t, "trigger", "--org", "acme", "--mapping", "FETCH", "--id", "job-fetch", "--wait")
	e.ctl(t, "trigger", "--org", "acme", "--mapping", "NEVER", "--id", "job-never", "--wait", "--wait-timeout", "200ms")
	// The running job's record is written when its POST answers.
	waitFor(t, "a running job", func() bool {
		return strings.Contains(e.ctl(t, "jobs", "--state", "running").stdout, "job-never")
	})

	tests := []struct {
		name      string
		args      []string
		want      []string // command:phase:outcome
		wantNotes string   // in stderr
	}{
		{name: "every job", want: []string{"job-ok:done:succeeded", "job-fetch:done:failed", "job-never:running:"}},
		{name: "running", args: []string{"--state", "running"}, want: []string{"job-never:running:"}},
		{name: "done", args: []string{"--state", "done"}, want: []string{"job-ok:done:succeeded", "job-fetch:done:failed"}},
		{name: "one mapping", args: []string{"--org", "acme", "--mapping", "FETCH"}, want: []string{"job-fetch:done:failed"}},
		{name: "another organization", args: []string{"--org", "globex"}, want: nil},
		{name: "limit keeps the most recently updated", args: []string{"--state", "done", "--limit", "1"}, want: []string{"job-fetch:done:failed"},
			wantNotes: "1 older matching jobs not shown (--limit 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := e.ctl(t, append([]string{"jobs", "--json"}, tt.args...)...)
			if res.code != exitOK || !strings.Contains(res.stderr, tt.wantNotes) {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			var got []string
			for _, r := range parseLines[ingest.Record](t, res.stdout) {
				got = append(got, r.CommandID+":"+string(r.Phase)+":"+string(r.Outcome))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("jobs\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	t.Run("table", func(t *testing.T) {
		t.Parallel()
		res := e.ctl(t, "jobs", "--mapping", "OK")
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if res.code != exitOK || len(lines) != 2 {
			t.Fatalf("exit %d, stdout:\n%s", res.code, res.stdout)
		}
		if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"COMMAND", "ORG/MAPPING", "REQUEST", "STATE", "OUTCOME", "REASON", "ATTEMPT", "POLLS", "AGE"}) {
			t.Errorf("header %v", got)
		}
		if got := strings.Fields(lines[1]); len(got) != 9 || got[0] != "job-ok" || got[1] != "acme/OK" || got[3] != "done" || got[4] != "succeeded" || got[5] != "-" {
			t.Errorf("row %v", got)
		}
	})
}

// waitFor polls ok until it holds, or fails the test after 20s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJobsFollow: -f prints the current jobs, then each change of a
// matching job as it happens, and ends cleanly when interrupted.
func TestJobsFollow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, campaignsim.Mapping{ID: "XDM44", Script: campaignsim.Script{Records: 2, Polls: 2}})
	if res := e.ctl(t, "trigger", "--org", "acme", "--mapping", "XDM44", "--id", "before", "--wait"); res.code != exitOK {
		t.Fatalf("trigger: exit %d\n%s", res.code, res.stderr)
	}
	pr, pw := io.Pipe()
	var stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- newTestApp(pw, &stderr).run(ctx, []string{"jobs", "-f", "-o", "json", "--org", "acme", "--state", "done", "--server", e.url})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var got []string
	next := func() {
		if !lines.Scan() {
			t.Fatalf("jobs -f ended early; got %v; stderr %q", got, stderr.String())
		}
		r := parseLines[ingest.Record](t, lines.Text())[0]
		got = append(got, r.CommandID+":"+string(r.Phase))
	}
	next() // the current job
	e.publishRaw(t, "ingest.commands.acme.XDM44", "", "after")
	next() // its end
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt, want 0; stderr %q", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("jobs -f did not end within 10s of the interrupt")
	}
	if !slices.Equal(got, []string{"before:done", "after:done"}) {
		t.Errorf("followed %v, want before:done then after:done (only done jobs)", got)
	}
}
