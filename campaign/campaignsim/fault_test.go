package campaignsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

// TestFaultKinds checks what each kind of fault does to one call.
func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		op        Operation
		wantDrop  bool
		wantCode  int
		wantRetry string
		check     func(t *testing.T, body []byte)
	}{
		{name: "latency", fault: Fault{Kind: FaultLatency, Latency: 20 * time.Millisecond}, op: campaign.OpTrigger, wantCode: 200,
			check: wantJSONStatus(campaign.StatusSuccess)},
		{name: "error_default_503", fault: Fault{Kind: FaultError}, op: campaign.OpTrigger, wantCode: 503},
		{name: "error_on_status", fault: Fault{Op: campaign.OpStatus, Kind: FaultError, Code: 504}, op: campaign.OpStatus, wantCode: 504},
		{name: "error_on_token", fault: Fault{Op: campaign.OpToken, Kind: FaultError, Code: 502}, op: campaign.OpToken, wantCode: 502},
		{name: "throttle_rounds_up", fault: Fault{Kind: FaultThrottle, RetryAfter: 2100 * time.Millisecond}, op: campaign.OpStatus,
			wantCode: 429, wantRetry: "3"},
		{name: "throttle_at_least_1s", fault: Fault{Kind: FaultThrottle}, op: campaign.OpTrigger, wantCode: 429, wantRetry: "1"},
		{name: "drop", fault: Fault{Kind: FaultDrop}, op: campaign.OpTrigger, wantDrop: true},
		{name: "drop_token", fault: Fault{Kind: FaultDrop}, op: campaign.OpToken, wantDrop: true},
		{name: "malformed_trigger", fault: Fault{Kind: FaultMalformed}, op: campaign.OpTrigger, wantCode: 200, check: wantInvalidJSON},
		{name: "malformed_status", fault: Fault{Kind: FaultMalformed}, op: campaign.OpStatus, wantCode: 200, check: wantInvalidJSON},
		{name: "malformed_token", fault: Fault{Kind: FaultMalformed}, op: campaign.OpToken, wantCode: 200, check: wantInvalidJSON},
		{name: "oversized", fault: Fault{Kind: FaultOversized}, op: campaign.OpStatus, wantCode: 200, check: func(t *testing.T, b []byte) {
			if len(b) < 2<<20 || !json.Valid(b) {
				t.Errorf("body of %d bytes (valid JSON: %v), want valid JSON of at least 2 MiB", len(b), json.Valid(b))
			}
		}},
		{name: "unauthorized", fault: Fault{Kind: FaultUnauthorized}, op: campaign.OpStatus, wantCode: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, testMappings()...)
			e.trigger("acme", "XDM44") // request 3520, for the status calls
			e.sim.ResetCalls()
			e.sim.InjectFault(tt.fault)
			got, err := e.callOp(tt.op)
			if tt.wantDrop {
				if err == nil {
					t.Fatalf("HTTP %d %s, want a dropped connection", got.code, got.body)
				}
			} else {
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if got.code != tt.wantCode {
					t.Errorf("HTTP %d, want %d; body %.200s", got.code, tt.wantCode, got.body)
				}
				if ra := got.header.Get("Retry-After"); ra != tt.wantRetry {
					t.Errorf("Retry-After %q, want %q", ra, tt.wantRetry)
				}
				if tt.check != nil {
					tt.check(t, got.body)
				}
			}
			calls := e.sim.Calls()
			if len(calls) != 1 || calls[0].Fault != tt.fault.Kind || calls[0].Op != tt.op || calls[0].HTTPStatus != tt.wantCode {
				t.Fatalf("call log %+v, want one %s call with fault %q and HTTP %d", calls, tt.op, tt.fault.Kind, tt.wantCode)
			}
			if tt.op == campaign.OpStatus && calls[0].RequestID != "3520" {
				t.Errorf("call log of a faulted status call: requestId %q, want the one asked for", calls[0].RequestID)
			}
		})
	}
}

// callOp makes one call of op with valid credentials: a POST of XDM44, a
// GET of request 3520 or a token request.
func (e *env) callOp(op Operation) (response, error) {
	e.t.Helper()
	switch op {
	case campaign.OpTrigger:
		return e.try(http.MethodPost, ingestPath("acme", "XDM44"), e.auth(), "")
	case campaign.OpStatus:
		return e.try(http.MethodGet, ingestPath("acme", "XDM44")+"?requestId=3520", e.auth(), "")
	}
	form := url.Values{"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "grant_type": {"client_credentials"}}
	return e.try(http.MethodPost, "/ims/token/v3", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, form.Encode())
}

func wantInvalidJSON(t *testing.T, b []byte) {
	t.Helper()
	if json.Valid(b) || len(b) == 0 {
		t.Errorf("body %q is valid JSON or empty, want a malformed body", b)
	}
}

func wantJSONStatus(want campaign.Status) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		t.Helper()
		var resp campaign.TriggerResponse
		if err := json.Unmarshal(b, &resp); err != nil || resp.Status != want {
			t.Errorf("body %s (%v), want status %q", b, err, want)
		}
	}
}

// faultedCalls makes n status calls and returns how many were hit by a fault.
func faultedCalls(t *testing.T, e *env, n int) int {
	t.Helper()
	hit := 0
	for range n {
		if r := e.status("acme", "XDM44", "3520"); r.code != http.StatusOK {
			hit++
		}
	}
	return hit
}

