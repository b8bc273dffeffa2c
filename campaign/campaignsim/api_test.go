package campaignsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

const testBatchID = "a27d800531ac4d95945a2bc234eb0d86"

// testMappings cover every outcome and state; their requests end at once.
func testMappings() []Mapping {
	return []Mapping{
		{Org: "acme", ID: "XDM44", Script: Script{Outcome: OutcomeSuccess, Records: 15}},
		{Org: "acme", ID: "XDMFETCH", Script: Script{Outcome: OutcomeFetchFailure}},
		{Org: "acme", ID: "XDMUPLOAD", Script: Script{Outcome: OutcomeUploadFailure, BatchID: testBatchID}},
		{Org: "acme", ID: "XDMABORT", Script: Script{Outcome: OutcomeAborted}},
		{Org: "acme", ID: "XDMNEVER", Script: Script{Outcome: OutcomeNever}},
		{Org: "acme", ID: "XDMRUNNING", State: StateNotStopped},
		{Org: "acme", ID: "XDMDRAFT", State: StateNotPublished},
		{Org: "globex", ID: "XDM95", Script: Script{Records: 7}},
	}
}

// triggerCase is a row of the documented POST table (plus the simulator's
// answer for an unknown organization).
type triggerCase struct {
	name          string
	org, mapping  string
	before        int // POSTs of the same mapping before the one under test
	wantCode      int
	wantStatus    campaign.Status
	wantRequestID campaign.RequestID
	info          string // the documented info text (a format of the mapping id); "" for errors
}

func triggerCases() []triggerCase {
	return []triggerCase{
		{name: "accepted", org: "acme", mapping: "XDM44", wantCode: 200,
			wantStatus: campaign.StatusSuccess, wantRequestID: "3520", info: campaign.InfoTriggerAccepted},
		{name: "in_progress", org: "acme", mapping: "XDMNEVER", before: 1, wantCode: 200,
			wantStatus: campaign.StatusInProgress, wantRequestID: "3520", info: campaign.InfoTriggerInProgress},
		{name: "not_stopped", org: "acme", mapping: "XDMRUNNING", wantCode: 200,
			wantStatus: campaign.StatusFailed, info: campaign.InfoTriggerNotStopped},
		{name: "not_published", org: "acme", mapping: "XDMDRAFT", wantCode: 200,
			wantStatus: campaign.StatusFailed, info: campaign.InfoTriggerNotPublished},
		{name: "unknown_mapping", org: "acme", mapping: "XDMNOPE", wantCode: 200,
			wantStatus: campaign.StatusFailed, info: campaign.InfoTriggerNotPublished},
		{name: "unknown_org", org: "nope", mapping: "XDM44", wantCode: 500},
	}
}

func TestTrigger(t *testing.T) {
	for _, tt := range triggerCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, testMappings()...)
			for range tt.before {
				e.trigger(tt.org, tt.mapping)
			}
			got := e.trigger(tt.org, tt.mapping)
			if got.code != tt.wantCode {
				t.Errorf("HTTP %d, want %d; body %s", got.code, tt.wantCode, got.body)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			golden(t, "trigger/"+tt.name+".json", got.body)
			if tt.info == "" {
				return
			}
			var resp campaign.TriggerResponse
			if err := json.Unmarshal(got.body, &resp); err != nil {
				t.Fatalf("decode %s: %v", got.body, err)
			}
			if resp.Status != tt.wantStatus || resp.RequestID != tt.wantRequestID {
				t.Errorf("status %q requestId %q, want %q %q", resp.Status, resp.RequestID, tt.wantStatus, tt.wantRequestID)
			}
		})
	}
}

// statusCase is a row of the documented GET table (plus the simulator's
// answers to bad requests).
type statusCase struct {
	name        string
	trigger     string // mapping of org acme to POST first ("" for none)
	org         string // of the GET; default acme
	mapping     string // of the GET; default trigger
	query, body string // how the GET names the request
	wantCode    int
	wantStatus  campaign.Status
	wantRecords int64
	wantBatchID string
	info        string // the documented info text; "" for errors
}

