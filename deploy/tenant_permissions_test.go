package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The shipped demo configuration; its tenant users are the ones of
// deploy/kubernetes/nats-values.yaml (deploy/check.sh compares the two).
const composeNATSConf = "compose/nats.conf"

// tenants of compose/nats.conf: each one's user is its organization's name,
// its password "<organization>-demo-password".
var tenants = []struct{ org, other string }{
	{org: "acme", other: "globex"},
	{org: "globex", other: "acme"},
}

// TestTenantPermissions starts a NATS server from compose/nats.conf, lays out
// the streams and the job bucket as the worker user, and shows that a tenant
// user can publish its organization's commands, read its events and job
// records, and nothing of the other organization's.
func TestTenantPermissions(t *testing.T) {
	url := startServer(t, composeNATSConf)
	worker := connect(t, url, "worker", "worker-demo-password", "")
	fx := layOut(t, worker.js)

	for _, tt := range tenants {
		t.Run(tt.org+"/can", func(t *testing.T) {
			c := connect(t, url, tt.org, tt.org+"-demo-password", "_INBOX_"+tt.org)
			canPublishCommand(t, c, tt.org)
			canReadEvents(t, c, worker, tt.org, fx)
			canReadJobs(t, c, tt.org)
			// A grant that is missing shows as a violation even when the
			// call itself got by (for example deleting an ordered
			// consumer): none may have happened.
			if err := c.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := c.nc.LastError(); err != nil {
				t.Errorf("a permitted operation caused: %v", err)
			}
		})
		t.Run(tt.org+"/cannot", func(t *testing.T) {
			cannot(t, url, worker, tt.org, tt.other)
		})
	}
}

// fixture is what layOut stored: events and job records of every tenant.
type fixture struct {
	events map[string][]string // organization -> event subjects, in order
}

// layOut creates the streams and the bucket as the worker does, and stores
// two events and a job record per organization.
func layOut(t *testing.T, js jetstream.JetStream) fixture {
	t.Helper()
	ctx := t.Context()
	streams := []jetstream.StreamConfig{
		{Name: "INGEST_COMMANDS", Subjects: []string{"ingest.commands.>"}, Retention: jetstream.WorkQueuePolicy},
		{Name: "INGEST_EVENTS", Subjects: []string{"ingest.events.>"}},
	}
	for _, cfg := range streams {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("worker: create stream %s: %v", cfg.Name, err)
		}
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "INGEST_JOBS", History: 1})
	if err != nil {
		t.Fatalf("worker: create bucket: %v", err)
	}
	fx := fixture{events: map[string][]string{}}
	for _, typ := range []string{"triggered", "succeeded"} {
		for _, tt := range tenants {
			subj := fmt.Sprintf("ingest.events.%s.XDM44.%s", tt.org, typ)
			if _, err := js.Publish(ctx, subj, eventBody(tt.org, typ)); err != nil {
				t.Fatalf("worker: publish %s: %v", subj, err)
			}
			fx.events[tt.org] = append(fx.events[tt.org], subj)
		}
	}
	for _, tt := range tenants {
		if _, err := kv.Put(ctx, tt.org+".cmd-1", jobBody(tt.org)); err != nil {
			t.Fatalf("worker: put job: %v", err)
		}
	}
	return fx
}

func eventBody(org, typ string) []byte {
	return fmt.Appendf(nil, `{"type":%q,"commandId":"cmd-1","organization":%q,"mappingId":"XDM44"}`, typ, org)
}

func jobBody(org string) []byte {
	return fmt.Appendf(nil, `{"organization":%q,"commandId":"cmd-1","requestId":"3520"}`, org)
}

func canPublishCommand(t *testing.T, c *client, org string) {
	t.Helper()
	subj := "ingest.commands." + org + ".XDM44"
	ack, err := c.js.Publish(t.Context(), subj, []byte(`{"id":"cmd-2"}`), jetstream.WithMsgID("cmd-2"))
	if err != nil {
		t.Fatalf("JetStream publish on %s: %v", subj, err)
	}
	if ack.Stream != "INGEST_COMMANDS" {
		t.Errorf("PubAck from stream %q, want INGEST_COMMANDS", ack.Stream)
	}
}

