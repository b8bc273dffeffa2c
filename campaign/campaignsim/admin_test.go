package campaignsim

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/internal/syncbuf"
)

func TestCallLog(t *testing.T) {
	e := newEnv(t, Options{}, append(testMappings(), Mapping{Org: "acme", ID: "Test Doc/1"})...)
	e.trigger("acme", "XDMFETCH")
	e.clock.Advance(time.Second)
	e.status("acme", "XDMFETCH", "3520")
	e.trigger("acme", "Test Doc/1")
	e.do(http.MethodPost, ingestPath("acme", "XDM44"), authHeader("nope", e.token), "")
	e.do(http.MethodGet, "/nope", nil, "")

	want := []Call{
		{Time: epoch, Method: "POST", Path: "/acme/campaign/dataIngestion/xdmIngestion/XDMFETCH/ingest", Op: campaign.OpTrigger,
			Org: "acme", Mapping: "XDMFETCH", RequestID: "3520", Client: DemoClientID, APIKey: DemoClientID, HTTPStatus: 200, Status: "Success"},
		{Time: epoch.Add(time.Second), Method: "GET", Path: "/acme/campaign/dataIngestion/xdmIngestion/XDMFETCH/ingest", Op: campaign.OpStatus,
			Org: "acme", Mapping: "XDMFETCH", RequestID: "3520", Client: DemoClientID, APIKey: DemoClientID, HTTPStatus: 200, Status: "Failed", ErrorCode: "ACP-880056"},
		{Time: epoch.Add(time.Second), Method: "POST", Path: "/acme/campaign/dataIngestion/xdmIngestion/Test%20Doc%2F1/ingest", Op: campaign.OpTrigger,
			Org: "acme", Mapping: "Test Doc/1", RequestID: "3521", Client: DemoClientID, APIKey: DemoClientID, HTTPStatus: 200, Status: "Success"},
		{Time: epoch.Add(time.Second), Method: "POST", Path: "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest", Op: campaign.OpTrigger,
			Org: "acme", Mapping: "XDM44", Client: DemoClientID, APIKey: "nope", HTTPStatus: 403, ErrorCode: "403003"},
		{Time: epoch.Add(time.Second), Method: "GET", Path: "/nope", HTTPStatus: 404},
	}
	got := e.sim.Calls()
	if len(got) != len(want) {
		t.Fatalf("%d calls logged, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	t.Run("http_filters", func(t *testing.T) {
		tests := []struct {
			query   string
			wantLen int
		}{
			{"", 5},
			{"?op=trigger", 3},
			{"?mapping=XDMFETCH", 2},
			{"?mapping=Test+Doc%2F1", 1},
			{"?org=acme&op=status", 1},
			{"?requestId=3521", 1},
			{"?org=globex", 0},
		}
		for _, tt := range tests {
			var calls []Call
			adminJSON(t, e, "GET", "/_sim/calls"+tt.query, "", 200, &calls)
			if len(calls) != tt.wantLen {
				t.Errorf("GET /_sim/calls%s: %d calls, want %d", tt.query, len(calls), tt.wantLen)
			}
		}
	})
	t.Run("reset", func(t *testing.T) {
		adminJSON(t, e, "DELETE", "/_sim/calls", "", 204, nil)
		if n := len(e.sim.Calls()); n != 0 {
			t.Errorf("%d calls after DELETE /_sim/calls, want 0", n)
		}
	})
}

func TestCallLogLimit(t *testing.T) {
	e := newEnv(t, Options{CallLogLimit: 3}, testMappings()...)
	for i := range 5 {
		e.status("acme", "XDM44", string(rune('1'+i)))
	}
	var ids []string
	for _, c := range e.sim.Calls() {
		ids = append(ids, c.RequestID)
	}
	if strings.Join(ids, ",") != "3,4,5" {
		t.Errorf("call log keeps requests %v, want the last three [3 4 5] in order", ids)
	}
}