func statusCases() []statusCase {
	const q = "?requestId=3520"
	return []statusCase{
		{name: "success", trigger: "XDM44", query: q, wantCode: 200,
			wantStatus: campaign.StatusSuccess, wantRecords: 15, info: campaign.InfoStatusSuccess},
		{name: "fetch_failure", trigger: "XDMFETCH", query: q, wantCode: 200,
			wantStatus: campaign.StatusFailed, info: campaign.InfoStatusFetchFailed},
		{name: "upload_failure", trigger: "XDMUPLOAD", query: q, wantCode: 200,
			wantStatus: campaign.StatusFailed, wantBatchID: testBatchID, info: campaign.InfoStatusUploadFail},
		{name: "aborted", trigger: "XDMABORT", query: q, wantCode: 200,
			wantStatus: campaign.StatusAborted, info: campaign.InfoStatusAborted},
		{name: "in_progress", trigger: "XDMNEVER", query: q, wantCode: 200,
			wantStatus: campaign.StatusInProgress, info: campaign.InfoStatusInProgress},
		{name: "body_number", trigger: "XDM44", body: `{"requestId": 3520}`, wantCode: 200,
			wantStatus: campaign.StatusSuccess, wantRecords: 15, info: campaign.InfoStatusSuccess},
		{name: "body_string", trigger: "XDM44", body: `{"requestId":"3520"}`, wantCode: 200,
			wantStatus: campaign.StatusSuccess, wantRecords: 15, info: campaign.InfoStatusSuccess},
		{name: "body_doc_form", trigger: "XDM44", body: `{"requestId"="3520"}`, wantCode: 200,
			wantStatus: campaign.StatusSuccess, wantRecords: 15, info: campaign.InfoStatusSuccess},
		{name: "unknown_request", trigger: "XDM44", query: "?requestId=9999", wantCode: 404},
		{name: "non_numeric_request", trigger: "XDM44", query: "?requestId=abc", wantCode: 404},
		{name: "other_mapping", trigger: "XDM44", mapping: "XDMFETCH", query: q, wantCode: 404},
		{name: "missing_request_id", trigger: "XDM44", wantCode: 400},
		{name: "unknown_org", org: "nope", mapping: "XDM44", query: q, wantCode: 500},
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range statusCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, testMappings()...)
			if tt.trigger != "" {
				if got := e.trigger("acme", tt.trigger); got.code != 200 {
					t.Fatalf("trigger: HTTP %d %s", got.code, got.body)
				}
			}
			org, mapping := cmp.Or(tt.org, "acme"), cmp.Or(tt.mapping, tt.trigger)
			got := e.do(http.MethodGet, ingestPath(org, mapping)+tt.query, e.auth(), tt.body)
			if got.code != tt.wantCode {
				t.Errorf("HTTP %d, want %d; body %s", got.code, tt.wantCode, got.body)
			}
			golden(t, "status/"+tt.name+".json", got.body)
			if tt.info == "" {
				return
			}
			var resp campaign.StatusResponse
			if err := json.Unmarshal(got.body, &resp); err != nil {
				t.Fatalf("decode %s: %v", got.body, err)
			}
			want := campaign.StatusResponse{BatchID: tt.wantBatchID, Info: fmt.Sprintf(tt.info, mapping),
				NumRecords: tt.wantRecords, RequestID: "3520", Status: tt.wantStatus}
			if resp != want {
				t.Errorf("answer %+v\nwant   %+v", resp, want)
			}
		})
	}
}

