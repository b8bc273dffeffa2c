package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/testenv"
)

// TestTriggerWait is the specification of `trigger --wait`: its exit code
// for every outcome, and the events it prints as JSON lines.
func TestTriggerWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		campaignsim.Mapping{ID: "OK", Script: campaignsim.Script{Records: 15, Polls: 2}},
		campaignsim.Mapping{ID: "FETCH", Script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure, Polls: 2}},
		campaignsim.Mapping{ID: "ABORT", Script: campaignsim.Script{Outcome: campaignsim.OutcomeAborted}},
		campaignsim.Mapping{ID: "DRAFT", State: campaignsim.StateNotPublished},
		campaignsim.Mapping{ID: "SLOW", Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}},
		campaignsim.Mapping{ID: "NEVER", Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}},
	)
	tests := []struct {
		name      string
		mapping   string
		args      []string
		wantCode  int
		wantTypes []string
		wantErr   string // in stderr
	}{
		{name: "succeeded", mapping: "OK", wantCode: exitOK, wantTypes: []string{"triggered", "succeeded"}},
		{name: "failed", mapping: "FETCH", wantCode: exitFailed, wantTypes: []string{"triggered", "failed"}},
		{name: "aborted", mapping: "ABORT", wantCode: exitAborted, wantTypes: []string{"triggered", "aborted"}},
		{name: "rejected", mapping: "DRAFT", wantCode: exitRejected, wantTypes: []string{"rejected"}},
		{name: "timed out", mapping: "SLOW", args: []string{"--timeout", "300ms"}, wantCode: exitTimedOut, wantTypes: []string{"triggered", "timed_out"}},
		{
			name: "no answer within the wait limit", mapping: "NEVER", args: []string{"--wait-timeout", "1s"},
			wantCode: exitNoAnswer, wantTypes: []string{"triggered"}, wantErr: "no terminal event for command cli-NEVER within 1s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := "cli-" + tt.mapping
			args := append([]string{"trigger", "--org", "acme", "--mapping", tt.mapping, "--id", id, "--correlation-id", "run-7", "--wait", "--json"}, tt.args...)
			res := e.ctl(t, args...)
			if res.code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.wantCode, res.stdout, res.stderr)
			}
			lines := parseLines[jsonLine](t, res.stdout)
			if got := types(lines); !slices.Equal(got, tt.wantTypes) {
				t.Errorf("event types %v, want %v\nstdout:\n%s", got, tt.wantTypes, res.stdout)
			}
			for _, l := range lines {
				if want := "ingest.events.acme." + tt.mapping + "." + l.Type; l.Subject != want || l.CommandID != id {
					t.Errorf("line subject %q command %q, want %q and %q", l.Subject, l.CommandID, want, id)
				}
			}
			if !strings.Contains(res.stderr, tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", res.stderr, tt.wantErr)
			}
			if tt.wantErr == "" && res.stderr != "" {
				t.Errorf("stderr %q, want nothing", res.stderr)
			}
			if strings.ContainsAny(res.stderr, "\r\x1b") {
				t.Errorf("stderr is not a terminal but holds progress decoration: %q", res.stderr)
			}
		})
	}
}

// TestTriggerWaitMissesNothing: the wait sees a command's outcome however
// early it arrived: before the wait started reading, or long before (a
// republished command id).
func TestTriggerWaitMissesNothing(t *testing.T) {
	t.Parallel()
	const instant = "INSTANT"
	tests := []struct {
		name string
		// before runs before the ingestctl invocation; id is the command's.
		before func(t *testing.T, e *env, id string)
		// afterPublish runs between ingestctl's publish and its wait.
		afterPublish  func(t *testing.T, e *env, id string)
		wantDuplicate bool
	}{
		{
			name: "outcome stored before the wait starts reading",
			afterPublish: func(t *testing.T, e *env, id string) {
				e.events.Terminal(t, id, 20*time.Second)
			},
		},
		{
			name: "republish of a finished command id, dropped as a duplicate",
			before: func(t *testing.T, e *env, id string) {
				if res := e.ctl(t, "trigger", "--org", "acme", "--mapping", instant, "--id", id, "--wait"); res.code != exitOK {
					t.Fatalf("first trigger: exit %d\n%s%s", res.code, res.stdout, res.stderr)
				}
			},
			wantDuplicate: true,
		},
		{
			name: "command id already done, publish not a duplicate (id in the body of an earlier command)",
			before: func(t *testing.T, e *env, id string) {
				e.publishRaw(t, "ingest.commands.acme."+instant, `{"id":"`+id+`"}`, "another-msg-id")
				e.events.Terminal(t, id, 20*time.Second)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, campaignsim.Mapping{ID: instant, Script: campaignsim.Script{Records: 3}})
			const id = "early-1"
			if tt.before != nil {
				tt.before(t, e, id)
			}
			res := e.ctlWith(t, func(a *app) {
				if tt.afterPublish != nil {
					a.afterPublish = func() { tt.afterPublish(t, e, id) }
				}
			}, "trigger", "--org", "acme", "--mapping", instant, "--id", id, "--wait", "--wait-timeout", "20s")
			if res.code != exitOK {
				t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if got := strings.Contains(res.stdout, "dropped as a duplicate"); got != tt.wantDuplicate {
				t.Errorf("duplicate reported = %v, want %v:\n%s", got, tt.wantDuplicate, res.stdout)
			}
			for _, want := range []string{" triggered acme/INSTANT command=early-1 request=", " succeeded acme/INSTANT command=early-1 request="} {
				if strings.Count(res.stdout, want) != 1 {
					t.Errorf("stdout holds %q %d times, want once:\n%s", want, strings.Count(res.stdout, want), res.stdout)
				}
			}
			if n := len(testenv.Calls(e.sim, "acme", instant, campaign.OpTrigger)); n != 1 {
				t.Errorf("POSTs = %d, want 1", n)
			}
		})
	}
}

