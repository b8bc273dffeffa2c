package deploy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

const composePreload = "compose/campaign-sim.json"

// TestComposeSimulatorPreload: the compose demo's simulator accepts
// campaign-sim.json (its loader refuses unknown fields), and each of the
// file's organization credentials may trigger its own organization's
// mappings and not another's. (deploy/check.sh checks that the worker's
// organizations file and secrets name these credentials.)
func TestComposeSimulatorPreload(t *testing.T) {
	// As cmd/campaign-sim runs it in compose: -demo (acme's demo
	// mappings), then -preload.
	sim := campaignsim.New(campaignsim.Options{})
	for _, m := range campaignsim.DemoMappings("acme") {
		sim.PutMapping(m)
	}
	if err := sim.LoadFile(composePreload); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)

	b, err := os.ReadFile(composePreload)
	if err != nil {
		t.Fatal(err)
	}
	var preload campaignsim.Preload
	if err := json.Unmarshal(b, &preload); err != nil {
		t.Fatal(err)
	}
	// A ready mapping of each organization.
	mapping := map[string]string{"acme": "XDM44"}
	for _, m := range preload.Mappings {
		if _, ok := mapping[m.Org]; !ok && (m.State == "" || m.State == campaignsim.StateReady) {
			mapping[m.Org] = m.ID
		}
	}
	orgs := 0
	for _, c := range preload.Clients {
		if len(c.Orgs) != 1 {
			t.Errorf("client %s may use organizations %q; the demo gives each organization a credential of its own", c.ID, c.Orgs)
			continue
		}
		token := imsToken(t, srv.URL, c.ID, c.Secret)
		for org, id := range mapping {
			allowed := false
			for _, o := range c.Orgs {
				allowed = allowed || o == org
			}
			code := trigger(t, srv.URL, token, c.APIKey, org, id)
			switch {
			case allowed && code != http.StatusOK:
				t.Errorf("client %s: trigger %s/%s answered %d, want 200", c.ID, org, id, code)
			case !allowed && code < 400:
				t.Errorf("client %s: trigger %s/%s of another organization answered %d", c.ID, org, id, code)
			}
			if allowed {
				orgs++
			}
		}
	}
	if orgs < 2 {
		t.Errorf("%d organizations have a credential of their own, want acme and globex at least", orgs)
	}
}

func imsToken(t *testing.T, base, id, secret string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/ims/token/v3", url.Values{
		"client_id": {id}, "client_secret": {secret},
		"grant_type": {"client_credentials"}, "scope": {"campaign_sdk"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("client %s: no token (%s, %v)", id, resp.Status, err)
	}
	return tok.AccessToken
}

func trigger(t *testing.T, base, token, apiKey, org, mapping string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/"+org+"/campaign/dataIngestion/xdmIngestion/"+mapping+"/ingest", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Api-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
