package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/syncbuf"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/natsconn/natsconntest"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/worker"
)

// Secrets of the security tests: none may appear in a log line, an error,
// an event or a metric.
const (
	adminPassword  = "admin-Pw-5d41402abc4b2a76"
	workerPassword = "worker-Pw-7d793037a0760186"
	acmePassword   = "acme-Pw-b9ece18c950afbfa"
	imsSecret      = "ims-Secret-9f86d081884c7d65"
	wrongIMSSecret = "ims-Wrong-2c26b46b68ffc68f"
	wrongNATSPass  = "nats-Wrong-fcde2b2edba56bf4"
	imsClient      = "security-test-client"
)

// The worker's NATS permissions, as documented in SECURITY.md.
var (
	// workerPublish lets the worker create its streams, consumer and
	// bucket (INGEST_CREATE_STREAMS=true).
	workerPublish = []string{
		"$JS.API.>",
		"$KV.INGEST_JOBS.>",
		"$JS.ACK.INGEST_COMMANDS.>",
		"ingest.events.>",
	}
	// workerPublishLocked is the JetStream API a worker uses when an
	// administrator made its streams (INGEST_CREATE_STREAMS=false).
	workerPublishLocked = []string{
		"$JS.API.STREAM.INFO.INGEST_COMMANDS",
		"$JS.API.STREAM.INFO.INGEST_EVENTS",
		"$JS.API.STREAM.INFO.KV_INGEST_JOBS",
		"$JS.API.CONSUMER.INFO.INGEST_COMMANDS.ingest-worker",
		"$JS.API.CONSUMER.MSG.NEXT.INGEST_COMMANDS.ingest-worker",
		"$JS.API.DIRECT.GET.KV_INGEST_JOBS",
		"$JS.API.DIRECT.GET.KV_INGEST_JOBS.>",
		"$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS",
		"$JS.API.STREAM.MSG.GET.INGEST_COMMANDS",
		"$JS.API.STREAM.MSG.DELETE.INGEST_COMMANDS",
		"$JS.API.CONSUMER.CREATE.INGEST_EVENTS.*.ingest.events.>",
		"$JS.API.CONSUMER.MSG.NEXT.INGEST_EVENTS.*",
		"$JS.API.CONSUMER.DELETE.INGEST_EVENTS.*",
		"$JS.API.STREAM.MSG.GET.INGEST_EVENTS",
		"$KV.INGEST_JOBS.>",
		"$JS.ACK.INGEST_COMMANDS.>",
		"ingest.events.>",
	}
	workerSubscribe = []string{
		"_INBOX_worker.>",
		"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INGEST_COMMANDS.ingest-worker",
	}
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct{ syncbuf.Buffer }

// logger writes JSON lines at debug level to b.
func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// violations returns the errors logged that report a permissions
// violation.
func (b *logBuffer) violations() []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		var line struct{ Err string }
		if json.Unmarshal([]byte(l), &line) == nil && strings.Contains(line.Err, "Permissions Violation") {
			out = append(out, line.Err)
		}
	}
	return out
}

