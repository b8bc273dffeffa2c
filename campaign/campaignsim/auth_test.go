package campaignsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/acme/campaign-ingest/campaign"
)

// Two credentials, each limited to its own organization.
var orgClients = []Client{
	{ID: "acme-etl", Secret: "acme-secret", APIKey: "acme-key", SQLRole: true, Orgs: []string{"acme"}},
	{ID: "globex-etl", Secret: "globex-secret", APIKey: "globex-key", SQLRole: true, Orgs: []string{"globex"}},
}

// tokenRequest asks the token endpoint for a token of id with secret; it
// returns the HTTP code and the token (empty on failure).
func (e *env) tokenRequest(id, secret string) (int, string) {
	e.t.Helper()
	f := url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"}}
	r := e.do("POST", "/ims/token/v3", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, f.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(r.body, &tok)
	return r.code, tok.AccessToken
}

// Every call of the log names the client whose token it carried and the
// API key it sent; a token call names the client it asked for. Faults do
// not hide them.
func TestCallLogIdentity(t *testing.T) {
	e := newEnv(t, Options{Clients: orgClients}, testMappings()...)
	acmeTok, globexTok := e.issue("acme-etl"), e.issue("globex-etl")
	basic := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth("globex-etl", "globex-secret")
	basic.Set("Authorization", req.Header.Get("Authorization"))

	steps := []struct {
		name       string
		do         func()
		op         Operation
		client     string
		apiKey     string
		httpStatus int
	}{
		{"token, form", func() { e.tokenRequest("acme-etl", "acme-secret") }, campaign.OpToken, "acme-etl", "", 200},
		{"token, basic auth", func() { e.do("POST", "/ims/token/v3", basic, "grant_type=client_credentials") }, campaign.OpToken, "globex-etl", "", 200},
		{"token, unknown client", func() { e.tokenRequest("nobody", "x") }, campaign.OpToken, "nobody", "", 401},
		{"acme trigger", func() { e.do("POST", ingestPath("acme", "XDM44"), authHeader("acme-key", acmeTok), "") }, campaign.OpTrigger, "acme-etl", "acme-key", 200},
		{"globex trigger", func() { e.do("POST", ingestPath("globex", "XDM95"), authHeader("globex-key", globexTok), "") }, campaign.OpTrigger, "globex-etl", "globex-key", 200},
		{"globex status", func() {
			e.do("GET", ingestPath("globex", "XDM95")+"?requestId=3521", authHeader("globex-key", globexTok), "")
		}, campaign.OpStatus, "globex-etl", "globex-key", 200},
		{"token of another key", func() { e.do("POST", ingestPath("globex", "XDM95"), authHeader("globex-key", acmeTok), "") }, campaign.OpTrigger, "acme-etl", "globex-key", 403},
		{"no token", func() { e.do("POST", ingestPath("acme", "XDM44"), authHeader("acme-key", ""), "") }, campaign.OpTrigger, "", "acme-key", 403},
		{"unknown token", func() { e.do("POST", ingestPath("acme", "XDM44"), authHeader("acme-key", "eyJnope"), "") }, campaign.OpTrigger, "", "acme-key", 401},
		{"faulted call", func() {
			e.sim.InjectFault(Fault{Op: campaign.OpStatus, Kind: FaultError, Count: 1})
			e.do("GET", ingestPath("acme", "XDM44")+"?requestId=3520", authHeader("acme-key", acmeTok), "")
		}, campaign.OpStatus, "acme-etl", "acme-key", 503},
	}
	for _, s := range steps {
		s.do()
	}
	calls := e.sim.Calls()
	if len(calls) != len(steps) {
		t.Fatalf("%d calls logged, want %d: %+v", len(calls), len(steps), calls)
	}
	for i, s := range steps {
		c := calls[i]
		if c.Op != s.op || c.Client != s.client || c.APIKey != s.apiKey || c.HTTPStatus != s.httpStatus {
			t.Errorf("%s: logged op %q client %q apiKey %q HTTP %d; want %q %q %q %d",
				s.name, c.Op, c.Client, c.APIKey, c.HTTPStatus, s.op, s.client, s.apiKey, s.httpStatus)
		}
	}
	var viaHTTP []map[string]any
	adminJSON(t, e, "GET", "/_sim/calls?org=globex&op=trigger", "", 200, &viaHTTP)
	if len(viaHTTP) != 2 || viaHTTP[0]["client"] != "globex-etl" || viaHTTP[0]["apiKey"] != "globex-key" {
		t.Errorf("GET /_sim/calls: %v, want the client and apiKey fields", viaHTTP)
	}
}

// The texts a call log entry takes from a request are bounded: a 30 KB
// header, form field or query value is cut to 128 bytes (whole runes).
func TestCallLogBoundsRequestTexts(t *testing.T) {
	e := newEnv(t, Options{}, testMappings()...)
	hugeASCII := strings.Repeat("k", 30<<10)
	hugeRunes := strings.Repeat("€", 10<<10) // 3 bytes each: 128 is not a rune boundary
	e.do("POST", ingestPath("acme", "XDM44"), authHeader(hugeASCII, e.token), "")
	e.do("POST", ingestPath("acme", "XDM44"), authHeader(hugeRunes, e.token), "")
	e.tokenRequest(hugeASCII, "x")
	e.do("GET", ingestPath("acme", "XDM44")+"?requestId="+hugeASCII, e.auth(), "")

	tests := []struct {
		name string
		got  string
		want string
	}{
		{"ASCII API key", e.sim.Calls()[0].APIKey, hugeASCII[:maxCallField]},
		{"API key of 3-byte runes", e.sim.Calls()[1].APIKey, hugeRunes[:126]},
		{"token client id", e.sim.Calls()[2].Client, hugeASCII[:maxCallField]},
		{"request id", e.sim.Calls()[3].RequestID, hugeASCII[:maxCallField]},
	}
	for _, tt := range tests {
		if tt.got != tt.want || !utf8.ValidString(tt.got) {
			t.Errorf("%s: logged %d bytes (valid UTF-8 %v), want %d", tt.name, len(tt.got), utf8.ValidString(tt.got), len(tt.want))
		}
	}
	if r := e.do("GET", "/_sim/calls", nil, ""); len(r.body) > 8<<10 {
		t.Errorf("GET /_sim/calls answers %d bytes for 4 calls", len(r.body))
	}
}

// A revoked credential stops working at once — its tokens get 401 401013,
// its token requests 401 invalid_client — and the other credentials go on.
// Enabling it again needs new tokens.
func TestRevokeClient(t *testing.T) {
	e := newEnv(t, Options{Clients: orgClients}, testMappings()...)
	acmeTok, globexTok := e.issue("acme-etl"), e.issue("globex-etl")
	acme := func(tok string) int {
		return e.do("POST", ingestPath("acme", "XDMRUNNING"), authHeader("acme-key", tok), "").code
	}
	globex := func() int {
		return e.do("POST", ingestPath("globex", "XDM95"), authHeader("globex-key", globexTok), "").code
	}

	if !e.sim.RevokeClient("acme-etl") {
		t.Fatal("RevokeClient(acme-etl) = false")
	}
	if e.sim.RevokeClient("nobody") {
		t.Error("RevokeClient(nobody) = true")
	}
	if code := acme(acmeTok); code != 401 {
		t.Errorf("token of the revoked client: HTTP %d, want 401", code)
	}
	if code, _ := e.tokenRequest("acme-etl", "acme-secret"); code != 401 {
		t.Errorf("token request of the revoked client: HTTP %d, want 401", code)
	}
	if code := globex(); code != 200 {
		t.Errorf("the other client after the revocation: HTTP %d, want 200", code)
	}
	last := e.sim.Calls()[len(e.sim.Calls())-3]
	if last.Client != "acme-etl" || last.ErrorCode != "401013" {
		t.Errorf("call with the revoked token logged as client %q error %q", last.Client, last.ErrorCode)
	}

	e.sim.AddClient(orgClients[0]) // enabled again
	if code := acme(acmeTok); code != 401 {
		t.Errorf("token issued before the revocation, client enabled again: HTTP %d, want 401", code)
	}
	code, fresh := e.tokenRequest("acme-etl", "acme-secret")
	if code != 200 || acme(fresh) != 200 {
		t.Errorf("new token of the client enabled again: HTTP %d, then %d", code, acme(fresh))
	}
}

// Rotating a secret (AddClient with the same id and a new secret) makes
// token requests with the old secret fail; tokens issued before stay valid
// until they expire, as IMS tokens do.
func TestSecretRotation(t *testing.T) {
	e := newEnv(t, Options{Clients: orgClients}, testMappings()...)
	_, before := e.tokenRequest("acme-etl", "acme-secret")
	rotated := orgClients[0]
	rotated.Secret = "acme-secret-2"
	e.sim.AddClient(rotated)

	tests := []struct {
		secret   string
		wantCode int
	}{
		{"acme-secret", 401},
		{"acme-secret-2", 200},
	}
	for _, tt := range tests {
		if code, _ := e.tokenRequest("acme-etl", tt.secret); code != tt.wantCode {
			t.Errorf("token request with %q after the rotation: HTTP %d, want %d", tt.secret, code, tt.wantCode)
		}
	}
	if r := e.do("POST", ingestPath("acme", "XDMRUNNING"), authHeader("acme-key", before), ""); r.code != 200 {
		t.Errorf("token issued before the rotation: HTTP %d %s, want 200", r.code, r.body)
	}
}
