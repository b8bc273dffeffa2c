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
	"github.com/acme/campaign-ingest/internal/syncbuf"
)

// TestEvents is the specification of `events` filters: which events of a
// known history it prints, in stream order.
func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		campaignsim.Mapping{ID: "OK", Script: campaignsim.Script{Records: 4}},
		campaignsim.Mapping{ID: "FETCH", Script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure}},
		campaignsim.Mapping{ID: "DRAFT", State: campaignsim.StateNotPublished},
	)
	for _, m := range []string{"OK", "FETCH", "DRAFT"} {
		e.ctl(t, "trigger", "--org", "acme", "--mapping", m, "--id", "ev-"+m, "--wait")
	}
	e.publishRaw(t, "ingest.commands.acme.OK", "", "ev-OK-2")
	e.events.Terminal(t, "ev-OK-2", 20*time.Second)

	tests := []struct {
		name string
		args []string
		now  time.Duration // the clock's offset
		want []string      // command:type
	}{
		{name: "everything of the last hour", want: []string{
			"ev-OK:triggered", "ev-OK:succeeded", "ev-FETCH:triggered", "ev-FETCH:failed",
			"ev-DRAFT:rejected", "ev-OK-2:triggered", "ev-OK-2:succeeded"}},
		{name: "one mapping", args: []string{"--org", "acme", "--mapping", "OK"}, want: []string{
			"ev-OK:triggered", "ev-OK:succeeded", "ev-OK-2:triggered", "ev-OK-2:succeeded"}},
		{name: "terminal types", args: []string{"--type", "terminal"}, want: []string{
			"ev-OK:succeeded", "ev-FETCH:failed", "ev-DRAFT:rejected", "ev-OK-2:succeeded"}},
		{name: "two types", args: []string{"--type", "rejected,failed"}, want: []string{"ev-FETCH:failed", "ev-DRAFT:rejected"}},
		{name: "one command", args: []string{"--id", "ev-FETCH"}, want: []string{"ev-FETCH:triggered", "ev-FETCH:failed"}},
		{name: "mapping and type", args: []string{"--mapping", "OK", "--type", "triggered"}, want: []string{"ev-OK:triggered", "ev-OK-2:triggered"}},
		{name: "another organization", args: []string{"--org", "globex"}, want: nil},
		{name: "since excludes older events", args: []string{"--since", "1h"}, now: 2 * time.Hour, want: nil},
		{name: "since 0 reads the whole stream", args: []string{"--since", "0", "--type", "rejected"}, now: 2 * time.Hour, want: []string{"ev-DRAFT:rejected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := e.ctlWith(t, func(a *app) {
				a.now = func() time.Time { return time.Now().Add(tt.now) }
			}, append([]string{"events", "--json"}, tt.args...)...)
			if res.code != exitOK || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			var got []string
			for _, l := range parseLines[jsonLine](t, res.stdout) {
				got = append(got, l.CommandID+":"+l.Type)
				if want := "ingest.events.acme." + l.MappingID + "." + l.Type; l.Subject != want {
					t.Errorf("subject %q, want %q", l.Subject, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	t.Run("readable lines", func(t *testing.T) {
		t.Parallel()
		res := e.ctl(t, "events", "--id", "ev-FETCH")
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if res.code != exitOK || len(lines) != 2 {
			t.Fatalf("exit %d, stdout:\n%s", res.code, res.stdout)
		}
		for i, want := range []string{
			" triggered acme/FETCH command=ev-FETCH request=",
			" failed    acme/FETCH command=ev-FETCH request=",
		} {
			if !strings.Contains(lines[i], want) {
				t.Errorf("line %q, want it to contain %q", lines[i], want)
			}
		}
		if !strings.HasSuffix(lines[1], " status=Failed reason=fetch_failed error=ACP-880056") {
			t.Errorf("line %q, want status, reason and error code", lines[1])
		}
	})
}

// TestEventsFollow: --follow prints events as they come and ends cleanly
// when interrupted.
func TestEventsFollow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, campaignsim.Mapping{ID: "XDM44", Script: campaignsim.Script{Records: 2}})
	pr, pw := io.Pipe()
	var stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- newTestApp(pw, &stderr).run(ctx, []string{"events", "--follow", "--json", "--org", "acme", "--server", e.url})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	e.publishRaw(t, "ingest.commands.acme.XDM44", "", "follow-1")
	var got []string
	for len(got) < 2 && lines.Scan() {
		got = append(got, parseLines[jsonLine](t, lines.Text())[0].Type)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt, want 0; stderr %q", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not end within 10s of the interrupt")
	}
	if !slices.Equal(got, []string{"triggered", "succeeded"}) {
		t.Errorf("followed %v, want triggered then succeeded", got)
	}
}