// TestTriggerWithoutWait: the publish acknowledgement as a line and as
// JSON, a generated id, and a republish.
func TestTriggerWithoutWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, campaignsim.Mapping{ID: "XDM44", Script: campaignsim.Script{Records: 1}})
	res := e.ctl(t, "trigger", "--org", "acme", "--mapping", "XDM44")
	if res.code != exitOK || !strings.HasPrefix(res.stdout, "published command acme-XDM44-") {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	type ack struct {
		CommandID string `json:"commandId"`
		Subject   string `json:"subject"`
		Stream    string `json:"stream"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	tests := []struct {
		name string
		want ack
	}{
		{name: "first publish", want: ack{CommandID: "fixed-1", Subject: "ingest.commands.acme.XDM44", Stream: "INGEST_COMMANDS", Seq: 2}},
		{name: "republish", want: ack{CommandID: "fixed-1", Subject: "ingest.commands.acme.XDM44", Stream: "INGEST_COMMANDS", Seq: 2, Duplicate: true}},
	}
	for _, tt := range tests { // in order: the second republishes the first
		res := e.ctl(t, "trigger", "--org", "acme", "--mapping", "XDM44", "--id", "fixed-1", "--json")
		got := parseLines[ack](t, res.stdout)
		if res.code != exitOK || len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: exit %d, acks %+v, want %+v", tt.name, res.code, got, tt.want)
		}
	}
}

// TestTriggerProgress: on a terminal, the wait redraws one progress line
// on stderr in place; stdout holds only the events.
func TestTriggerProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, campaignsim.Mapping{ID: "XDM44", Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(300 * time.Millisecond)}})
	res := e.ctlWith(t, func(a *app) {
		a.progress = func() bool { return true }
		a.progressEvery = 10 * time.Millisecond
	}, "trigger", "--org", "acme", "--mapping", "XDM44", "--id", "tty-1", "--wait")
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "\r\x1b[Kwaiting ") || !strings.Contains(res.stderr, "acme/XDM44 tty-1: ") {
		t.Errorf("stderr %q, want a progress line redrawn in place", res.stderr)
	}
	if !strings.HasSuffix(res.stderr, "\r\x1b[K") {
		t.Errorf("stderr %q, want the progress line erased at the end", res.stderr)
	}
	if strings.ContainsAny(res.stdout, "\r\x1b") {
		t.Errorf("stdout %q holds progress decoration", res.stdout)
	}
}

// TestTriggerInterrupted: an interrupt while waiting ends the wait (exit
// 130) and says how to keep watching; the command goes on.
func TestTriggerInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, campaignsim.Mapping{ID: "NEVER", Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}})
	var stdout, stderr bytes.Buffer
	a := newTestApp(&stdout, &stderr)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	a.afterPublish = interrupt
	code := a.run(ctx, []string{"trigger", "--org", "acme", "--mapping", "NEVER", "--id", "int-1", "--wait", "--server", e.url})
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, exitInterrupted, stderr.String())
	}
	if want := "interrupted; command int-1 goes on: ingestctl events --id int-1 --follow"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	e.events.WaitFor(t, 20*time.Second, "triggered event of int-1", func(evs []testenv.Received) bool {
		return slices.ContainsFunc(evs, func(r testenv.Received) bool { return r.CommandID == "int-1" })
	})
}
