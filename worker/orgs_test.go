package worker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/worker"
)

// twoOrgs is a harness whose simulator knows two credentials, each allowed
// on one organization, and whose worker reads them from an organizations
// file (secrets in files).
type twoOrgs struct {
	*harness
	dir string
}

func newTwoOrgs(t *testing.T, mappings ...campaignsim.Mapping) *twoOrgs {
	t.Helper()
	h := &twoOrgs{harness: newHarness(t, mappings...), dir: t.TempDir()}
	h.sim.AddClient(campaignsim.Client{ID: "acme-client", Secret: "acme-secret-1", APIKey: "acme-key", SQLRole: true, Orgs: []string{"acme"}})
	h.sim.AddClient(campaignsim.Client{ID: "globex-client", Secret: "globex-secret-1", APIKey: "globex-key", SQLRole: true, Orgs: []string{"globex"}})
	h.writeSecret("acme-ims", "acme-secret-1")
	h.writeSecret("globex-ims", "globex-secret-1")
	h.write("orgs.yaml", `organizations:
  acme:
    imsClientId: acme-client
    imsClientSecretFile: acme-ims
    apiKey: acme-key
  globex:
    imsClientId: globex-client
    imsClientSecretFile: globex-ims
    apiKey: globex-key
`)
	return h
}

func (h *twoOrgs) write(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(content), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *twoOrgs) writeSecret(name, secret string) { h.write(name, secret+"\n") }

// config points the worker at the organizations file, without a default
// credential.
func (h *twoOrgs) config(c *worker.Config) {
	c.OrgsFile = filepath.Join(h.dir, "orgs.yaml")
	c.OrgsReloadEvery = 50 * time.Millisecond
	c.IMS.ClientID, c.IMS.ClientSecret, c.APIKey = "", "", ""
}

// TestOrganizationsOwnCredentials: every API call of an organization
// carries that organization's token and X-Api-Key, and an organization
// without a credential is rejected.
func TestOrganizationsOwnCredentials(t *testing.T) {
	t.Parallel()
	h := newTwoOrgs(t,
		campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 3, Polls: 2}},
		campaignsim.Mapping{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Records: 5, Polls: 2}},
		campaignsim.Mapping{Org: "initech", ID: "XDM44", Script: campaignsim.Script{Records: 1}},
	)
	r := h.start(h.config)
	for _, org := range []string{"acme", "globex", "initech"} {
		h.publish("ingest.commands."+org+".XDM44", `{"id":"same-id"}`, nil)
	}
	got := h.events.WaitFor(t, 20*time.Second, "three terminal events", func(evs []testenv.Received) bool {
		return countTerminal(evs) == 3
	})
	want := map[string]ingest.EventType{"acme": ingest.EventSucceeded, "globex": ingest.EventSucceeded, "initech": ingest.EventRejected}
	for _, ev := range got {
		if ev.Type.Terminal() && ev.Type != want[ev.Organization] {
			t.Errorf("%s: %s %s (%s), want %s", ev.Organization, ev.Type, ev.Reason, ev.Detail, want[ev.Organization])
		}
		if ev.Organization == "initech" && ev.Reason != ingest.ReasonUnknownOrganization {
			t.Errorf("initech: reason %q, want unknown_organization", ev.Reason)
		}
	}
	for _, c := range h.sim.Calls() {
		switch {
		case c.Op == campaign.OpToken && c.Client != "acme-client" && c.Client != "globex-client":
			t.Errorf("token call for client %q", c.Client)
		case c.Op == campaign.OpToken:
		case c.Org == "acme" && (c.Client != "acme-client" || c.APIKey != "acme-key"),
			c.Org == "globex" && (c.Client != "globex-client" || c.APIKey != "globex-key"):
			t.Errorf("%s %s of %s carried client %q and key %q", c.Method, c.Op, c.Org, c.Client, c.APIKey)
		case c.Org == "initech":
			t.Errorf("initech reached the API: %s %s", c.Method, c.Path)
		}
	}
	m := r.w.Metrics()
	h.settled() // acked, so counted
	for _, tt := range []struct {
		org, outcome string
		want         float64
	}{
		{"acme", "succeeded", 1}, {"globex", "succeeded", 1}, {"_other", "rejected", 1}, {"_other", "succeeded", 0},
	} {
		if got := testutil.ToFloat64(m.Requests.WithLabelValues(tt.org, tt.outcome)); got != tt.want {
			t.Errorf("requests_total{organization=%q,outcome=%q} = %v, want %v", tt.org, tt.outcome, got, tt.want)
		}
	}
}

// TestOrganizationRevoked: a revoked credential of one organization leaves
// the other running.
func TestOrganizationRevoked(t *testing.T) {
	t.Parallel()
	h := newTwoOrgs(t,
		campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: campaignsim.Script{Records: 3}},
		campaignsim.Mapping{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Records: 5}},
	)
	h.sim.RevokeClient("globex-client")
	h.start(h.config)
	for i := range 3 {
		h.publish("ingest.commands.globex.XDM44", fmt.Sprintf(`{"id":"g-%d"}`, i), nil)
		h.publish("ingest.commands.acme.XDM44", fmt.Sprintf(`{"id":"a-%d"}`, i), nil)
	}
	for i := range 3 {
		if ev := h.events.Terminal(t, fmt.Sprintf("a-%d", i), 20*time.Second); ev.Type != ingest.EventSucceeded {
			t.Errorf("acme a-%d: %s %s, want succeeded", i, ev.Type, ev.Reason)
		}
		if ev := h.events.Terminal(t, fmt.Sprintf("g-%d", i), 20*time.Second); ev.Type != ingest.EventRejected || ev.Reason != ingest.ReasonUnauthorized {
			t.Errorf("globex g-%d: %s %s, want rejected unauthorized", i, ev.Type, ev.Reason)
		}
	}
	if n := len(h.calls("globex", "XDM44", campaign.OpTrigger)); n != 0 {
		t.Errorf("globex POSTs = %d, want 0", n)
	}
}