func TestFaultCountAndRate(t *testing.T) {
	tests := []struct {
		name          string
		fault         Fault
		calls         int
		wantMin, want int // faulted calls in [wantMin, want]
	}{
		{"count", Fault{Kind: FaultError, Count: 3}, 10, 3, 3},
		{"every_call", Fault{Kind: FaultError}, 10, 10, 10},
		{"rate_1", Fault{Kind: FaultError, Rate: 1}, 10, 10, 10},
		// P(outside [50, 150] | n=200, p=0.5) < 1e-12.
		{"rate_half", Fault{Kind: FaultError, Rate: 0.5}, 200, 50, 150},
		{"rate_and_count", Fault{Kind: FaultError, Rate: 0.5, Count: 5}, 200, 5, 5},
		{"other_op", Fault{Op: campaign.OpTrigger, Kind: FaultError}, 10, 0, 0},
		{"other_mapping", Fault{Kind: FaultError, Mapping: "XDMFETCH"}, 10, 0, 0},
		{"other_org", Fault{Kind: FaultError, Org: "globex"}, 10, 0, 0},
		{"matching_filters", Fault{Op: campaign.OpStatus, Kind: FaultError, Org: "acme", Mapping: "XDM44", Count: 2}, 10, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, testMappings()...)
			e.trigger("acme", "XDM44")
			e.sim.InjectFault(tt.fault)
			if got := faultedCalls(t, e, tt.calls); got < tt.wantMin || got > tt.want {
				t.Errorf("%d of %d calls faulted, want %d..%d", got, tt.calls, tt.wantMin, tt.want)
			}
			if tt.fault.Count > 0 && len(e.sim.Faults()) != 0 {
				t.Errorf("Faults() = %+v after the count was used up, want none", e.sim.Faults())
			}
		})
	}
}

func TestFaultPrecedence(t *testing.T) {
	e := newEnv(t, Options{}, testMappings()...)
	e.trigger("acme", "XDM44")
	e.sim.InjectFault(Fault{Kind: FaultLatency, Latency: time.Millisecond, Count: 1})
	e.sim.InjectFault(Fault{Kind: FaultError, Code: 502, Count: 1})
	e.sim.InjectFault(Fault{Kind: FaultError, Code: 504, Count: 1})
	e.sim.ResetCalls()
	codes := []int{e.status("acme", "XDM44", "3520").code, e.status("acme", "XDM44", "3520").code, e.status("acme", "XDM44", "3520").code}
	if codes[0] != 502 || codes[1] != 504 || codes[2] != 200 {
		t.Errorf("codes %v, want [502 504 200]: the first fault injected wins and later ones wait their turn", codes)
	}
	if f := e.sim.Calls()[0].Fault; f != FaultError {
		t.Errorf("call log fault %q, want error (latency and error on the same call)", f)
	}
}

// TestFaultAfterProcessing: a fault after processing loses the answer of a
// call that took effect; by default nothing happens.
func TestFaultAfterProcessing(t *testing.T) {
	tests := []struct {
		name     string
		after    bool
		wantNext campaign.Status // answer of the next POST
		wantID   campaign.RequestID
	}{
		{"before", false, campaign.StatusSuccess, "3520"},
		{"after", true, campaign.StatusInProgress, "3520"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, testMappings()...)
			e.sim.InjectFault(Fault{Op: campaign.OpTrigger, Kind: FaultDrop, Count: 1, AfterProcessing: tt.after})
			if r, err := e.try(http.MethodPost, ingestPath("acme", "XDMNEVER"), e.auth(), ""); err == nil {
				t.Fatalf("HTTP %d %s, want a dropped connection", r.code, r.body)
			}
			var resp campaign.TriggerResponse
			decode(t, e.trigger("acme", "XDMNEVER"), &resp)
			if resp.Status != tt.wantNext || resp.RequestID != tt.wantID {
				t.Errorf("next POST: %q %q, want %q %q", resp.Status, resp.RequestID, tt.wantNext, tt.wantID)
			}
			calls := e.sim.Calls()
			if tt.after && calls[0].RequestID != "3520" {
				t.Errorf("call log of the dropped call: %+v, want the request id it created", calls[0])
			}
		})
	}
}

func TestInjectFaultInvalid(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
	}{
		{"unknown_kind", Fault{Kind: "explode"}},
		{"unknown_op", Fault{Op: "delete", Kind: FaultError}},
		{"rate_above_1", Fault{Kind: FaultError, Rate: 1.5}},
		{"latency_without_latency", Fault{Kind: FaultLatency}},
		{"error_code_2xx", Fault{Kind: FaultError, Code: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", tt.fault)
				}
			}()
			New(Options{}).InjectFault(tt.fault)
		})
	}
}

func TestFaultJSON(t *testing.T) {
	const in = `{"op":"status","kind":"throttle","retryAfter":"2s","count":3,"rate":0.25,"organization":"acme","mappingId":"XDM44"}`
	var f Fault
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	want := Fault{Op: campaign.OpStatus, Kind: FaultThrottle, RetryAfter: 2 * time.Second, Count: 3, Rate: 0.25, Org: "acme", Mapping: "XDM44"}
	if f != want {
		t.Errorf("decoded %+v\nwant    %+v", f, want)
	}
	out, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"retryAfter":"2s"`) {
		t.Errorf("encoded %s: want retryAfter as \"2s\"", out)
	}
	if err := json.Unmarshal([]byte(`{"kind":"error","mapping":"XDM44"}`), &f); err == nil {
		t.Errorf("a misspelt filter (mapping for mappingId) decoded without error")
	}
}
