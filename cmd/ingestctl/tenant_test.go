package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/worker"
)

// tenantPermissions is the NATS permission set of a user confined to
// organization org, as the deployment ships it (see the README). It is
// exactly what ingestctl needs: no stream info (which would list every
// organization's subjects), no pull requests on a consumer by name, no
// subscription outside the user's inbox.
func tenantPermissions(org string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"ingest.commands." + org + ".>",
			"$JS.API.CONSUMER.CREATE.INGEST_EVENTS.*.ingest.events." + org + ".>",
			"$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.*.$KV.INGEST_JOBS." + org + ".>",
			"$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS." + org + ".>",
			"$JS.FC.INGEST_EVENTS.>",
			"$JS.FC.KV_INGEST_JOBS.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_" + org + ".>"}},
	}
}

// tenantEnv is a worker (user "worker", every permission) on a server with
// the tenant users acme and globex.
type tenantEnv struct {
	url    string
	events *testenv.Events
	// xdg is an XDG_CONFIG_HOME with a nats CLI context per tenant.
	xdg string
}

const tenantPassword = "pw"

func newTenantEnv(t *testing.T) *tenantEnv {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir(), LazySync: true, Config: func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "worker", Password: tenantPassword},
			{Username: "acme", Password: tenantPassword, Permissions: tenantPermissions("acme")},
			{Username: "globex", Password: tenantPassword, Permissions: tenantPermissions("globex")},
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	e := &tenantEnv{url: ns.ClientURL(), xdg: t.TempDir()}
	_, simURL := testenv.Simulator(t,
		// Two checks each, so that the jobs keep a record to list.
		campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 4, Polls: 2}},
		campaignsim.Mapping{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Records: 9, Polls: 2}},
	)
	cfg := testConfig(e.url, simURL)
	cfg.NATS.User, cfg.NATS.Password = "worker", tenantPassword
	testenv.RunWorker(t, cfg, worker.Options{})
	_, js := testenv.Connect(t, e.url, nats.UserInfo("worker", tenantPassword))
	e.events = testenv.RecordEvents(t, js)
	for _, org := range []string{"acme", "globex"} {
		e.writeContext(t, org)
	}
	return e
}