// TestOrganizationSecretRotation: a secret file replaced while jobs run
// takes effect for new tokens; no job is lost or duplicated.
func TestOrganizationSecretRotation(t *testing.T) {
	t.Parallel()
	h := newTwoOrgs(t,
		campaignsim.Mapping{Org: "globex", ID: "XDM44", Script: campaignsim.Script{Records: 5, Duration: campaignsim.Duration(time.Second)}},
		campaignsim.Mapping{Org: "globex", ID: "XDM45", Script: campaignsim.Script{Records: 5}},
	)
	r := h.start(h.config)
	h.publish("ingest.commands.globex.XDM44", `{"id":"before"}`, nil)
	h.events.WaitFor(t, 20*time.Second, "the first job triggered", func(evs []testenv.Received) bool { return len(evs) > 0 })

	// Rotate: the simulator accepts only the new secret for new tokens,
	// and the mounted secret file changes in place.
	h.sim.AddClient(campaignsim.Client{ID: "globex-client", Secret: "globex-secret-2", APIKey: "globex-key", SQLRole: true, Orgs: []string{"globex"}})
	h.writeSecret("globex-ims", "globex-secret-2")
	reloads := r.w.Metrics().Reloads.WithLabelValues("success")
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(reloads) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := testutil.ToFloat64(reloads); got < 1 {
		t.Fatalf("config_reloads_total{success} = %v after the secret changed", got)
	}
	h.publish("ingest.commands.globex.XDM45", `{"id":"after"}`, nil)
	for _, id := range []string{"before", "after"} {
		if ev := h.events.Terminal(t, id, 30*time.Second); ev.Type != ingest.EventSucceeded {
			t.Errorf("%s: %s %s (%s), want succeeded", id, ev.Type, ev.Reason, ev.Detail)
		}
		if n := len(h.events.For(id)); n != 2 {
			t.Errorf("%s: %d events, want triggered and one terminal", id, n)
		}
	}
	// The old secret fails for new tokens: a token call that used it
	// would have answered 401.
	tokens := h.calls("", "", campaign.OpToken)
	for _, c := range tokens {
		if c.HTTPStatus != 200 {
			t.Errorf("token call answered %d %s: the old secret was used", c.HTTPStatus, c.ErrorCode)
		}
	}
	if len(tokens) < 2 {
		t.Errorf("%d token calls, want one before and one after the rotation:%s", len(tokens), fmtCalls(tokens))
	}
	for _, m := range []string{"XDM44", "XDM45"} {
		if n := len(h.calls("globex", m, campaign.OpTrigger)); n != 1 {
			t.Errorf("POSTs of %s = %d, want 1:%s", m, n, fmtCalls(h.sim.Calls()))
		}
	}
}

// TestFairShare: an organization's backlog does not stand in front of
// another's commands. With acme's share used up by never-ending
// ingestions and hundreds of its commands queued before it, globex's
// command is triggered while acme holds no more than its share.
func TestFairShare(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			t.Parallel()
			testFairShare(t, replicas)
		})
	}
}

// testFairShare: each replica gives acme at most its share; globex's
// command, published after acme's backlog, ends while they hold it.
func testFairShare(t *testing.T, replicas int) {
	h := newTwoOrgs(t,
		campaignsim.Mapping{Org: "globex", ID: "G1", Script: campaignsim.Script{Records: 1}},
	)
	const backlog, share = 500, 5
	for i := range backlog {
		h.sim.PutMapping(campaignsim.Mapping{Org: "acme", ID: fmt.Sprintf("A%d", i), Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}})
	}
	h.write("orgs.yaml", fmt.Sprintf(`organizations:
  acme:
    imsClientId: acme-client
    imsClientSecretFile: acme-ims
    apiKey: acme-key
    maxInFlight: %d
  globex:
    imsClientId: globex-client
    imsClientSecretFile: globex-ims
    apiKey: globex-key
`, share))
	for range replicas {
		h.start(func(c *worker.Config) { h.config(c); c.MaxInFlight = 20; c.HTTPAddr = "127.0.0.1:0" })
	}
	for i := range backlog {
		h.publish(fmt.Sprintf("ingest.commands.acme.A%d", i), fmt.Sprintf(`{"id":"a-%d"}`, i), nil)
	}
	h.publish("ingest.commands.globex.G1", `{"id":"g-1"}`, nil)
	if ev := h.events.Terminal(t, "g-1", 30*time.Second); ev.Type != ingest.EventSucceeded {
		t.Errorf("globex: %s %s, want succeeded", ev.Type, ev.Reason)
	}
	acme := 0
	for _, c := range h.sim.Calls() {
		if c.Op == campaign.OpTrigger && c.Org == "acme" {
			acme++
		}
	}
	if acme > share*replicas {
		t.Errorf("acme POSTs = %d, more than its share %d on each of %d replicas", acme, share, replicas)
	}
}

func countTerminal(evs []testenv.Received) int {
	n := 0
	for _, ev := range evs {
		if ev.Type.Terminal() {
			n++
		}
	}
	return n
}