// TestGoldenInfoTexts checks the info texts of the golden bodies against the
// documented texts, so that -update cannot bless a wrong text.
func TestGoldenInfoTexts(t *testing.T) {
	type check struct{ file, mapping, format string }
	var checks []check
	for _, tt := range triggerCases() {
		if tt.info != "" {
			checks = append(checks, check{"trigger/" + tt.name + ".json", tt.mapping, tt.info})
		}
	}
	for _, tt := range statusCases() {
		if tt.info != "" {
			checks = append(checks, check{"status/" + tt.name + ".json", cmp.Or(tt.mapping, tt.trigger), tt.info})
		}
	}
	// The documented quirks, spelt out once more: a trailing space after a
	// success, none while in progress.
	if campaign.InfoStatusSuccess != "Mapping Id: %s. " || campaign.InfoStatusInProgress != "Mapping Id: %s." {
		t.Errorf("campaign.InfoStatus* lost the documented trailing-space quirk")
	}
	for _, c := range checks {
		b := readGolden(t, c.file)
		var body struct {
			Info *string `json:"info"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Info == nil {
			t.Errorf("%s: no info field (%v): %s", c.file, err, b)
			continue
		}
		if want := fmt.Sprintf(c.format, c.mapping); *body.Info != want {
			t.Errorf("%s: info %q, want the documented %q", c.file, *body.Info, want)
		}
	}
}

// errorCase is a row of the documented error table (gateway, IMS and
// Campaign errors) or of the simulator's own.
type errorCase struct {
	name          string
	setup         func(e *env) // optional
	method, path  string       // default: POST …/acme/…/XDM44/ingest
	header        func(e *env) http.Header
	form          url.Values // for the token endpoint
	wantCode      int
	wantErrorCode string // error_code, or the IMS error
	wantRetry     string // Retry-After
}

func errorCases() []errorCase {
	key := func(k string) func(e *env) http.Header {
		return func(e *env) http.Header { return authHeader(k, e.token) }
	}
	bearer := func(v string) func(e *env) http.Header {
		return func(e *env) http.Header {
			h := authHeader(DemoClientID, "")
			h.Set("Authorization", v)
			return h
		}
	}
	clientOf := func(id string) func(e *env) http.Header {
		return func(e *env) http.Header { return authHeader(id, e.issue(id)) }
	}
	fault := func(f Fault) func(e *env) { return func(e *env) { e.sim.InjectFault(f) } }
	tokenForm := func(id, secret, grant string) url.Values {
		return url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {grant}, "scope": {"campaign_sdk"}}
	}
	return []errorCase{
		{name: "api_key_missing", header: key(""), wantCode: 403, wantErrorCode: "403000"},
		{name: "api_key_invalid", header: key("nope"), wantCode: 403, wantErrorCode: "403003"},
		{name: "token_missing", header: bearer(""), wantCode: 403, wantErrorCode: "403010"},
		{name: "token_empty", header: bearer("Bearer "), wantCode: 403, wantErrorCode: "403010"},
		{name: "token_not_bearer", header: bearer("Basic Y2xpZW50OnNlY3JldA=="), wantCode: 403, wantErrorCode: "403010"},
		{name: "token_unknown", header: bearer("Bearer eyJnot.a.token"), wantCode: 401, wantErrorCode: "401013"},
		{name: "token_expired", setup: func(e *env) { e.clock.Advance(24 * time.Hour) },
			wantCode: 401, wantErrorCode: "401013"},
		{name: "token_expired_by_admin", setup: func(e *env) { e.sim.ExpireTokens() },
			wantCode: 401, wantErrorCode: "401013"},
		{name: "token_of_other_client", header: func(e *env) http.Header { return authHeader(DemoClientID, e.issue("other")) },
			wantCode: 403, wantErrorCode: "403020"},
		{name: "profile_invalid", path: ingestPath("globex", "XDM95"), header: clientOf("acme-only"),
			wantCode: 403, wantErrorCode: "403023"},
		{name: "no_sql_role", header: clientOf("no-sql"), wantCode: 403},
		{name: "bad_uri", path: ingestPath("nope", "XDM44"), wantCode: 500},
		{name: "throttled", setup: fault(Fault{Op: campaign.OpTrigger, Kind: FaultThrottle, RetryAfter: 2 * time.Second}),
			wantCode: 429, wantErrorCode: "429050", wantRetry: "2"},
		{name: "throttled_usage_limit", setup: fault(Fault{Kind: FaultThrottle, ErrorCode: "429001", RetryAfter: 1500 * time.Millisecond}),
			wantCode: 429, wantErrorCode: "429001", wantRetry: "2"},
		{name: "gateway_500", setup: fault(Fault{Kind: FaultError, Code: 500}), wantCode: 500},
		{name: "gateway_502", setup: fault(Fault{Kind: FaultError, Code: 502}), wantCode: 502, wantErrorCode: "502000"},
		{name: "gateway_503", setup: fault(Fault{Kind: FaultError}), wantCode: 503, wantErrorCode: "503000"},
		{name: "gateway_504", setup: fault(Fault{Kind: FaultError, Code: 504}), wantCode: 504, wantErrorCode: "504000"},
		{name: "unauthorized_fault", setup: fault(Fault{Kind: FaultUnauthorized}), wantCode: 401, wantErrorCode: "401013"},
		{name: "ims_unknown_client", method: "POST", path: "/ims/token/v3",
			form: tokenForm("nope", "x", "client_credentials"), wantCode: 401, wantErrorCode: "invalid_client"},
		{name: "ims_bad_secret", method: "POST", path: "/ims/token/v3",
			form: tokenForm(DemoClientID, "wrong", "client_credentials"), wantCode: 401, wantErrorCode: "invalid_client"},
		{name: "ims_unsupported_grant", method: "POST", path: "/ims/token/v3",
			form: tokenForm(DemoClientID, DemoClientSecret, "password"), wantCode: 400, wantErrorCode: "unsupported_grant_type"},
		{name: "ims_unauthorized_fault", setup: fault(Fault{Op: campaign.OpToken, Kind: FaultUnauthorized}), method: "POST", path: "/ims/token/v3",
			form: tokenForm(DemoClientID, DemoClientSecret, "client_credentials"), wantCode: 401, wantErrorCode: "invalid_client"},
		{name: "token_of_revoked_client", header: func(e *env) http.Header {
			tok := e.issue("other")
			e.sim.RevokeClient("other")
			return authHeader("other", tok)
		}, wantCode: 401, wantErrorCode: "401013"},
		{name: "ims_revoked_client", setup: func(e *env) { e.sim.RevokeClient("other") }, method: "POST", path: "/ims/token/v3",
			form: tokenForm("other", "other-secret", "client_credentials"), wantCode: 401, wantErrorCode: "invalid_client"},
		{name: "ims_server_error_fault", setup: fault(Fault{Op: campaign.OpToken, Kind: FaultError, Code: 500}), method: "POST", path: "/ims/token/v3",
			form: tokenForm(DemoClientID, DemoClientSecret, "client_credentials"), wantCode: 500, wantErrorCode: "server_error"},
		{name: "ims_unavailable_fault", setup: fault(Fault{Op: campaign.OpToken, Kind: FaultError}), method: "POST", path: "/ims/token/v3",
			form: tokenForm(DemoClientID, DemoClientSecret, "client_credentials"), wantCode: 503, wantErrorCode: "temporarily_unavailable"},
		{name: "unknown_route", method: "GET", path: "/acme/campaign/profileAndServices/profile", wantCode: 404},
	}
}

func TestErrors(t *testing.T) {
	clients := []Client{
		{ID: DemoClientID, Secret: DemoClientSecret, SQLRole: true},
		{ID: "other", Secret: "other-secret", SQLRole: true},
		{ID: "no-sql", Secret: "no-sql-secret"},
		{ID: "acme-only", Secret: "acme-only-secret", SQLRole: true, Orgs: []string{"acme"}},
	}
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Clients: clients}, testMappings()...)
			if tt.setup != nil {
				tt.setup(e)
			}
			method, path, hdr, body := cmp.Or(tt.method, "POST"), cmp.Or(tt.path, ingestPath("acme", "XDM44")), e.auth(), ""
			if tt.header != nil {
				hdr = tt.header(e)
			}
			if tt.form != nil {
				hdr = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
				body = tt.form.Encode()
			}
			got := e.do(method, path, hdr, body)
			if got.code != tt.wantCode {
				t.Errorf("HTTP %d, want %d; body %s", got.code, tt.wantCode, got.body)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if ra := got.header.Get("Retry-After"); ra != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", ra, tt.wantRetry)
			}
			golden(t, "errors/"+tt.name+".json", got.body)
			var body2 struct {
				ErrorCode string `json:"error_code"`
				IMSError  string `json:"error"`
				Code      int    `json:"code"`
			}
			if err := json.Unmarshal(got.body, &body2); err != nil {
				t.Fatalf("decode %s: %v", got.body, err)
			}
			if ec := body2.ErrorCode + body2.IMSError; ec != tt.wantErrorCode {
				t.Errorf("error code %q, want %q", ec, tt.wantErrorCode)
			}
			if tt.wantErrorCode == "" && body2.Code != tt.wantCode {
				t.Errorf("body code %d, want %d", body2.Code, tt.wantCode)
			}
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Hour}, testMappings()...)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid,AdobeID,campaign_sdk"}}
	formHdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	tests := []struct {
		name  string
		hdr   http.Header
		extra url.Values
	}{
		{"form", formHdr, url.Values{"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}},
		{"basic_auth", func() http.Header {
			h := formHdr.Clone()
			r, _ := http.NewRequest("POST", "/", nil)
			r.SetBasicAuth(DemoClientID, DemoClientSecret)
			h.Set("Authorization", r.Header.Get("Authorization"))
			return h
		}(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			for k, v := range tt.extra {
				f[k] = v
			}
			got := e.do("POST", "/ims/token/v3", tt.hdr, f.Encode())
			if got.code != 200 {
				t.Fatalf("HTTP %d %s", got.code, got.body)
			}
			var tok campaign.TokenResponse
			if err := json.Unmarshal(got.body, &tok); err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "bearer" || tok.ExpiresIn != 3599 || !strings.HasPrefix(tok.AccessToken, "eyJ") {
				t.Errorf("token answer %s: want a bearer JWT-shaped token expiring in 3599s", got.body)
			}
			wantKeys := `{"access_token":"` + tok.AccessToken + `","token_type":"bearer","expires_in":3599}`
			if string(got.body) != wantKeys {
				t.Errorf("body %s\nwant %s", got.body, wantKeys)
			}
			if r := e.do("POST", ingestPath("acme", "XDMNEVER"), authHeader(DemoClientID, tok.AccessToken), ""); r.code != 200 {
				t.Errorf("API call with the issued token: HTTP %d %s", r.code, r.body)
			}
		})
	}

	t.Run("default_ttl", func(t *testing.T) {
		e := newEnv(t, Options{})
		f := url.Values{"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "grant_type": {"client_credentials"}}
		got := e.do("POST", "/ims/token/v3", formHdr, f.Encode())
		if !strings.HasSuffix(string(got.body), `"token_type":"bearer","expires_in":86399}`) {
			t.Errorf("body %s: want expires_in 86399", got.body)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		r := e.do("GET", ingestPath("acme", "XDM44")+"?requestId=1", e.auth(), "")
		if r.code != 404 {
			t.Fatalf("fresh token: HTTP %d %s", r.code, r.body)
		}
		e.clock.Advance(time.Hour - time.Nanosecond)
		if r := e.do("GET", ingestPath("acme", "XDM44")+"?requestId=1", e.auth(), ""); r.code != 404 {
			t.Errorf("token just before expiry: HTTP %d %s", r.code, r.body)
		}
		e.clock.Advance(time.Nanosecond)
		if r := e.do("GET", ingestPath("acme", "XDM44")+"?requestId=1", e.auth(), ""); r.code != 401 {
			t.Errorf("expired token: HTTP %d %s, want 401", r.code, r.body)
		}
	})
}

// TestSQLRoleOnlyForTrigger: the SQL function execution role is documented
// for the POST only; a client without it can still read statuses.
func TestSQLRoleOnlyForTrigger(t *testing.T) {
	e := newEnv(t, Options{Clients: []Client{{ID: "no-sql", Secret: "s"}}}, testMappings()...)
	if r := e.trigger("acme", "XDM44"); r.code != 403 {
		t.Errorf("POST without the role: HTTP %d, want 403", r.code)
	}
	if r := e.status("acme", "XDM44", "3520"); r.code != 404 {
		t.Errorf("GET without the role: HTTP %d %s, want 404 (no such request, but authorized)", r.code, r.body)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	return b
}