// writeContext writes the nats CLI context of a tenant: its user and its
// inbox prefix.
func (e *tenantEnv) writeContext(t *testing.T, org string) {
	t.Helper()
	dir := filepath.Join(e.xdg, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	content := `{"url":"` + e.url + `","user":"` + org + `","password":"` + tenantPassword + `","inbox_prefix":"_INBOX_` + org + `"}`
	if err := os.WriteFile(filepath.Join(dir, org+".json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// as runs ingestctl as the tenant org, through its nats CLI context
// (NATS_CONTEXT). A JetStream request that nobody answers would only end
// after an hour: within the test's one-minute limit, an answer means that
// ingestctl did not wait for a timeout.
func (e *tenantEnv) as(t *testing.T, org string, args ...string) result {
	t.Helper()
	env := map[string]string{"XDG_CONFIG_HOME": e.xdg, "NATS_CONTEXT": org}
	return ctlAt(t, "", func(a *app) {
		a.getenv = func(k string) string { return env[k] }
		a.apiTimeout = time.Hour
	}, args...)
}

// TestTenant: a user confined to its organization by NATS permissions
// triggers and waits, reads its events and its jobs; it cannot trigger for,
// read the events of, or list the jobs of another organization, and is
// told so at once (exit 8), not after a timeout.
func TestTenant(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	if res := e.as(t, "globex", "trigger", "--org", "globex", "--mapping", "XDM44", "--id", "g-1", "--wait"); res.code != exitOK {
		t.Fatalf("globex trigger --wait: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	t.Run("trigger --wait", func(t *testing.T) {
		res := e.ctlProgress(t, "acme", "trigger", "--org", "acme", "--mapping", "XDM44", "--id", "a-1", "--wait", "-o", "json")
		lines := parseLines[jsonLine](t, res.stdout)
		if res.code != exitOK || !slices.Equal(types(lines), []string{"triggered", "succeeded"}) {
			t.Fatalf("exit %d, events %v\n%s%s", res.code, types(lines), res.stdout, res.stderr)
		}
		if lines[1].NumRecords != 4 || lines[1].Subject != "ingest.events.acme.XDM44.succeeded" {
			t.Errorf("terminal event %+v", lines[1])
		}
		if !strings.Contains(res.stderr, "a-1: ") || strings.Contains(res.stderr, "denied") {
			t.Errorf("stderr %q, want progress and no denial", res.stderr)
		}
	})
	t.Run("trigger --wait of a command id already done", func(t *testing.T) {
		res := e.as(t, "acme", "trigger", "--org", "acme", "--mapping", "XDM44", "--id", "a-1", "--wait")
		if res.code != exitOK || !strings.Contains(res.stdout, "dropped as a duplicate") || strings.Count(res.stdout, " succeeded acme/XDM44 command=a-1 ") != 1 {
			t.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("own events", func(t *testing.T) {
		res := e.as(t, "acme", "events", "--org", "acme", "--json")
		var got []string
		for _, l := range parseLines[jsonLine](t, res.stdout) {
			got = append(got, l.CommandID+":"+l.Type)
		}
		if res.code != exitOK || !slices.Equal(got, []string{"a-1:triggered", "a-1:succeeded"}) {
			t.Errorf("exit %d, events %v; stderr %q", res.code, got, res.stderr)
		}
	})
	t.Run("own events of several types", func(t *testing.T) {
		res := e.as(t, "acme", "events", "--org", "acme", "--type", "succeeded,failed")
		if res.code != exitOK || strings.Count(res.stdout, "\n") != 1 || !strings.Contains(res.stdout, " succeeded acme/XDM44 command=a-1 ") {
			t.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("job records by key", func(t *testing.T) {
		a := newTestApp(io.Discard, io.Discard)
		env := map[string]string{"XDG_CONFIG_HOME": e.xdg, "NATS_CONTEXT": "acme"}
		a.getenv = func(k string) string { return env[k] }
		s, err := a.connect(context.Background(), &connFlags{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if rec, err := s.loadRecord(s.ctx, "acme", "a-1"); err != nil || rec == nil || rec.Outcome != ingest.EventSucceeded {
			t.Errorf("own record: %+v, %v", rec, err)
		}
		if rec, err := s.loadRecord(s.ctx, "acme", "nope"); err != nil || rec != nil {
			t.Errorf("own missing record: %+v, %v; want none", rec, err)
		}
		var d *deniedError
		if rec, err := s.loadRecord(s.ctx, "globex", "g-1"); !errors.Is(err, errNoRecords) || !errors.As(err, &d) || rec != nil {
			t.Errorf("another organization's record: %+v, %v; want a denial", rec, err)
		}
		if s.ctx.Err() != nil || s.denied() != nil {
			t.Errorf("a denied record read ended the session: %v", context.Cause(s.ctx))
		}
	})
	t.Run("own jobs", func(t *testing.T) {
		res := e.as(t, "acme", "jobs", "--org", "acme", "-o", "json")
		recs := parseLines[ingest.Record](t, res.stdout)
		if res.code != exitOK || len(recs) != 1 || recs[0].CommandID != "a-1" || recs[0].Outcome != ingest.EventSucceeded {
			t.Errorf("exit %d, records %+v; stderr %q", res.code, recs, res.stderr)
		}
	})
	t.Run("a read large enough for flow control", func(t *testing.T) {
		// The server asks for a flow control reply once 1 MiB is pending.
		e.putRecords(t, "acme", "BULK", 40, 64<<10)
		res := e.as(t, "acme", "jobs", "--org", "acme", "--mapping", "BULK", "-o", "json")
		if n := len(parseLines[ingest.Record](t, res.stdout)); res.code != exitOK || n != 40 {
			t.Errorf("exit %d, %d records, want 40; stderr %q", res.code, n, res.stderr)
		}
	})

	denials := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{
			name: "trigger for another organization",
			args: []string{"trigger", "--org", "globex", "--mapping", "XDM44", "--id", "x-1"},
			want: []string{`ingestctl: permission denied: publish to "ingest.commands.globex.XDM44" (publishing a command for organization globex; check the user's NATS permissions)`},
		},
		{
			name: "trigger --wait for another organization",
			args: []string{"trigger", "--org", "globex", "--mapping", "XDM44", "--id", "x-2", "--wait"},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.`, `.ingest.events.globex.XDM44.*" (reading the events ingest.events.globex.XDM44.*; check the user's NATS permissions)`},
		},
		{
			name: "another organization's events",
			args: []string{"events", "--org", "globex"},
			want: []string{`permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.`, `(reading the events ingest.events.globex.*.*; check`},
		},
		{
			name: "events without --org",
			args: []string{"events", "--follow"},
			want: []string{`(reading the events ingest.events.*.*.*; check the user's NATS permissions; a user restricted to one organization must give --org)`},
		},
		{
			name: "another organization's jobs",
			args: []string{"jobs", "--org", "globex"},
			want: []string{`permission denied: publish to "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.`, `(reading the job records globex.>; check the user's NATS permissions)`},
		},
		{
			name: "jobs without --org",
			args: []string{"jobs"},
			want: []string{`(reading the job records >; check the user's NATS permissions; a user restricted to one organization must give --org)`},
		},
		{
			name: "without the user's inbox prefix",
			args: []string{"jobs", "--org", "acme", "--inbox-prefix", "_INBOX"},
			want: []string{`permission denied: subscribe to "_INBOX.`, `the user may subscribe only to its own inbox: set --inbox-prefix to it, such as _INBOX_<org>)`},
		},
	}
	for _, tt := range denials {
		t.Run(tt.name, func(t *testing.T) {
			res := e.as(t, "acme", tt.args...)
			if res.code != exitDenied {
				t.Errorf("exit %d, want %d; stderr %q", res.code, exitDenied, res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", res.stderr, w)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}

	t.Run("nothing was published for globex by acme", func(t *testing.T) {
		for _, ev := range e.events.All() {
			if ev.Organization == "globex" && ev.CommandID != "g-1" {
				t.Errorf("event %s of %s/%s", ev.Type, ev.Organization, ev.CommandID)
			}
		}
	})
}

// ctlProgress runs ingestctl as org with the progress line on, so that the
// wait reads the job record too.
func (e *tenantEnv) ctlProgress(t *testing.T, org string, args ...string) result {
	t.Helper()
	env := map[string]string{"XDG_CONFIG_HOME": e.xdg, "NATS_CONTEXT": org}
	return ctlAt(t, "", func(a *app) {
		a.getenv = func(k string) string { return env[k] }
		a.apiTimeout = time.Hour
		a.progress = func() bool { return true }
		a.progressEvery = 10 * time.Millisecond
	}, args...)
}

// putRecords writes n done job records of org's mapping, each padded to
// about size bytes, as the worker's user.
func (e *tenantEnv) putRecords(t *testing.T, org, mapping string, n, size int) {
	t.Helper()
	_, js := testenv.Connect(t, e.url, nats.UserInfo("worker", tenantPassword))
	kv, err := js.KeyValue(context.Background(), "INGEST_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", size)
	for i := range n {
		id := fmt.Sprintf("%s-%d", strings.ToLower(mapping), i)
		rec := fmt.Sprintf(`{"commandId":%q,"organization":%q,"mappingId":%q,"phase":"done","pad":%q}`, id, org, mapping, pad)
		if _, err := kv.Put(context.Background(), layout.RecordKey(org, id), []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
}