// permissions are publish and subscribe allow lists.
func permissions(pub, sub []string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// authNATS starts a JetStream server on a free port that knows only users
// (admin/adminPassword may do anything).
func authNATS(t *testing.T, users ...*server.User) *server.Server {
	t.Helper()
	users = append(users, &server.User{Username: "admin", Password: adminPassword})
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir(), LazySync: true, Config: func(o *server.Options) {
		o.Users = users
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// secureHarness is a harness whose NATS server requires a user, connected
// as admin.
func secureHarness(t *testing.T, users []*server.User, mappings ...campaignsim.Mapping) *harness {
	t.Helper()
	ns := authNATS(t, users...)
	sim, simURL := testenv.Simulator(t, mappings...)
	h := &harness{t: t, sim: sim, simURL: simURL, url: ns.ClientURL()}
	h.nc, h.js = testenv.Connect(t, h.url, nats.UserInfo("admin", adminPassword))
	h.events = testenv.RecordEvents(t, h.js)
	h.cfg = testenv.WorkerConfig(h.url, simURL)
	h.cfg.NATS.User, h.cfg.NATS.Password = "admin", adminPassword
	return h
}

// asWorker configures the worker as NATS user "worker".
func asWorker(c *worker.Config) {
	c.NATS.User, c.NATS.Password, c.NATS.InboxPrefix = "worker", workerPassword, "_INBOX_worker"
}

// startLogged starts a worker with cfg, logging to logs; it stops at the
// end of the test.
func startLogged(t *testing.T, cfg worker.Config, logs *logBuffer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(ctx, cfg, worker.Options{Logger: logs.logger()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func TestTenantIsolation(t *testing.T) {
	acme := &server.User{Username: "acme", Password: acmePassword, Permissions: permissions(
		[]string{"ingest.commands.acme.>"},
		[]string{"_INBOX_acme.>", "ingest.events.acme.>"},
	)}
	wu := &server.User{Username: "worker", Password: workerPassword, Permissions: permissions(workerPublish, workerSubscribe)}
	h := secureHarness(t, []*server.User{acme, wu},
		campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 3}},
		campaignsim.Mapping{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 3}},
	)
	var logs logBuffer
	startLogged(t, func() worker.Config { c := h.cfg; asWorker(&c); return c }(), &logs)

	asyncErrs := make(chan error, 16)
	_, acmeJS := testenv.Connect(t, h.url, nats.UserInfo("acme", acmePassword), nats.CustomInboxPrefix("_INBOX_acme"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))
	publish := func(subject, id, body string) error {
		msg := nats.NewMsg(subject)
		msg.Data = []byte(body)
		msg.Header.Set(jetstream.MsgIDHeader, id)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := acmeJS.PublishMsg(ctx, msg)
		return err
	}

	t.Run("server denies another tenant's subject", func(t *testing.T) {
		if err := publish("ingest.commands.globex.XDM44", "cross-tenant", ""); err == nil {
			t.Fatal("acme published on ingest.commands.globex.XDM44")
		}
		select {
		case err := <-asyncErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "ingest.commands.globex.XDM44") {
				t.Errorf("async error %v, want a permissions violation for ingest.commands.globex.XDM44", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("no permissions violation reported to the publisher")
		}
		if _, err := h.js.Stream(context.Background(), "INGEST_COMMANDS"); err != nil {
			t.Fatal(err)
		}
		s, _ := h.js.Stream(context.Background(), "INGEST_COMMANDS")
		if _, err := s.GetLastMsgForSubject(context.Background(), "ingest.commands.globex.>"); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("a globex command is in the stream (err %v)", err)
		}
	})

	t.Run("worker rejects a body naming another organization or mapping", func(t *testing.T) {
		bodies := map[string]string{
			"other-org":     `{"organization":"globex","mappingId":"XDM44"}`,
			"other-mapping": `{"mappingId":"XDMOTHER"}`,
			"both-folded":   `{"ORGANIZATION":"globex"}`,
		}
		for id, body := range bodies {
			if err := publish("ingest.commands.acme.XDM44", id, body); err != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
		}
		for id := range bodies {
			ev := h.events.Terminal(t, id, 10*time.Second)
			if ev.Type != ingest.EventRejected || ev.Reason != ingest.ReasonSubjectMismatch {
				t.Errorf("%s: terminal %s/%s, want rejected/subject_mismatch", id, ev.Type, ev.Reason)
			}
			if ev.Organization != "acme" || ev.MappingID != "XDM44" {
				t.Errorf("%s: event names %s/%s, want the subject's acme/XDM44", id, ev.Organization, ev.MappingID)
			}
		}
		for _, c := range h.sim.Calls() {
			if c.Op == campaign.OpTrigger || c.Op == campaign.OpStatus {
				t.Errorf("API call after rejected commands: %s %s", c.Method, c.Path)
			}
		}
	})

	t.Run("own tenant runs", func(t *testing.T) {
		if err := publish("ingest.commands.acme.XDM44", "own-tenant", `{"organization":"acme"}`); err != nil {
			t.Fatal(err)
		}
		if ev := h.events.Terminal(t, "own-tenant", 10*time.Second); ev.Type != ingest.EventSucceeded {
			t.Errorf("terminal %s/%s, want succeeded", ev.Type, ev.Reason)
		}
		if n := len(h.calls("globex", "XDM44", campaign.OpTrigger)); n != 0 {
			t.Errorf("%d POSTs for globex", n)
		}
		if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
			t.Errorf("%d POSTs for acme, want 1", n)
		}
	})
	if v := logs.violations(); len(v) > 0 {
		t.Errorf("the worker met permissions violations:\n%s", strings.Join(v, "\n"))
	}
}

// TestWorkerPermissions runs the worker as a user with exactly the
// documented permissions (and with some of them taken away, which must
// show): a command succeeds, one fails, one whose deliveries were used up
// by a dead worker is ended from the server's advisory, and the server
// reports no permissions violation.
func TestWorkerPermissions(t *testing.T) {
	without := func(list []string, drop string) []string {
		var out []string
		for _, s := range list {
			if s != drop {
				out = append(out, s)
			}
		}
		return out
	}
	tests := []struct {
		name          string
		pub, sub      []string
		create        bool
		wantViolation string // "" = none, and both commands end as expected
		stillWorks    bool   // with wantViolation: the commands end as expected all the same
		// exhausted: a command whose deliveries a dead worker used up is in
		// the stream (always when the commands must end as expected).
		exhausted bool
	}{
		{name: "documented, creating streams", pub: workerPublish, sub: workerSubscribe, create: true},
		{name: "documented, streams made by an administrator", pub: workerPublishLocked, sub: workerSubscribe},
		{name: "without the advisory", pub: workerPublishLocked, sub: without(workerSubscribe, workerSubscribe[1]),
			wantViolation: `Subscription to "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INGEST_COMMANDS.ingest-worker"`},
		{name: "without the job bucket", pub: without(workerPublishLocked, "$KV.INGEST_JOBS.>"), sub: workerSubscribe,
			wantViolation: `Publish to "$KV.INGEST_JOBS.`},
		{name: "without batched record reads", pub: without(workerPublishLocked, "$JS.API.DIRECT.GET.KV_INGEST_JOBS"), sub: workerSubscribe,
			wantViolation: `Publish to "$JS.API.DIRECT.GET.KV_INGEST_JOBS"`, stillWorks: true},
		{name: "without reads from the leader", pub: without(workerPublishLocked, "$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS"), sub: workerSubscribe,
			wantViolation: `Publish to "$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS"`, exhausted: true},
		{name: "without events", pub: without(workerPublishLocked, "ingest.events.>"), sub: workerSubscribe,
			wantViolation: `Publish to "ingest.events.acme.XDM`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := secureHarness(t, []*server.User{{Username: "worker", Password: workerPassword, Permissions: permissions(tt.pub, tt.sub)}},
				campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 2, Records: 5}},
				campaignsim.Mapping{Org: "acme", ID: "XDMFETCH", Script: campaignsim.Script{Polls: 1, Outcome: campaignsim.OutcomeFetchFailure}},
				campaignsim.Mapping{Org: "acme", ID: "XDMREDO", Script: campaignsim.Script{Records: 3}},
			)
			h.cfg.AckWait, h.cfg.MaxDeliver = 3*time.Second, 2
			// An administrator makes the topology (the worker then updates
			// it when it may).
			bound, err := layout.Setup(context.Background(), h.js, layout.Topology{AckWait: h.cfg.AckWait, MaxDeliver: h.cfg.MaxDeliver, Create: true})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantViolation == "" || tt.stillWorks || tt.exhausted {
				// A command whose deliveries a dead worker used up.
				h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "lost"})
				for range h.cfg.MaxDeliver {
					batch, err := bound.Consumer.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
					if err != nil {
						t.Fatal(err)
					}
					for range batch.Messages() {
					}
				}
				// A command whose first delivery died before anything
				// was recorded: its redelivery reads its events.
				h.publish("ingest.commands.acme.XDMREDO", "", map[string]string{"Nats-Msg-Id": "redelivered"})
				batch, err := bound.Consumer.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for range batch.Messages() {
				}
			}
			var logs logBuffer
			cfg := h.cfg
			asWorker(&cfg)
			cfg.CreateStreams = tt.create
			startLogged(t, cfg, &logs)
			h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "ok"})
			h.publish("ingest.commands.acme.XDMFETCH", "", map[string]string{"Nats-Msg-Id": "fails"})
			if tt.wantViolation != "" {
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(strings.Join(logs.violations(), "\n"), tt.wantViolation) {
					if time.Now().After(deadline) {
						t.Fatalf("no violation %q; violations:\n%s", tt.wantViolation, strings.Join(logs.violations(), "\n"))
					}
					time.Sleep(20 * time.Millisecond)
				}
				if !tt.stillWorks {
					return
				}
			}
			if ev := h.events.Terminal(t, "ok", 15*time.Second); ev.Type != ingest.EventSucceeded || ev.NumRecords != 5 {
				t.Errorf("ok: %s/%s with %d records, want succeeded with 5", ev.Type, ev.Reason, ev.NumRecords)
			}
			if ev := h.events.Terminal(t, "fails", 15*time.Second); ev.Type != ingest.EventFailed || ev.Reason != ingest.ReasonFetchFailed {
				t.Errorf("fails: %s/%s, want failed/fetch_failed", ev.Type, ev.Reason)
			}
			if ev := h.events.Terminal(t, "lost", 15*time.Second); ev.Type != ingest.EventFailed || ev.Reason != ingest.ReasonAPIUnavailable {
				t.Errorf("lost: %s/%s, want failed/api_unavailable", ev.Type, ev.Reason)
			}
			if ev := h.events.Terminal(t, "redelivered", 15*time.Second); ev.Type != ingest.EventSucceeded || ev.NumRecords != 3 {
				t.Errorf("redelivered: %s/%s with %d records, want succeeded with 3", ev.Type, ev.Reason, ev.NumRecords)
			}
			h.settled()
			if v := logs.violations(); len(v) > 0 && tt.wantViolation == "" {
				t.Errorf("permissions violations:\n%s", strings.Join(v, "\n"))
			}
		})
	}
}

