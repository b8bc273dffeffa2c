package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/worker"
)

// The shipped demo configuration; its tenant users are the ones of
// deploy/kubernetes/nats-values.yaml (deploy/check.sh compares the two).
const composeNATSConf = "compose/nats.conf"

// tenants of compose/nats.conf: each one's user is its organization's name,
// its password "<organization>-demo-password". mapping is one of the
// organization's mappings in the simulator the test runs.
var tenants = []struct{ org, other, mapping string }{
	{org: "acme", other: "globex", mapping: "XDM44"},
	{org: "globex", other: "acme", mapping: "XDM95"},
}

func mappingOf(org string) string {
	for _, tt := range tenants {
		if tt.org == org {
			return tt.mapping
		}
	}
	panic("no tenant " + org)
}

// The other users of compose/nats.conf, as they are there.
const (
	workerUser, workerPassword = "worker", "worker-demo-password"
	demoUser, demoPassword     = "demo", "demo"
)

// bulk is how many job records and events of bulkSize bytes the test
// stores per organization: more than the 1 MiB after which the server asks
// a push consumer's reader for a flow-control reply.
const bulk, bulkSize = 24, 64 << 10

// TestTenantPermissions starts a NATS server from compose/nats.conf and the
// worker, in process, as the user worker, and runs the real ingestctl as the
// tenant users acme and globex. Each tenant can do what ingestctl does for
// its own organization, with no permission violation at all, and nothing of
// the other organization's: ingestctl is refused with exit 8 naming the
// subject, and a nats.go client as the tenant is refused the rest (stream
// and consumer info, pulls, other users' consumers, other filters and
// keys, writes, management).
func TestTenantPermissions(t *testing.T) {
	ctl := ingestctlBinary(t)
	url, srvLog := startServer(t, composeNATSConf)
	runWorker(t, url)
	demo := connect(t, url, demoUser, demoPassword, "")
	fc := watchFlowControl(t, demo)
	e := &tenantEnv{ctl: ctl, url: url, home: t.TempDir(), log: srvLog, demo: demo, fc: fc}

	// Each organization first runs commands of its own, so that each has
	// events and job records the other must never see.
	for _, tt := range tenants {
		t.Run(tt.org+"/can/trigger", func(t *testing.T) {
			mark := srvLog.mark()
			e.canTrigger(t, tt.org, tt.mapping)
			e.noViolations(t, tt.org, mark)
		})
	}
	asWorker := connect(t, url, workerUser, workerPassword, "")
	for _, tt := range tenants {
		putBulk(t, asWorker, tt.org)
	}
	for _, tt := range tenants {
		t.Run(tt.org+"/can/read", func(t *testing.T) {
			mark := srvLog.mark()
			e.canRead(t, tt.org, tt.other, tt.mapping)
			e.noViolations(t, tt.org, mark)
		})
	}
	for _, tt := range tenants {
		t.Run(tt.org+"/cannot", func(t *testing.T) {
			before, mark := commandsStored(t, demo), srvLog.mark()
			t.Run("ingestctl", func(t *testing.T) { e.cannotIngestctl(t, tt.org, tt.other) })
			t.Run("client", func(t *testing.T) { e.cannotClient(t, tt.org, tt.other) })
			t.Run("server checks", func(t *testing.T) { e.serverRefuses(t, tt.org, tt.other) })
			// Not one refused command reached the stream.
			if after := commandsStored(t, demo); after != before {
				t.Errorf("INGEST_COMMANDS stored %d messages while %s was refused", after-before, tt.org)
			}
			// Without its own inbox prefix a tenant gets no replies at
			// all: even its own command, stored, is not acknowledged.
			t.Run("JetStream publish without the inbox prefix", func(t *testing.T) {
				stored := commandsStored(t, demo)
				c := connect(t, url, tt.org, tt.org+"-demo-password", "")
				c.denied(t, "_INBOX.", "", func(ctx context.Context, c *client) error {
					_, err := c.js.Publish(ctx, "ingest.commands."+tt.org+"."+tt.mapping, []byte(`{"id":"`+tt.org+`-no-inbox"}`))
					return err
				})
				// The command is stored all the same, maybe after the
				// refusal of its reply: wait for it, so that the next
				// tenant's count of stored commands starts after it.
				deadline := time.Now().Add(10 * time.Second)
				for commandsStored(t, demo) != stored+1 {
					if time.Now().After(deadline) {
						t.Fatalf("INGEST_COMMANDS stored %d messages, want the one published without an inbox prefix", commandsStored(t, demo)-stored)
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
			// The server logged the refusals as the tenant's, so the
			// check of the can subtests, which finds none, looks where
			// they would be.
			if len(srvLog.violations(tt.org, mark)) == 0 {
				t.Errorf("the server logged no violation of %s's", tt.org)
			}
		})
	}
	// The worker, with the permissions of compose/nats.conf, ran every
	// command above without a violation either.
	e.noViolations(t, workerUser, 0)
}

// tenantEnv is the server, the worker and the ingestctl binary of
// TestTenantPermissions.
type tenantEnv struct {
	ctl  string // the ingestctl binary
	url  string
	home string // HOME and XDG_CONFIG_HOME of ingestctl: no nats context
	log  *serverLog
	demo *client // the account's unrestricted user, to look
	fc   *flowControl
}

// result is what one ingestctl run did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	out := r.stdout
	if len(out) > 2000 {
		out = out[:2000] + "…"
	}
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, out, r.stderr)
}

// as runs ingestctl as the tenant org: the server, user, password and
// inbox prefix come from the worker's variables INGEST_NATS_*, as
// deploy/README.md tells tenants; nothing else of the test's environment
// reaches it.
func (e *tenantEnv) as(t *testing.T, org string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ctl, args...)
	cmd.Env = []string{
		"HOME=" + e.home,
		"XDG_CONFIG_HOME=" + e.home,
		"INGEST_NATS_URL=" + e.url,
		"INGEST_NATS_USER=" + org,
		"INGEST_NATS_PASSWORD=" + org + "-demo-password",
		"INGEST_NATS_INBOX_PREFIX=_INBOX_" + org,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("ingestctl %s: did not end within 20s\n%s", strings.Join(args, " "), res)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("ingestctl %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// canTrigger: ingestctl trigger, with and without --wait, for org's own
// mapping, against the worker.
func (e *tenantEnv) canTrigger(t *testing.T, org, mapping string) {
	id1, id2 := org+"-cmd-1", org+"-cmd-2"

	res := e.as(t, org, "trigger", "--org", org, "--mapping", mapping, "--id", id1)
	if want := fmt.Sprintf("published command %s on ingest.commands.%s.%s ", id1, org, mapping); res.code != 0 || !strings.HasPrefix(res.stdout, want) {
		t.Fatalf("trigger: want exit 0 and %q\n%s", want, res)
	}

	// --wait: a consumer on the mapping's events from the stream's next
	// sequence, the publish, the command's job record, its events.
	res = e.as(t, org, "trigger", "--org", org, "--mapping", mapping, "--id", id2, "--wait", "-o", "json")
	var got []string
	for _, ev := range jsonLines[eventLine](t, res.stdout) {
		got = append(got, ev.Subject+" "+ev.CommandID)
	}
	want := []string{
		fmt.Sprintf("ingest.events.%s.%s.triggered %s", org, mapping, id2),
		fmt.Sprintf("ingest.events.%s.%s.succeeded %s", org, mapping, id2),
	}
	if res.code != 0 || !slices.Equal(got, want) {
		t.Fatalf("trigger --wait: exit %d, events %q, want exit 0 and %q\n%s", res.code, got, want, res)
	}

	// --wait for the command published without it: a duplicate publish,
	// then the command's past events.
	res = e.as(t, org, "trigger", "--org", org, "--mapping", mapping, "--id", id1, "--wait")
	if res.code != 0 || !strings.Contains(res.stdout, "dropped as a duplicate") ||
		strings.Count(res.stdout, fmt.Sprintf(" succeeded %s/%s command=%s ", org, mapping, id1)) != 1 {
		t.Fatalf("trigger --wait of a command already published: want exit 0 and its outcome\n%s", res)
	}
}

// eventLine is a line of ingestctl events -o json.
type eventLine struct {
	Subject string `json:"subject"`
	ingest.Event
}

// canRead: ingestctl events and jobs for org, whose output holds org's
// events and records (every one of them, reads large enough for flow
// control included) and nothing of other's; and the direct get of a job
// record, whose denial ingestctl would tolerate.
func (e *tenantEnv) canRead(t *testing.T, org, other, mapping string) {
	var wantEvents, wantJobs []string
	for _, id := range []string{org + "-cmd-1", org + "-cmd-2"} {
		wantEvents = append(wantEvents, mapping+" "+id+" triggered", mapping+" "+id+" succeeded")
		wantJobs = append(wantJobs, mapping+" "+id+" done succeeded")
	}
	for i := range bulk {
		wantEvents = append(wantEvents, fmt.Sprintf("BULK bulk-%d succeeded", i))
		wantJobs = append(wantJobs, fmt.Sprintf("BULK bulk-%d done succeeded", i))
	}
	slices.Sort(wantEvents)
	slices.Sort(wantJobs)

	t.Run("events", func(t *testing.T) {
		fc := e.fc.events.Load()
		res := e.as(t, org, "events", "--org", org, "-o", "json")
		var got []string
		for _, ev := range jsonLines[eventLine](t, res.stdout) {
			if ev.Organization != org || !strings.HasPrefix(ev.Subject, "ingest.events."+org+".") {
				t.Errorf("event of %q on %s", ev.Organization, ev.Subject)
			}
			got = append(got, fmt.Sprintf("%s %s %s", ev.MappingID, ev.CommandID, ev.Type))
		}
		slices.Sort(got)
		if res.code != 0 || !slices.Equal(got, wantEvents) || strings.Contains(res.stdout, other) {
			t.Errorf("events --org %s: exit %d, events\n%q\nwant exit 0, nothing of %s, and\n%q\n%s", org, res.code, got, other, wantEvents, res)
		}
		if e.fc.events.Load() == fc {
			t.Errorf("no flow-control reply on $JS.FC.INGEST_EVENTS.> during the read: the read does not show that the grant works")
		}
	})
	t.Run("events, as text", func(t *testing.T) {
		res := e.as(t, org, "events", "--org", org, "--mapping", mapping)
		want := fmt.Sprintf(" succeeded %s/%s command=%s-cmd-2 ", org, mapping, org)
		if res.code != 0 || strings.Count(res.stdout, "\n") != 4 || !strings.Contains(res.stdout, want) || strings.Contains(res.stdout, other) {
			t.Errorf("events --org %s --mapping %s: want exit 0, 4 lines, %q, nothing of %s\n%s", org, mapping, want, other, res)
		}
	})
	t.Run("jobs", func(t *testing.T) {
		fc := e.fc.jobs.Load()
		res := e.as(t, org, "jobs", "--org", org, "-o", "json")
		var got []string
		for _, r := range jsonLines[ingest.Record](t, res.stdout) {
			if r.Organization != org {
				t.Errorf("job record of %q: %s %s", r.Organization, r.MappingID, r.CommandID)
			}
			got = append(got, fmt.Sprintf("%s %s %s %s", r.MappingID, r.CommandID, r.Phase, r.Outcome))
		}
		slices.Sort(got)
		if res.code != 0 || !slices.Equal(got, wantJobs) || strings.Contains(res.stdout, other) {
			t.Errorf("jobs --org %s: exit %d, records\n%q\nwant exit 0, nothing of %s, and\n%q\n%s", org, res.code, got, other, wantJobs, res)
		}
		if e.fc.jobs.Load() == fc {
			t.Errorf("no flow-control reply on $JS.FC.KV_INGEST_JOBS.> during the read: the read does not show that the grant works")
		}
	})
	t.Run("jobs, as text", func(t *testing.T) {
		res := e.as(t, org, "jobs", "--org", org, "--mapping", mapping)
		if res.code != 0 || strings.Count(res.stdout, "\n") != 3 || !strings.Contains(res.stdout, org+"-cmd-1 ") ||
			!strings.Contains(res.stdout, org+"/"+mapping+" ") || strings.Contains(res.stdout, other) {
			t.Errorf("jobs --org %s --mapping %s: want exit 0, a header and 2 rows of %s, nothing of %s\n%s", org, mapping, org, other, res)
		}
	})
	// trigger --wait reads the command's record by key, and carries on
	// without it when refused: the grant is shown here.
	t.Run("direct get of a job record", func(t *testing.T) {
		c := connect(t, e.url, org, org+"-demo-password", "_INBOX_"+org)
		m, err := c.nc.RequestWithContext(ctxTimeout(t), "$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS."+org+"."+org+"-cmd-2", nil)
		if err != nil {
			t.Fatal(err)
		}
		var r ingest.Record
		if err := json.Unmarshal(m.Data, &r); err != nil || m.Header.Get("Status") != "" || r.Organization != org || r.CommandID != org+"-cmd-2" {
			t.Errorf("status %q, record %+v (%v)", m.Header.Get("Status"), r, err)
		}
	})
}

// cannotIngestctl: ingestctl as org is refused at once, with exit 8 and the
// subject, for anything of other's, without --org, and without its inbox
// prefix.
func (e *tenantEnv) cannotIngestctl(t *testing.T, org, other string) {
	om := mappingOf(other)
	tests := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{
			name: "trigger for another organization",
			args: []string{"trigger", "--org", other, "--mapping", om, "--id", org + "-denied-1"},
			want: []string{`ingestctl: permission denied: publish to "ingest.commands.` + other + `.` + om + `"`},
		},
		{
			name: "trigger --wait for another organization",
			args: []string{"trigger", "--org", other, "--mapping", om, "--id", org + "-denied-2", "--wait"},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.`, `.ingest.events.` + other + `.` + om + `.*"`},
		},
		{
			name: "another organization's events",
			args: []string{"events", "--org", other},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.`, `.ingest.events.` + other + `.*.*"`},
		},
		{
			name: "another organization's jobs",
			args: []string{"jobs", "--org", other},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.`, `.$KV.INGEST_JOBS.` + other + `.>"`},
		},
		{
			name: "every organization's events",
			args: []string{"events"},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.`, `.ingest.events.*.*.*"`, "must give --org"},
		},
		{
			name: "every organization's jobs",
			args: []string{"jobs"},
			want: []string{`ingestctl: permission denied: publish to "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.`, `.$KV.INGEST_JOBS.>"`, "must give --org"},
		},
		{
			name: "the shared inbox prefix",
			args: []string{"jobs", "--org", org, "--inbox-prefix", "_INBOX"},
			want: []string{`ingestctl: permission denied: subscribe to "_INBOX.`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.as(t, org, tt.args...)
			if res.code != 8 {
				t.Errorf("exit %d, want 8 (permission denied)\n%s", res.code, res)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not contain %q\n%s", w, res)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

// cannotClient: what else a client of org's user could try, each on a
// connection of its own, is refused by the server as a permissions
// violation on the subject.
func (e *tenantEnv) cannotClient(t *testing.T, org, other string) {
	ctx := t.Context()
	// A consumer of someone else's on INGEST_EVENTS, and a record of
	// other's, to aim at.
	theirs := "reader-" + other
	if _, err := e.demo.js.CreateConsumer(ctx, "INGEST_EVENTS", jetstream.ConsumerConfig{
		Durable: theirs, FilterSubject: "ingest.events." + other + ".>", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	otherKey := other + "." + other + "-cmd-2"

	request := func(subject, body string) func(context.Context, *client) error {
		return func(ctx context.Context, c *client) error {
			_, err := c.nc.RequestWithContext(ctx, subject, []byte(body))
			return err
		}
	}
	subscribe := func(subject string) func(context.Context, *client) error {
		return func(ctx context.Context, c *client) error {
			sub, err := c.nc.SubscribeSync(subject)
			if err != nil {
				return err
			}
			_, err = sub.NextMsgWithContext(ctx)
			return err
		}
	}
	tests := []struct {
		name string
		// The refused publish or subscription's subject starts with
		// subject and ends with suffix (after a generated consumer name).
		subject, suffix string
		op              func(ctx context.Context, c *client) error
	}{
		// Publishing anything but its own commands.
		{
			name:    "publish another organization's command",
			subject: "ingest.commands." + other + ".DENIED",
			op: func(ctx context.Context, c *client) error {
				_, err := c.js.Publish(ctx, "ingest.commands."+other+".DENIED", nil)
				return err
			},
		},
		{
			name:    "publish an event, even its own",
			subject: "ingest.events." + org + ".XDM44.succeeded",
			op: func(ctx context.Context, c *client) error {
				_, err := c.js.Publish(ctx, "ingest.events."+org+".XDM44.succeeded", []byte(`{}`))
				return err
			},
		},
		{
			name:    "write a job record, even its own",
			subject: "$KV.INGEST_JOBS." + org + "." + org + "-cmd-1",
			op: func(ctx context.Context, c *client) error {
				_, err := c.js.Publish(ctx, "$KV.INGEST_JOBS."+org+"."+org+"-cmd-1", []byte(`{}`))
				return err
			},
		},

		// Subscribing outside its inbox.
		{name: "subscribe to its own events", subject: "ingest.events." + org + ".>", op: subscribe("ingest.events." + org + ".>")},
		{name: "subscribe to another organization's events", subject: "ingest.events." + other + ".>", op: subscribe("ingest.events." + other + ".>")},
		{name: "subscribe to the shared inbox _INBOX.>", subject: "_INBOX.>", op: subscribe("_INBOX.>")},
		{name: "subscribe to another organization's inbox", subject: "_INBOX_" + other + ".>", op: subscribe("_INBOX_" + other + ".>")},

		// Account, stream and consumer information: subjects, hence
		// every organization's mapping and command ids, and consumers'
		// filters and names.
		{name: "account info", subject: "$JS.API.INFO", op: request("$JS.API.INFO", "")},
		{name: "stream info of the commands", subject: "$JS.API.STREAM.INFO.INGEST_COMMANDS", op: request("$JS.API.STREAM.INFO.INGEST_COMMANDS", `{"subjects_filter":">"}`)},
		{name: "stream info of the events", subject: "$JS.API.STREAM.INFO.INGEST_EVENTS", op: request("$JS.API.STREAM.INFO.INGEST_EVENTS", `{"subjects_filter":">"}`)},
		{name: "stream info of the job records", subject: "$JS.API.STREAM.INFO.KV_INGEST_JOBS", op: request("$JS.API.STREAM.INFO.KV_INGEST_JOBS", `{"subjects_filter":">"}`)},
		{
			name:    "bind the bucket with the KeyValue API",
			subject: "$JS.API.STREAM.INFO.KV_INGEST_JOBS",
			op: func(ctx context.Context, c *client) error {
				_, err := c.js.KeyValue(ctx, "INGEST_JOBS")
				return err
			},
		},
		{name: "list the streams", subject: "$JS.API.STREAM.LIST", op: request("$JS.API.STREAM.LIST", "")},
		{name: "list the consumers of the events", subject: "$JS.API.CONSUMER.LIST.INGEST_EVENTS", op: request("$JS.API.CONSUMER.LIST.INGEST_EVENTS", "")},

		// Other users' consumers.
		{name: "info of another user's consumer", subject: "$JS.API.CONSUMER.INFO.INGEST_EVENTS." + theirs, op: request("$JS.API.CONSUMER.INFO.INGEST_EVENTS."+theirs, "")},
		{name: "pull from another user's consumer", subject: "$JS.API.CONSUMER.MSG.NEXT.INGEST_EVENTS." + theirs, op: request("$JS.API.CONSUMER.MSG.NEXT.INGEST_EVENTS."+theirs, `{"batch":1,"expires":1000000000}`)},
		{name: "delete another user's consumer", subject: "$JS.API.CONSUMER.DELETE.INGEST_EVENTS." + theirs, op: request("$JS.API.CONSUMER.DELETE.INGEST_EVENTS."+theirs, "")},
		{name: "pull the worker's commands", subject: "$JS.API.CONSUMER.MSG.NEXT.INGEST_COMMANDS.ingest-worker", op: request("$JS.API.CONSUMER.MSG.NEXT.INGEST_COMMANDS.ingest-worker", `{"batch":1,"expires":1000000000}`)},
		{
			name:    "pull from a consumer, even its own",
			subject: "$JS.API.CONSUMER.MSG.NEXT.INGEST_EVENTS.",
			op: func(ctx context.Context, c *client) error {
				cons, err := c.js.CreateConsumer(ctx, "INGEST_EVENTS", jetstream.ConsumerConfig{
					FilterSubject: "ingest.events." + org + ".>", AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 5 * time.Second,
				})
				if err != nil {
					return fmt.Errorf("create its own consumer: %w", err)
				}
				_, err = cons.Next(jetstream.FetchContext(ctx))
				return err
			},
		},

		// Consumers on anything but its own subjects.
		{
			name:    "read another organization's events",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.", suffix: ".ingest.events." + other + ".>",
			op: read("INGEST_EVENTS", "ingest.events."+other+".>"),
		},
		{
			name:    "read every organization's events",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.", suffix: ".ingest.events.>",
			op: read("INGEST_EVENTS", "ingest.events.>"),
		},
		{
			// Several filters cannot be in the API subject.
			name:    "read its own and another organization's events",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.",
			op: func(ctx context.Context, c *client) error {
				_, err := c.js.OrderedConsumer(ctx, "INGEST_EVENTS", jetstream.OrderedConsumerConfig{
					FilterSubjects: []string{"ingest.events." + org + ".>", "ingest.events." + other + ".>"},
				})
				return err
			},
		},
		{
			name:    "read the commands",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_COMMANDS.",
			op:      read("INGEST_COMMANDS", "ingest.commands."+org+".>"),
		},
		{
			name:    "read another organization's job records",
			subject: "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.", suffix: ".$KV.INGEST_JOBS." + other + ".>",
			op: read("KV_INGEST_JOBS", "$KV.INGEST_JOBS."+other+".>"),
		},
		{
			name:    "read every job record",
			subject: "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.", suffix: ".$KV.INGEST_JOBS.>",
			op: read("KV_INGEST_JOBS", "$KV.INGEST_JOBS.>"),
		},

		// Job records other than its own.
		{
			name:    "get another organization's job record",
			subject: "$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS." + otherKey,
			op:      request("$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS."+otherKey, ""),
		},
		{
			name:    "get a job record by sequence",
			subject: "$JS.API.DIRECT.GET.KV_INGEST_JOBS",
			op:      request("$JS.API.DIRECT.GET.KV_INGEST_JOBS", `{"seq":1}`),
		},
		{
			name:    "get a job record through the stream API",
			subject: "$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS",
			op:      request("$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS", `{"last_by_subj":"$KV.INGEST_JOBS.`+otherKey+`"}`),
		},

		// Management.
		{name: "purge the events", subject: "$JS.API.STREAM.PURGE.INGEST_EVENTS", op: request("$JS.API.STREAM.PURGE.INGEST_EVENTS", "")},
		{name: "delete the job records' stream", subject: "$JS.API.STREAM.DELETE.KV_INGEST_JOBS", op: request("$JS.API.STREAM.DELETE.KV_INGEST_JOBS", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, e.url, org, org+"-demo-password", "_INBOX_"+org)
			c.denied(t, tt.subject, tt.suffix, tt.op)
		})
	}

	// The consumer aimed at is still there.
	if _, err := e.demo.js.Consumer(ctx, "INGEST_EVENTS", theirs); err != nil {
		t.Errorf("consumer %s: %v", theirs, err)
	}
}

// read reads stream on filter as ingestctl does: an ordered push consumer,
// bound to the stream by name, delivering to the inbox.
func read(stream, filter string) func(ctx context.Context, c *client) error {
	return func(ctx context.Context, c *client) error {
		js, err := c.nc.JetStream(nats.Context(ctx))
		if err != nil {
			return err
		}
		sub, err := js.SubscribeSync(filter, nats.BindStream(stream), nats.OrderedConsumer(), nats.Context(ctx))
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		_, err = sub.NextMsgWithContext(ctx)
		return err
	}
}

// serverRefuses: requests on subjects the tenant may publish on, whose body
// asks for more than the subject names. The grants name a filter or a key
// in the API subject; the server holds the body to it.
func (e *tenantEnv) serverRefuses(t *testing.T, org, other string) {
	c := connect(t, e.url, org, org+"-demo-password", "_INBOX_"+org)

	createConsumer := func(t *testing.T, config map[string]any) {
		t.Helper()
		config["name"] = "sneaky"
		config["ack_policy"] = "none"
		config["inactive_threshold"] = int64(time.Minute)
		req, err := json.Marshal(map[string]any{"stream_name": "INGEST_EVENTS", "config": config})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.nc.RequestWithContext(ctxTimeout(t), "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.sneaky.ingest.events."+org+".>", req)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Error == nil {
			t.Fatalf("consumer created: %s", resp.Data)
		}
		t.Logf("refused: %s", r.Error.Description)
	}
	t.Run("consumer whose filter differs from the permitted subject", func(t *testing.T) {
		createConsumer(t, map[string]any{"filter_subject": "ingest.events." + other + ".>"})
	})
	t.Run("consumer with more filters than the permitted subject", func(t *testing.T) {
		createConsumer(t, map[string]any{"filter_subjects": []string{"ingest.events." + org + ".>", "ingest.events." + other + ".>"}})
	})
	t.Run("direct get of its own key asking for another message", func(t *testing.T) {
		entry, err := e.demoKV(t).Get(t.Context(), other+"."+other+"-cmd-2")
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"seq":%d}`, entry.Revision())
		m, err := c.nc.RequestWithContext(ctxTimeout(t), "$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS."+org+"."+org+"-cmd-2", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if status := m.Header.Get("Status"); status != "408" || len(m.Data) > 0 {
			t.Errorf("status %q, %d bytes (%s); want 408 and nothing", status, len(m.Data), m.Data)
		}
	})
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.LastError(); err != nil {
		t.Errorf("the requests caused: %v", err)
	}
}

func (e *tenantEnv) demoKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv, err := e.demo.js.KeyValue(t.Context(), "INGEST_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// noViolations fails when the server logged a permissions violation of
// user since mark, refused requests that a client tolerates included
// (ingestctl carries on without its job record read). Except one: an
// ordered consumer that restarts (after a missed heartbeat, say) deletes
// its old consumer, which no tenant may do; ingestctl ignores that refusal
// and the server removes the consumer when it is inactive.
func (e *tenantEnv) noViolations(t *testing.T, user string, mark int) {
	t.Helper()
	for _, v := range e.log.violations(user, mark) {
		if !strings.Contains(v, `Subject "$JS.API.CONSUMER.DELETE.`) {
			t.Errorf("server: %s", v)
		}
	}
}

// commandsStored is how many messages INGEST_COMMANDS has ever stored.
func commandsStored(t *testing.T, demo *client) uint64 {
	t.Helper()
	s, err := demo.js.Stream(t.Context(), "INGEST_COMMANDS")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

// runWorker runs the worker in process until the end of the test, as the
// user worker of compose/nats.conf, against the simulator (its default
// credential may act for both organizations). It creates the streams and
// the bucket.
func runWorker(t *testing.T, url string) {
	t.Helper()
	_, simURL := testenv.Simulator(t,
		// Two checks each, so that the jobs keep a record to list.
		campaignsim.Mapping{Org: "acme", ID: mappingOf("acme"), Script: campaignsim.Script{Records: 4, Polls: 2}},
		campaignsim.Mapping{Org: "globex", ID: mappingOf("globex"), Script: campaignsim.Script{Records: 9, Polls: 2}},
	)
	cfg := testenv.WorkerConfig(url, simURL)
	cfg.NATS.User, cfg.NATS.Password = workerUser, workerPassword
	testenv.RunWorker(t, cfg, worker.Options{})
}

// putBulk stores on c (the worker user's connection) bulk job records and events of org's
// mapping BULK, each padded to about bulkSize bytes.
func putBulk(t *testing.T, c *client, org string) {
	t.Helper()
	ctx := t.Context()
	kv, err := c.js.KeyValue(ctx, "INGEST_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", bulkSize)
	for i := range bulk {
		id := fmt.Sprintf("bulk-%d", i)
		rec, err := json.Marshal(map[string]any{
			"commandId": id, "organization": org, "mappingId": "BULK", "phase": "done", "outcome": "succeeded", "status": pad,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, org+"."+id, rec); err != nil {
			t.Fatal(err)
		}
		ev, err := json.Marshal(ingest.Event{Type: ingest.EventSucceeded, CommandID: id, Organization: org, MappingID: "BULK", Detail: pad})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.js.Publish(ctx, "ingest.events."+org+".BULK.succeeded", ev); err != nil {
			t.Fatal(err)
		}
	}
}

// flowControl counts the flow-control replies readers send, as the demo
// user sees them: a reply that the server refused is not seen.
type flowControl struct{ events, jobs atomic.Int64 }

func watchFlowControl(t *testing.T, demo *client) *flowControl {
	t.Helper()
	fc := &flowControl{}
	for subject, n := range map[string]*atomic.Int64{"$JS.FC.INGEST_EVENTS.>": &fc.events, "$JS.FC.KV_INGEST_JOBS.>": &fc.jobs} {
		if _, err := demo.nc.Subscribe(subject, func(*nats.Msg) { n.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := demo.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return fc
}

func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var lines []T
	for l := range strings.Lines(out) {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		lines = append(lines, v)
	}
	return lines
}

// The ingestctl binary, built once per run of the test binary (go build
// reuses its cache) and removed by TestMain.
var (
	ingestctlOnce sync.Once
	ingestctlDir  string
	ingestctlPath string
	ingestctlErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ingestctlDir != "" {
		os.RemoveAll(ingestctlDir)
	}
	os.Exit(code)
}

// ingestctlBinary builds ../cmd/ingestctl (the tests run in deploy/).
func ingestctlBinary(t *testing.T) string {
	t.Helper()
	ingestctlOnce.Do(func() {
		goTool, err := exec.LookPath("go") // go test puts its own go first on PATH
		if err != nil {
			ingestctlErr = fmt.Errorf("building ingestctl: %w", err)
			return
		}
		if ingestctlDir, err = os.MkdirTemp("", "deploy-ingestctl-"); err != nil {
			ingestctlErr = err
			return
		}
		bin := filepath.Join(ingestctlDir, "ingestctl")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/ingestctl")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			ingestctlErr = fmt.Errorf("go build ./cmd/ingestctl: %v\n%s", err, out)
			return
		}
		ingestctlPath = bin
	})
	if ingestctlErr != nil {
		t.Fatal(ingestctlErr)
	}
	return ingestctlPath
}

// startServer runs a server configured by file, on a free loopback port,
// with JetStream in a temporary directory and no monitoring port. Its
// warnings and errors go to the returned log.
func startServer(t *testing.T, file string) (string, *serverLog) {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	opts.Host = "127.0.0.1"
	opts.Port = -1
	opts.HTTPPort = 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	log := &serverLog{}
	s.SetLogger(log, false, false)
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return s.ClientURL(), log
}

// serverLog keeps a server's warnings and errors.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *serverLog) Noticef(string, ...any)         {}
func (l *serverLog) Debugf(string, ...any)          {}
func (l *serverLog) Tracef(string, ...any)          {}
func (l *serverLog) Warnf(format string, v ...any)  { l.add(format, v...) }
func (l *serverLog) Errorf(format string, v ...any) { l.add(format, v...) }
func (l *serverLog) Fatalf(format string, v ...any) { l.add(format, v...) }
func (l *serverLog) mark() int                      { l.mu.Lock(); defer l.mu.Unlock(); return len(l.lines) }

// violations returns the permissions violations logged since mark by
// connections of user (the server labels them "<account>/user:<user>").
func (l *serverLog) violations(user string, mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines[mark:] {
		if strings.Contains(line, " Violation ") && strings.Contains(line, `/user:`+user+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// client is a connection that records the server's asynchronous errors.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error

	mu   sync.Mutex
	seen []error
}

func connect(t *testing.T, url, user, password, inboxPrefix string) *client {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	opts := []nats.Option{
		nats.UserInfo(user, password),
		nats.Name(t.Name()),
		// A refused subscription fails NextMsg instead of staying silent.
		nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.seen = append(c.seen, err)
			c.mu.Unlock()
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	if inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(inboxPrefix))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.nc, c.js = nc, js
	return c
}

// denied runs op and requires the server to refuse a publish or a
// subscription whose subject starts with prefix and ends with suffix, and
// op to fail. It returns as soon as the refusal arrives (cancelling op's
// context), so that a refused request costs no timeout.
func (c *client) denied(t *testing.T, prefix, suffix string, op func(ctx context.Context, c *client) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxTimeout(t))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx, c) }()
	var opErr error
	opDone := false
	for {
		select {
		case err := <-c.errs:
			if !refuses(err, prefix, suffix) {
				continue
			}
			cancel()
			if !opDone {
				opErr = <-done
			}
			if opErr == nil {
				t.Errorf("the server refused %q…%q (%v) but the operation succeeded", prefix, suffix, err)
			}
			return
		case err := <-done:
			if err == nil {
				t.Fatalf("allowed; want a permissions violation on %q…%q (violations seen: %v)", prefix, suffix, c.violations())
			}
			opErr, opDone, done = err, true, nil
		case <-ctx.Done():
			t.Fatalf("no permissions violation on %q…%q (operation: %v; violations seen: %v)", prefix, suffix, opErr, c.violations())
		}
	}
}

// refuses tells whether err is the server's permissions violation for a
// publish or subscription on a subject starting with prefix and ending
// with suffix.
func refuses(err error, prefix, suffix string) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	msg := err.Error()
	for _, kind := range []string{"Publish to ", "Subscription to "} {
		_, subject, ok := strings.Cut(msg, kind+`"`)
		if !ok {
			continue
		}
		subject, _, ok = strings.Cut(subject, `"`)
		if ok && strings.HasPrefix(subject, prefix) && strings.HasSuffix(subject, suffix) {
			return true
		}
	}
	return false
}

func (c *client) violations() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.seen...)
}

// ctxTimeout bounds a wait that a correct configuration ends at once, so
// that a wrong one fails instead of hanging.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestHelmValuesSamePermissions: the restricted users of the Kubernetes
// NATS values (worker, tenants) have exactly the permissions of those of
// compose/nats.conf, which TestTenantPermissions tests. deploy/check.sh
// turns nats-values.yaml into a server configuration and passes its path
// in DEPLOY_NATS_HELM_CONF (Go has no YAML parser here).
func TestHelmValuesSamePermissions(t *testing.T) {
	helmConf := os.Getenv("DEPLOY_NATS_HELM_CONF")
	if helmConf == "" {
		t.Skip("DEPLOY_NATS_HELM_CONF is not set: run deploy/check.sh")
	}
	compose := restrictedPermissions(t, composeNATSConf)
	helm := restrictedPermissions(t, helmConf)
	for p, n := range compose {
		if helm[p] != n {
			t.Errorf("%s: %d user(s) with these permissions, nats-values.yaml: %d\n%s", composeNATSConf, n, helm[p], p)
		}
	}
	for p, n := range helm {
		if _, ok := compose[p]; !ok {
			t.Errorf("nats-values.yaml: %d user(s) with permissions that no user of %s has\n%s", n, composeNATSConf, p)
		}
	}
	if len(compose) < 1+len(tenants) {
		t.Errorf("%s: %d distinct restricted users, want the worker and %d tenants", composeNATSConf, len(compose), len(tenants))
	}
}

// restrictedPermissions returns, for the users of a server configuration
// that have permissions, their canonical form (JSON, subjects sorted) and
// how many users have it.
func restrictedPermissions(t *testing.T, file string) map[string]int {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var perms []*server.Permissions
	for _, u := range opts.Users {
		perms = append(perms, u.Permissions)
	}
	for _, u := range opts.Nkeys {
		perms = append(perms, u.Permissions)
	}
	out := map[string]int{}
	for _, p := range perms {
		if p == nil {
			continue
		}
		for _, sp := range []*server.SubjectPermission{p.Publish, p.Subscribe} {
			if sp != nil {
				slices.Sort(sp.Allow)
				slices.Sort(sp.Deny)
			}
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // keep ">" readable
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			t.Fatal(err)
		}
		out[b.String()]++
	}
	return out
}