// adminJSON calls the admin API, checks the HTTP code and decodes the body
// into v (if not nil).
func adminJSON(t *testing.T, e *env, method, path, body string, wantCode int, v any) {
	t.Helper()
	r := e.do(method, path, http.Header{"Content-Type": {"application/json"}}, body)
	if r.code != wantCode {
		t.Fatalf("%s %s: HTTP %d, want %d; body %s", method, path, r.code, wantCode, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, Options{})

	// Mappings: put two, list, use, delete.
	var put []Mapping
	adminJSON(t, e, "POST", "/_sim/mappings", `[
		{"organization":"acme","mappingId":"XDM95","script":{"outcome":"fetch_failure","polls":2}},
		{"organization":"acme","mappingId":"XDMDRAFT","state":"not_published"}]`, 200, &put)
	adminJSON(t, e, "POST", "/_sim/mappings", `{"organization":"acme","mappingId":"XDM44","script":{"records":15,"duration":"3s"}}`, 200, nil)
	var list []Mapping
	adminJSON(t, e, "GET", "/_sim/mappings", "", 200, &list)
	wantList := []Mapping{
		{Org: "acme", ID: "XDM44", Script: Script{Records: 15, Duration: Duration(3 * time.Second)}},
		{Org: "acme", ID: "XDM95", Script: Script{Outcome: OutcomeFetchFailure, Polls: 2}},
		{Org: "acme", ID: "XDMDRAFT", State: StateNotPublished},
	}
	if len(list) != len(wantList) {
		t.Fatalf("GET /_sim/mappings: %+v, want %+v", list, wantList)
	}
	for i := range wantList {
		if list[i] != wantList[i] {
			t.Errorf("mapping %d: %+v, want %+v", i, list[i], wantList[i])
		}
	}
	if m, ok := e.sim.Mapping("acme", "XDM95"); !ok || m.Script.Polls != 2 {
		t.Errorf("Mapping(acme, XDM95) = %+v, %v", m, ok)
	}
	e.trigger("acme", "XDM95")
	adminJSON(t, e, "DELETE", "/_sim/mappings/acme/XDM95", "", 204, nil)
	adminJSON(t, e, "DELETE", "/_sim/mappings/acme/XDM95", "", 404, nil)
	var resp struct{ Info string }
	json.Unmarshal(e.trigger("acme", "XDM95").body, &resp)
	if !strings.HasSuffix(resp.Info, "XDM95 is not published") {
		t.Errorf("POST of a deleted mapping: info %q, want not published", resp.Info)
	}

	// Requests: the request of the deleted mapping is still there.
	var reqs []Request
	adminJSON(t, e, "GET", "/_sim/requests", "", 200, &reqs)
	if len(reqs) != 1 || reqs[0].RequestID != "3520" || reqs[0].Mapping != "XDM95" || reqs[0].Status != inProgress {
		t.Errorf("GET /_sim/requests: %+v, want request 3520 of XDM95 In Progress", reqs)
	}

	// Faults: inject two, list, remove one, clear.
	var injected []Fault
	adminJSON(t, e, "POST", "/_sim/faults", `[{"op":"status","kind":"throttle","retryAfter":"2s","count":1},
		{"op":"trigger","kind":"error","code":502}]`, 200, &injected)
	if len(injected) != 2 || injected[0].ID == 0 || injected[1].ID == injected[0].ID {
		t.Fatalf("POST /_sim/faults: %+v, want two faults with ids", injected)
	}
	if r := e.status("acme", "XDM95", "3520"); r.code != 429 || r.header.Get("Retry-After") != "2" {
		t.Errorf("status under a throttle fault: HTTP %d Retry-After %q", r.code, r.header.Get("Retry-After"))
	}
	var faults []Fault
	adminJSON(t, e, "GET", "/_sim/faults", "", 200, &faults)
	if len(faults) != 1 || faults[0].Code != 502 {
		t.Errorf("GET /_sim/faults after the counted one was used: %+v, want the 502 fault only", faults)
	}
	adminJSON(t, e, "DELETE", "/_sim/faults/"+itoa(injected[1].ID), "", 204, nil)
	adminJSON(t, e, "DELETE", "/_sim/faults/"+itoa(injected[1].ID), "", 404, nil)
	adminJSON(t, e, "POST", "/_sim/faults", `{"kind":"error"}`, 200, nil)
	adminJSON(t, e, "DELETE", "/_sim/faults", "", 204, nil)
	if r := e.trigger("acme", "XDM44"); r.code != 200 {
		t.Errorf("POST after the faults were cleared: HTTP %d", r.code)
	}

	// Clients and tokens.
	adminJSON(t, e, "POST", "/_sim/clients", `{"id":"etl","secret":"etl-secret","sqlRole":true}`, 204, nil)
	tok := e.issue("etl")
	if r := e.do("POST", ingestPath("acme", "XDMDRAFT"), authHeader("etl", tok), ""); r.code != 200 {
		t.Errorf("POST as a client added over HTTP: HTTP %d %s", r.code, r.body)
	}
	adminJSON(t, e, "POST", "/_sim/tokens/expire", "", 204, nil)
	if r := e.do("POST", ingestPath("acme", "XDMDRAFT"), authHeader("etl", tok), ""); r.code != 401 {
		t.Errorf("POST after /_sim/tokens/expire: HTTP %d, want 401", r.code)
	}
	tok = e.issue("etl")
	adminJSON(t, e, "POST", "/_sim/clients/etl/revoke", "", 204, nil)
	adminJSON(t, e, "POST", "/_sim/clients/nobody/revoke", "", 404, nil)
	if r := e.do("POST", ingestPath("acme", "XDMDRAFT"), authHeader("etl", tok), ""); r.code != 401 {
		t.Errorf("POST after /_sim/clients/etl/revoke: HTTP %d, want 401", r.code)
	}
	if _, err := e.sim.IssueToken("etl"); err == nil {
		t.Errorf("IssueToken of a revoked client: no error")
	}
	adminJSON(t, e, "POST", "/_sim/clients", `{"id":"etl","secret":"etl-secret","sqlRole":true}`, 204, nil)
	if r := e.do("POST", ingestPath("acme", "XDMDRAFT"), authHeader("etl", e.issue("etl")), ""); r.code != 200 {
		t.Errorf("POST as a client enabled again: HTTP %d %s", r.code, r.body)
	}
	adminJSON(t, e, "POST", "/_sim/clients", `{"id":"etl","secret":"etl-secret","disabled":true}`, 204, nil)
	if _, err := e.sim.IssueToken("etl"); err == nil {
		t.Errorf("IssueToken of a client added as disabled: no error")
	}

	// Bad admin requests.
	tests := []struct{ name, method, path, body string }{
		{"mapping_unknown_field", "POST", "/_sim/mappings", `{"organization":"acme","mapping":"X"}`},
		{"mapping_bad_outcome", "POST", "/_sim/mappings", `{"organization":"acme","mappingId":"X","script":{"outcome":"maybe"}}`},
		{"mapping_bad_duration", "POST", "/_sim/mappings", `{"organization":"acme","mappingId":"X","script":{"duration":"soon"}}`},
		{"mapping_no_id", "POST", "/_sim/mappings", `{"organization":"acme"}`},
		{"mapping_empty", "POST", "/_sim/mappings", ``},
		{"fault_bad_kind", "POST", "/_sim/faults", `{"kind":"explode"}`},
		{"client_no_secret", "POST", "/_sim/clients", `{"id":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adminJSON(t, e, tt.method, tt.path, tt.body, 400, nil)
		})
	}
	if _, ok := e.sim.Mapping("acme", "X"); ok {
		t.Errorf("a rejected mapping was stored")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestPreload(t *testing.T) {
	t.Run("example_file", func(t *testing.T) {
		e := newEnv(t, Options{})
		if err := e.sim.LoadFile(filepath.Join("..", "..", "cmd", "campaign-sim", "example-preload.json")); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.sim.Mapping("globex", "XDM95"); !ok {
			t.Errorf("mapping globex/XDM95 of the example file not loaded")
		}
		if n := len(e.sim.Faults()); n != 2 {
			t.Errorf("%d faults loaded, want 2", n)
		}
		tok := e.issue("etl-prod")
		if r := e.do("POST", ingestPath("globex", "TestDoc"), authHeader("etl-prod-key", tok), ""); r.code != 200 {
			t.Errorf("POST as the example's client: HTTP %d %s", r.code, r.body)
		}
		if r := e.do("POST", ingestPath("acme", "XDM44"), authHeader("etl-prod-key", tok), ""); r.code != 403 {
			t.Errorf("POST as the example's client in an org it may not use: HTTP %d, want 403", r.code)
		}
		initech := e.issue("initech-etl")
		if r := e.do("POST", ingestPath("initech", "XDM44"), authHeader("initech-key", initech), ""); r.code != 200 {
			t.Errorf("POST as the example's initech client: HTTP %d %s", r.code, r.body)
		}
		if r := e.do("POST", ingestPath("globex", "TestDoc"), authHeader("initech-key", initech), ""); r.code != 403 {
			t.Errorf("POST as the initech client for globex: HTTP %d, want 403", r.code)
		}
		if _, err := e.sim.IssueToken("retired-etl"); err == nil {
			t.Errorf("the example's disabled client got a token")
		}
	})
	t.Run("invalid_adds_nothing", func(t *testing.T) {
		e := newEnv(t, Options{})
		path := filepath.Join(t.TempDir(), "preload.json")
		doc := `{"mappings":[{"organization":"acme","mappingId":"OK"},{"organization":"acme","mappingId":"BAD","state":"maybe"}]}`
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		err := e.sim.LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), "maybe") {
			t.Errorf("LoadFile: %v, want an error naming the bad state", err)
		}
		if _, ok := e.sim.Mapping("acme", "OK"); ok {
			t.Errorf("a valid mapping of an invalid preload was added")
		}
	})
	t.Run("unknown_top_level_field", func(t *testing.T) {
		if err := New(Options{}).Load(strings.NewReader(`{"mapings":[]}`)); err == nil {
			t.Errorf("Load accepted a misspelt section")
		}
	})
	t.Run("missing_file", func(t *testing.T) {
		if err := New(Options{}).LoadFile(filepath.Join(t.TempDir(), "nope.json")); err == nil {
			t.Errorf("LoadFile of a missing file: no error")
		}
	})
}

func TestUnknownRoute(t *testing.T) {
	var logs syncbuf.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, testMappings()...)
	tests := []struct{ method, path string }{
		{"GET", "/"},
		{"PUT", "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest"},
		{"DELETE", "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest"},
		{"POST", "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest/"},
		{"GET", "/ims/token/v3"},
		{"POST", "/ims/exchange/jwt"},
		{"GET", "/_sim/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.do(tt.method, tt.path, e.auth(), "")
			if r.code != 404 {
				t.Errorf("HTTP %d, want 404", r.code)
			}
			var body unknownRouteBody
			if err := json.Unmarshal(r.body, &body); err != nil || body.Method != tt.method || body.Path != tt.path {
				t.Errorf("body %s (%v): want it to name %s %s", r.body, err, tt.method, tt.path)
			}
			if line := `"msg":"campaign-sim: unknown route","method":"` + tt.method + `","path":"` + tt.path + `"`; !strings.Contains(logs.String(), line) {
				t.Errorf("no error log line with %s in:\n%s", line, logs.String())
			}
		})
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("unknown routes not logged at ERROR level:\n%s", logs.String())
	}
}