// tokenRecorder serves the simulator and remembers every bearer token the
// worker sent.
type tokenRecorder struct {
	next   http.Handler
	mu     sync.Mutex
	tokens map[string]bool
}

func (r *tokenRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		r.mu.Lock()
		r.tokens[tok] = true
		r.mu.Unlock()
	}
	r.next.ServeHTTP(w, req)
}

func (r *tokenRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for tok := range r.tokens {
		out = append(out, tok)
	}
	return out
}

// TestNoSecretsInLogs runs the worker through successes and every kind of
// authentication failure (expired tokens, 401s, a wrong IMS secret, a
// wrong NATS password) with every log line captured, and searches the
// logs, the errors, the events and the metrics for the secrets and the
// access tokens.
func TestNoSecretsInLogs(t *testing.T) {
	wu := &server.User{Username: "worker", Password: workerPassword, Permissions: permissions(workerPublish, workerSubscribe)}
	ns := authNATS(t, wu)
	sim := campaignsim.New(campaignsim.Options{Clients: []campaignsim.Client{{ID: imsClient, Secret: imsSecret, SQLRole: true}}})
	for _, id := range []string{"XDM44", "XDM45", "XDM46", "XDM47"} {
		sim.PutMapping(campaignsim.Mapping{Org: "acme", ID: id, Script: campaignsim.Script{Polls: 2, Records: 1}})
	}
	rec := &tokenRecorder{next: sim, tokens: map[string]bool{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	h := &harness{t: t, sim: sim, simURL: srv.URL, url: ns.ClientURL()}
	h.nc, h.js = testenv.Connect(t, h.url, nats.UserInfo("admin", adminPassword))
	h.events = testenv.RecordEvents(t, h.js)

	dir := t.TempDir()
	writeSecret := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := testenv.WorkerConfig(h.url, srv.URL)
	cfg.IMS.ClientID, cfg.IMS.ClientSecret, cfg.IMS.ClientSecretFile = imsClient, "", writeSecret("ims", imsSecret)
	cfg.NATS.User, cfg.NATS.PasswordFile, cfg.NATS.InboxPrefix = "worker", writeSecret("nats", workerPassword), "_INBOX_worker"
	cfg.LogLevel = "debug"

	var logs logBuffer
	var errs []string
	run := func(id, mapping string) ingest.Event {
		t.Helper()
		h.publish("ingest.commands.acme."+mapping, "", map[string]string{"Nats-Msg-Id": id})
		return h.events.Terminal(t, id, 20*time.Second).Event
	}

	r := startLogged(t, cfg, &logs)
	if ev := run("first", "XDM44"); ev.Type != ingest.EventSucceeded {
		t.Errorf("first: %s/%s, want succeeded", ev.Type, ev.Reason)
	}
	sim.ExpireTokens() // the next call gets 401 401013, then a fresh token
	if ev := run("after-expiry", "XDM45"); ev.Type != ingest.EventSucceeded {
		t.Errorf("after-expiry: %s/%s, want succeeded", ev.Type, ev.Reason)
	}
	fault := sim.InjectFault(campaignsim.Fault{Op: campaign.OpTrigger, Kind: campaignsim.FaultUnauthorized})
	if ev := run("unauthorized", "XDM46"); ev.Reason != ingest.ReasonUnauthorized {
		t.Errorf("unauthorized: %s/%s, want reason unauthorized", ev.Type, ev.Reason)
	}
	sim.RemoveFault(fault)
	metricsText := scrape(t, "http://"+r.w.HTTPAddr()+"/metrics")
	r.stop(t)

	// A worker with a wrong IMS secret: the token endpoint refuses it.
	bad := cfg
	bad.IMS.ClientSecretFile = writeSecret("ims-wrong", wrongIMSSecret)
	r = startLogged(t, bad, &logs)
	if ev := run("wrong-secret", "XDM47"); ev.Reason != ingest.ReasonUnauthorized {
		t.Errorf("wrong-secret: %s/%s, want reason unauthorized", ev.Type, ev.Reason)
	}
	r.stop(t)

	// A worker with a wrong NATS password does not start.
	bad = cfg
	bad.NATS.PasswordFile = writeSecret("nats-wrong", wrongNATSPass)
	if _, err := worker.New(context.Background(), bad, worker.Options{Logger: logs.logger()}); err == nil {
		t.Error("worker started with a wrong NATS password")
	} else {
		errs = append(errs, err.Error())
		if !strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("error %q does not say that NATS refused the credential", err)
		}
	}
	// Nor with the password in the URL.
	bad = cfg
	bad.NATS.User, bad.NATS.PasswordFile = "", ""
	bad.NATS.URL = strings.Replace(h.url, "://", "://worker:"+wrongNATSPass+"@", 1)
	if _, err := worker.New(context.Background(), bad, worker.Options{Logger: logs.logger()}); err == nil {
		t.Error("worker started with a wrong NATS password in the URL")
	} else {
		errs = append(errs, err.Error())
	}

	tokens := rec.all()
	if len(tokens) < 2 {
		t.Fatalf("the worker sent %d distinct tokens, want at least 2 (before and after expiry)", len(tokens))
	}
	secrets := append([]string{imsSecret, wrongIMSSecret, workerPassword, wrongNATSPass, adminPassword}, tokens...)
	var events strings.Builder
	for _, ev := range h.events.All() {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		events.Write(b)
		if ev.Reason == ingest.ReasonUnauthorized && ev.Detail == "" {
			t.Errorf("event of %s explains nothing: the test would not see a leak in details", ev.CommandID)
		}
	}
	texts := map[string]string{
		"logs":    logs.String(),
		"errors":  strings.Join(errs, "\n"),
		"events":  events.String(),
		"metrics": metricsText,
	}
	for what, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s hold a secret (%.12s…)", what, s)
			}
			// A token's signature part alone is as good as the token.
			if parts := strings.Split(s, "."); len(parts) == 3 && strings.Contains(text, parts[2]) {
				t.Errorf("%s hold the signature of a token", what)
			}
		}
	}
	for _, id := range []string{"first", "after-expiry", "unauthorized", "wrong-secret"} {
		if !strings.Contains(logs.String(), `"commandId":"`+id+`"`) {
			t.Errorf("no log line of command %s: the test would not see a leak", id)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUsageShowsNoSecrets: `ingest-worker -h` prints the variables with
// their defaults, never their values.
func TestUsageShowsNoSecrets(t *testing.T) {
	t.Setenv("INGEST_NATS_PASSWORD", workerPassword)
	t.Setenv("INGEST_NATS_TOKEN", acmePassword)
	t.Setenv("INGEST_IMS_CLIENT_SECRET", imsSecret)
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	// The template of cmd/ingest-worker.
	if err := envconfig.Usagef("ingest", &worker.Config{}, tw, "{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	_ = tw.Flush()
	for _, s := range []string{workerPassword, acmePassword, imsSecret} {
		if strings.Contains(out.String(), s) {
			t.Errorf("usage shows a secret (%.8s…)", s)
		}
	}
	for _, v := range []string{"INGEST_NATS_PASSWORD_FILE", "INGEST_NATS_TOKEN_FILE", "INGEST_IMS_CLIENT_SECRET_FILE", "INGEST_CAMPAIGN_CA", "INGEST_NATS_CA", "INGEST_NATS_CERT", "INGEST_NATS_INBOX_PREFIX"} {
		if !strings.Contains(out.String(), v+" ") {
			t.Errorf("usage does not list %s", v)
		}
	}
}

// TestCampaignCA: the worker calls an HTTPS API only when it trusts the
// API's certificate (INGEST_CAMPAIGN_CA); TLS verification cannot be
// turned off.
func TestCampaignCA(t *testing.T) {
	sim := campaignsim.New(campaignsim.Options{})
	sim.PutMapping(campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Polls: 1, Records: 2}})
	srv := httptest.NewTLSServer(sim)
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "campaign-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.sim = sim
	https := func(c *worker.Config) {
		c.CampaignURL, c.IMS.URL = srv.URL, srv.URL+"/ims/token/v3"
		c.MaxDeliver, c.APIRetries = 2, 1
	}

	t.Run("without the CA", func(t *testing.T) {
		r := h.start(https)
		h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "untrusted"})
		ev := h.events.Terminal(t, "untrusted", 20*time.Second)
		if ev.Type != ingest.EventFailed || ev.Reason != ingest.ReasonAPIUnavailable {
			t.Errorf("terminal %s/%s, want failed/api_unavailable", ev.Type, ev.Reason)
		}
		if calls := sim.Calls(); len(calls) != 0 {
			t.Errorf("the simulator answered calls over an untrusted connection:%s", fmtCalls(calls))
		}
		r.stop(t)
	})
	t.Run("with the CA", func(t *testing.T) {
		h.start(func(c *worker.Config) { https(c); c.CampaignCA = caFile })
		h.publish("ingest.commands.acme.XDM44", "", map[string]string{"Nats-Msg-Id": "trusted"})
		if ev := h.events.Terminal(t, "trusted", 20*time.Second); ev.Type != ingest.EventSucceeded {
			t.Errorf("terminal %s/%s, want succeeded", ev.Type, ev.Reason)
		}
		if n := len(h.calls("acme", "XDM44", campaign.OpTrigger)); n != 1 {
			t.Errorf("%d POSTs, want 1", n)
		}
	})
	t.Run("CA file errors", func(t *testing.T) {
		for _, ca := range []string{"/nonexistent/ca.pem", natsconntest.WriteFile(t, "not-pem", "hello")} {
			cfg := h.cfg
			https(&cfg)
			cfg.CampaignCA = ca
			if _, err := worker.New(context.Background(), cfg, worker.Options{}); err == nil || !strings.Contains(err.Error(), "INGEST_CAMPAIGN_CA") {
				t.Errorf("CA %s: New: %v, want an INGEST_CAMPAIGN_CA error", ca, err)
			}
		}
	})
}

// TestHTTPServer: the metrics server listens where configured, and
// /debug/pprof/ exists only with INGEST_PPROF=true.
func TestHTTPServer(t *testing.T) {
	if d := worker.DefaultConfig(); d.Pprof {
		t.Error("pprof is on by default")
	}
	tests := []struct {
		name  string
		pprof bool
		want  int
	}{
		{"pprof off by default", false, http.StatusNotFound},
		{"pprof on when asked", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.start(func(c *worker.Config) { c.Pprof = tt.pprof; c.HTTPAddr = "127.0.0.1:0" })
			if !strings.HasPrefix(r.w.HTTPAddr(), "127.0.0.1:") {
				t.Errorf("listens on %s, want 127.0.0.1", r.w.HTTPAddr())
			}
			resp, err := http.Get("http://" + r.w.HTTPAddr() + "/debug/pprof/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("/debug/pprof/: %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