func canReadEvents(t *testing.T, c *client, worker *client, org string, fx fixture) {
	t.Helper()
	ctx := t.Context()
	// Replay through an ordered consumer: exactly the organization's
	// events, in order.
	oc, err := c.js.OrderedConsumer(ctx, "INGEST_EVENTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"ingest.events." + org + ".>"},
	})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	want := fx.events[org]
	batch, err := oc.Fetch(len(want), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("ordered consumer fetch: %v", err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("ordered consumer fetch: %v", err)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ordered consumer read %q, want %q", got, want)
	}

	// Live events on a plain subscription.
	sub, err := c.nc.SubscribeSync("ingest.events." + org + ".>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	subj := "ingest.events." + org + ".XDM45.triggered"
	if _, err := worker.js.Publish(ctx, subj, eventBody(org, "triggered")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsgWithContext(ctxTimeout(t))
	if err != nil {
		t.Fatalf("live event: %v", err)
	}
	if m.Subject != subj {
		t.Errorf("live event on %s, want %s", m.Subject, subj)
	}
}

func canReadJobs(t *testing.T, c *client, org string) {
	t.Helper()
	ctx := t.Context()
	kv, err := c.js.KeyValue(ctx, "INGEST_JOBS")
	if err != nil {
		t.Fatalf("bind bucket: %v", err)
	}
	e, err := kv.Get(ctx, org+".cmd-1")
	if err != nil {
		t.Fatalf("get %s.cmd-1: %v", org, err)
	}
	if string(e.Value()) != string(jobBody(org)) {
		t.Errorf("get %s.cmd-1 = %s", org, e.Value())
	}
	w, err := kv.Watch(ctx, org+".>")
	if err != nil {
		t.Fatalf("watch %s.>: %v", org, err)
	}
	defer w.Stop()
	var keys []string
	for e := range w.Updates() {
		if e == nil { // the current values have all been delivered
			break
		}
		keys = append(keys, e.Key())
	}
	if len(keys) != 1 || keys[0] != org+".cmd-1" {
		t.Errorf("watch %s.> delivered keys %q, want [%s.cmd-1]", org, keys, org)
	}
}

// cannot shows, each time on a connection of its own, what org's user is
// refused.
func cannot(t *testing.T, url string, worker *client, org, other string) {
	password := org + "-demo-password"
	inbox := "_INBOX_" + org
	tests := []struct {
		name    string
		subject string // the refused publish or subscription starts with it
		op      func(ctx context.Context, c *client) error
	}{
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
				_, err := c.js.Publish(ctx, "ingest.events."+org+".XDM44.succeeded", eventBody(org, "succeeded"))
				return err
			},
		},
		{
			name:    "write a job record, even its own",
			subject: "$KV.INGEST_JOBS." + org + ".cmd-1",
			op: func(ctx context.Context, c *client) error {
				kv, err := c.js.KeyValue(ctx, "INGEST_JOBS")
				if err != nil {
					return err
				}
				_, err = kv.Put(ctx, org+".cmd-1", []byte(`{}`))
				return err
			},
		},
		{
			name:    "subscribe to another organization's events",
			subject: "ingest.events." + other + ".>",
			op: func(ctx context.Context, c *client) error {
				sub, err := c.nc.SubscribeSync("ingest.events." + other + ".>")
				if err != nil {
					return err
				}
				_, err = sub.NextMsgWithContext(ctx)
				return err
			},
		},
		{
			name:    "replay another organization's events",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.",
			op: func(ctx context.Context, c *client) error {
				return fetchOrdered(ctx, c, "INGEST_EVENTS", "ingest.events."+other+".>")
			},
		},
		{
			name:    "replay its own and another organization's events",
			subject: "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.",
			op: func(ctx context.Context, c *client) error {
				return fetchOrdered(ctx, c, "INGEST_EVENTS", "ingest.events."+org+".>", "ingest.events."+other+".>")
			},
		},
		{
			name:    "get another organization's job record",
			subject: "$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS." + other + ".cmd-1",
			op: func(ctx context.Context, c *client) error {
				kv, err := c.js.KeyValue(ctx, "INGEST_JOBS")
				if err != nil {
					return err
				}
				_, err = kv.Get(ctx, other+".cmd-1")
				return err
			},
		},
		{
			name:    "watch another organization's job records",
			subject: "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.",
			op: func(ctx context.Context, c *client) error {
				return watch(ctx, c, other+".>")
			},
		},
		{
			name:    "watch every job record",
			subject: "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.",
			op: func(ctx context.Context, c *client) error {
				return watch(ctx, c, ">")
			},
		},
		{
			name:    "subscribe to the shared inbox _INBOX.>",
			subject: "_INBOX.>",
			op: func(ctx context.Context, c *client) error {
				sub, err := c.nc.SubscribeSync("_INBOX.>")
				if err != nil {
					return err
				}
				_, err = sub.NextMsgWithContext(ctx)
				return err
			},
		},
		{
			name:    "subscribe to another organization's inbox",
			subject: "_INBOX_" + other + ".>",
			op: func(ctx context.Context, c *client) error {
				sub, err := c.nc.SubscribeSync("_INBOX_" + other + ".>")
				if err != nil {
					return err
				}
				_, err = sub.NextMsgWithContext(ctx)
				return err
			},
		},
		{
			name:    "purge the events",
			subject: "$JS.API.STREAM.PURGE.INGEST_EVENTS",
			op: func(ctx context.Context, c *client) error {
				_, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE.INGEST_EVENTS", nil)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, url, org, password, inbox)
			c.denied(t, tt.subject, tt.op)
		})
	}

	// The refused command did not reach the stream.
	commands, err := worker.js.Stream(t.Context(), "INGEST_COMMANDS")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := commands.GetLastMsgForSubject(t.Context(), "ingest.commands."+other+".DENIED"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("%s's command reached INGEST_COMMANDS: %v, %v", other, m, err)
	}

	// The permission names the filter in the API subject, and the server
	// refuses a consumer whose configured filter differs from it.
	t.Run("consumer filter differs from the permitted subject", func(t *testing.T) {
		c := connect(t, url, org, password, inbox)
		req, err := json.Marshal(map[string]any{
			"stream_name": "INGEST_EVENTS",
			"config": map[string]any{
				"name": "sneaky", "filter_subject": "ingest.events." + other + ".>",
				"ack_policy": "none", "inactive_threshold": int64(time.Minute),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.nc.RequestWithContext(ctxTimeout(t), "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.sneaky.ingest.events."+org+".>", req)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Error *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Error == nil {
			t.Fatalf("consumer filtered on %s's events created: %s", other, resp.Data)
		}
		t.Logf("refused: %s", r.Error.Description)
	})

	// Without its own inbox prefix a tenant gets no replies at all.
	t.Run("JetStream publish without the inbox prefix", func(t *testing.T) {
		c := connect(t, url, org, password, "")
		c.denied(t, "_INBOX.", func(ctx context.Context, c *client) error {
			_, err := c.js.Publish(ctx, "ingest.commands."+org+".XDM44", nil)
			return err
		})
	})
}

func fetchOrdered(ctx context.Context, c *client, stream string, filters ...string) error {
	oc, err := c.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		return err
	}
	_, err = oc.Next(jetstream.FetchContext(ctx))
	return err
}

func watch(ctx context.Context, c *client, keys string) error {
	kv, err := c.js.KeyValue(ctx, "INGEST_JOBS")
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, keys)
	if err != nil {
		return err
	}
	defer w.Stop()
	select {
	case <-w.Updates():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startServer runs a server configured by file, on a free loopback port,
// with JetStream in a temporary directory and no monitoring port.
func startServer(t *testing.T, file string) string {
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
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return s.ClientURL()
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
// subscription whose subject starts with subject, and op to fail. It
// returns as soon as the refusal arrives (cancelling op's context), so
// that a refused request costs no timeout.
func (c *client) denied(t *testing.T, subject string, op func(ctx context.Context, c *client) error) {
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
			if !refuses(err, subject) {
				continue
			}
			cancel()
			if !opDone {
				opErr = <-done
			}
			if opErr == nil {
				t.Errorf("the server refused %q (%v) but the operation succeeded", subject, err)
			}
			return
		case err := <-done:
			if err == nil {
				t.Fatalf("allowed; want a permissions violation on %q (violations seen: %v)", subject, c.violations())
			}
			opErr, opDone, done = err, true, nil
		case <-ctx.Done():
			t.Fatalf("no permissions violation on %q (operation: %v; violations seen: %v)", subject, opErr, c.violations())
		}
	}
}

// refuses tells whether err is the server's permissions violation for a
// publish or subscription on a subject starting with prefix.
func refuses(err error, prefix string) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	msg := err.Error()
	for _, kind := range []string{"Publish to ", "Subscription to "} {
		if strings.Contains(msg, kind+`"`+prefix) {
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
