package campaign_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// simEnv is a simulator behind a real HTTP server, and a client for it.
type simEnv struct {
	sim    *campaignsim.Server
	url    string
	client *campaign.Client
}

// newSimEnv starts a simulator with opts, lets setup prepare it, and
// builds a client with the demo credential, changed by change.
func newSimEnv(t *testing.T, opts campaignsim.Options, setup func(*campaignsim.Server), change func(*campaign.Config, *campaignsim.Server)) *simEnv {
	t.Helper()
	sim := campaignsim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	if setup != nil {
		setup(sim)
	}
	cfg := campaign.Config{
		BaseURL: srv.URL,
		IMS: campaign.IMSConfig{
			TokenURL:     srv.URL + "/ims/token/v3",
			ClientID:     campaignsim.DemoClientID,
			ClientSecret: campaignsim.DemoClientSecret,
			Scopes:       []string{"openid", "AdobeID", "campaign_sdk"},
		},
	}
	if change != nil {
		change(&cfg, sim)
	}
	c, err := campaign.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &simEnv{sim: sim, url: srv.URL, client: c}
}

// calls counts the simulator's calls of operation op.
func (e *simEnv) calls(op campaignsim.Operation) int {
	n := 0
	for _, c := range e.sim.Calls() {
		if c.Op == op {
			n++
		}
	}
	return n
}

// mapping returns a ready mapping acme/id with script s.
func mapping(id string, state campaignsim.MappingState, s campaignsim.Script) campaignsim.Mapping {
	return campaignsim.Mapping{Org: "acme", ID: id, State: state, Script: s}
}

// The POST table of the spec, against the simulator.
func TestSimTrigger(t *testing.T) {
	never := campaignsim.Script{Outcome: campaignsim.OutcomeNever}
	tests := []struct {
		name          string
		opts          campaignsim.Options
		mappings      []campaignsim.Mapping
		mapping       string
		before        int // POSTs before the one checked
		wantKind      campaign.TriggerKind
		wantStatus    campaign.Status
		wantInfo      string // a format with the mapping id
		wantRequestID campaign.RequestID
	}{
		{"accepted", campaignsim.Options{}, []campaignsim.Mapping{mapping("XDM44", "", never)}, "XDM44", 0,
			campaign.TriggerAccepted, campaign.StatusSuccess, campaign.InfoTriggerAccepted, "3520"},
		{"already in progress", campaignsim.Options{}, []campaignsim.Mapping{mapping("XDM44", "", never)}, "XDM44", 1,
			campaign.TriggerBusy, campaign.StatusInProgress, campaign.InfoTriggerInProgress, "3520"},
		{"not stopped", campaignsim.Options{}, []campaignsim.Mapping{mapping("XDM95", campaignsim.StateNotStopped, never)}, "XDM95", 0,
			campaign.TriggerNotStopped, campaign.StatusFailed, campaign.InfoTriggerNotStopped, ""},
		{"not published", campaignsim.Options{}, []campaignsim.Mapping{mapping("TestDoc", campaignsim.StateNotPublished, never)}, "TestDoc", 0,
			campaign.TriggerNotPublished, campaign.StatusFailed, campaign.InfoTriggerNotPublished, ""},
		{"unknown mapping of a known org", campaignsim.Options{}, []campaignsim.Mapping{mapping("XDM44", "", never)}, "test234", 0,
			campaign.TriggerNotPublished, campaign.StatusFailed, campaign.InfoTriggerNotPublished, ""},
		{"failed answered as 400", campaignsim.Options{FailedHTTPStatus: 400}, []campaignsim.Mapping{mapping("XDM95", campaignsim.StateNotStopped, never)}, "XDM95", 0,
			campaign.TriggerNotStopped, campaign.StatusFailed, campaign.InfoTriggerNotStopped, ""},
		{"request ids increase", campaignsim.Options{FirstRequestID: 9000}, []campaignsim.Mapping{mapping("A", "", never), mapping("B", "", never)}, "B", 0,
			campaign.TriggerAccepted, campaign.StatusSuccess, campaign.InfoTriggerAccepted, "9000"},
		{"hostile mapping id", campaignsim.Options{}, []campaignsim.Mapping{mapping("../x?a#b", "", never)}, "../x?a#b", 0,
			campaign.TriggerAccepted, campaign.StatusSuccess, campaign.InfoTriggerAccepted, "3520"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSimEnv(t, tt.opts, func(s *campaignsim.Server) {
				for _, m := range tt.mappings {
					s.PutMapping(m)
				}
			}, nil)
			ctx := context.Background()
			for range tt.before {
				if _, err := env.client.Trigger(ctx, "acme", tt.mapping); err != nil {
					t.Fatalf("earlier Trigger: %v", err)
				}
			}
			got, err := env.client.Trigger(ctx, "acme", tt.mapping)
			if err != nil {
				t.Fatalf("Trigger: %v", err)
			}
			want := campaign.TriggerResponse{RequestID: tt.wantRequestID, Info: fmt.Sprintf(tt.wantInfo, tt.mapping), Status: tt.wantStatus}
			if got != want || got.Kind() != tt.wantKind {
				t.Errorf("got %+v (%v), want %+v (%v)", got, got.Kind(), want, tt.wantKind)
			}
		})
	}
}

// The GET table of the spec, against the simulator.
func TestSimStatus(t *testing.T) {
	tests := []struct {
		name       string
		opts       campaignsim.Options
		script     campaignsim.Script
		polls      int // GETs; the last is checked
		wantStatus campaign.Status
		wantInfo   string // a format with the mapping id
		wantNum    int64
		wantBatch  string
		wantCode   string
	}{
		{"success", campaignsim.Options{}, campaignsim.Script{Records: 15}, 1,
			campaign.StatusSuccess, campaign.InfoStatusSuccess, 15, "", ""},
		{"fetch failure", campaignsim.Options{}, campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure}, 1,
			campaign.StatusFailed, campaign.InfoStatusFetchFailed, 0, "", campaign.CodeFetchFailed},
		{"upload failure", campaignsim.Options{}, campaignsim.Script{Outcome: campaignsim.OutcomeUploadFailure, BatchID: "a27d800531ac4d95945a2bc234eb0d86"}, 1,
			campaign.StatusFailed, campaign.InfoStatusUploadFail, 0, "a27d800531ac4d95945a2bc234eb0d86", campaign.CodeUploadFailed},
		{"aborted", campaignsim.Options{}, campaignsim.Script{Outcome: campaignsim.OutcomeAborted}, 1,
			campaign.StatusAborted, campaign.InfoStatusAborted, 0, "", ""},
		{"in progress", campaignsim.Options{}, campaignsim.Script{Records: 15, Polls: 3}, 2,
			campaign.StatusInProgress, campaign.InfoStatusInProgress, 0, "", ""},
		{"success on the third poll", campaignsim.Options{}, campaignsim.Script{Records: 15, Polls: 3}, 3,
			campaign.StatusSuccess, campaign.InfoStatusSuccess, 15, "", ""},
		{"never ends", campaignsim.Options{}, campaignsim.Script{Outcome: campaignsim.OutcomeNever}, 4,
			campaign.StatusInProgress, campaign.InfoStatusInProgress, 0, "", ""},
		{"failed answered as 422", campaignsim.Options{FailedHTTPStatus: 422}, campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure}, 1,
			campaign.StatusFailed, campaign.InfoStatusFetchFailed, 0, "", campaign.CodeFetchFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSimEnv(t, tt.opts, func(s *campaignsim.Server) { s.PutMapping(mapping("XDM44", "", tt.script)) }, nil)
			ctx := context.Background()
			tr, err := env.client.Trigger(ctx, "acme", "XDM44")
			if err != nil || tr.Kind() != campaign.TriggerAccepted {
				t.Fatalf("Trigger: %+v, %v", tr, err)
			}
			var got campaign.StatusResponse
			for range tt.polls {
				if got, err = env.client.Status(ctx, "acme", "XDM44", string(tr.RequestID)); err != nil {
					t.Fatalf("Status: %v", err)
				}
			}
			want := campaign.StatusResponse{BatchID: tt.wantBatch, Info: fmt.Sprintf(tt.wantInfo, "XDM44"),
				NumRecords: tt.wantNum, RequestID: tr.RequestID, Status: tt.wantStatus}
			if got != want || got.ErrorCode() != tt.wantCode {
				t.Errorf("got %+v (code %q), want %+v (code %q)", got, got.ErrorCode(), want, tt.wantCode)
			}
			if n := env.calls(campaign.OpToken); n != 1 {
				t.Errorf("%d token calls, want 1 (cached)", n)
			}
		})
	}
}

// stripHeader is a RoundTripper that drops a header, like a broken proxy.
type stripHeader struct {
	base   http.RoundTripper
	header string
}

func (s stripHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del(s.header)
	return s.base.RoundTrip(r)
}

// The gateway error table of the spec (and the simulator's faults),
// against the simulator.
func TestSimErrors(t *testing.T) {
	const (
		retry = 1 << iota
		unauth
		perm
		malformed
	)
	ready := func(s *campaignsim.Server) {
		s.PutMapping(mapping("XDM44", "", campaignsim.Script{Outcome: campaignsim.OutcomeNever}))
	}
	fault := func(f campaignsim.Fault) func(*campaignsim.Server) {
		return func(s *campaignsim.Server) {
			ready(s)
			s.InjectFault(f)
		}
	}
	staticToken := func(tok string) func(*campaign.Config, *campaignsim.Server) {
		return func(cfg *campaign.Config, _ *campaignsim.Server) {
			cfg.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})
			cfg.APIKey = campaignsim.DemoClientID
		}
	}
	withClient := func(c campaignsim.Client) campaignsim.Options {
		return campaignsim.Options{Clients: []campaignsim.Client{c}}
	}
	asClient := func(id, secret string) func(*campaign.Config, *campaignsim.Server) {
		return func(cfg *campaign.Config, _ *campaignsim.Server) {
			cfg.IMS.ClientID, cfg.IMS.ClientSecret = id, secret
		}
	}
	tests := []struct {
		name    string
		opts    campaignsim.Options
		setup   func(*campaignsim.Server)
		change  func(*campaign.Config, *campaignsim.Server)
		op      string // campaign.OpTrigger or campaign.OpStatus
		org     string // default "acme"
		wantErr bool   // false: the call succeeds (after the client's one retry)
		// expireFirst triggers and polls once with a valid token, then
		// expires every token before the call checked.
		expireFirst bool

		wantOp     string // default op
		wantStatus int
		wantCode   string
		wantMsg    string
		class      int            // predicates that hold
		kind       campaign.Class // what Classify says
		retryAfter time.Duration
		wantAPI    int // calls of op the simulator saw; -1: not checked (a call the client gave up on may be logged late)
		wantTokens int // token calls the simulator saw
	}{
		{name: "401013 token not valid", setup: ready, change: staticToken("not-a-sim-token"), op: campaign.OpTrigger, wantErr: true,
			wantStatus: 401, wantCode: "401013", kind: campaign.ClassUnauthorized, class: unauth, wantAPI: 2},
		{name: "401013 token expired: one fresh token, one retry", setup: ready, op: campaign.OpStatus, expireFirst: true,
			wantAPI: 3, wantTokens: 2},
		{name: "403000 api key missing", setup: ready, op: campaign.OpTrigger, wantErr: true,
			change: func(cfg *campaign.Config, _ *campaignsim.Server) {
				cfg.Transport = stripHeader{campaign.NewTransport(nil), "X-Api-Key"}
			},
			wantStatus: 403, wantCode: "403000", kind: campaign.ClassForbidden, class: perm, wantAPI: 1, wantTokens: 1},
		{name: "403003 api key invalid", setup: ready, op: campaign.OpTrigger, wantErr: true,
			change:     func(cfg *campaign.Config, _ *campaignsim.Server) { cfg.APIKey = "not-a-key" },
			wantStatus: 403, wantCode: "403003", kind: campaign.ClassForbidden, class: perm, wantAPI: 1, wantTokens: 1},
		{name: "403010 token missing: one retry, then permanent", setup: ready, op: campaign.OpTrigger, wantErr: true,
			change: func(cfg *campaign.Config, _ *campaignsim.Server) {
				cfg.Transport = stripHeader{campaign.NewTransport(nil), "Authorization"}
			},
			wantStatus: 403, wantCode: "403010", kind: campaign.ClassUnauthorized, class: unauth | perm, wantAPI: 2, wantTokens: 2},
		{name: "403020 token of another client: one retry, then permanent", op: campaign.OpTrigger, wantErr: true,
			opts: campaignsim.Options{Clients: []campaignsim.Client{
				{ID: "alice", Secret: "alice-secret", SQLRole: true},
				{ID: "bob", Secret: "bob-secret", SQLRole: true},
			}},
			setup: ready,
			change: func(cfg *campaign.Config, s *campaignsim.Server) {
				tok, err := s.IssueToken("bob")
				if err != nil {
					panic(err)
				}
				cfg.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})
				cfg.APIKey = "alice"
			},
			wantStatus: 403, wantCode: "403020", kind: campaign.ClassUnauthorized, class: unauth | perm, wantAPI: 2},
		{name: "403023 profile not valid", op: campaign.OpTrigger, wantErr: true,
			opts:  withClient(campaignsim.Client{ID: "c", Secret: "c-secret", SQLRole: true, Orgs: []string{"other"}}),
			setup: ready, change: asClient("c", "c-secret"),
			wantStatus: 403, wantCode: "403023", kind: campaign.ClassForbidden, class: perm, wantAPI: 1, wantTokens: 1},
		{name: "403 without the SQL function execution role", op: campaign.OpTrigger, wantErr: true,
			opts:  withClient(campaignsim.Client{ID: "c", Secret: "c-secret", SQLRole: false}),
			setup: ready, change: asClient("c", "c-secret"),
			wantStatus: 403, wantCode: "", kind: campaign.ClassForbidden, class: perm, wantAPI: 1, wantTokens: 1},
		{name: "429050 with Retry-After", op: campaign.OpTrigger, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpTrigger, Kind: campaignsim.FaultThrottle, RetryAfter: 2 * time.Second}),
			wantStatus: 429, wantCode: "429050", kind: campaign.ClassThrottled, class: retry, retryAfter: 2 * time.Second, wantAPI: 1, wantTokens: 1},
		{name: "429001 usage limit", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, ErrorCode: "429001", RetryAfter: 30 * time.Second}),
			wantStatus: 429, wantCode: "429001", kind: campaign.ClassThrottled, class: retry, retryAfter: 30 * time.Second, wantAPI: 1, wantTokens: 1},
		{name: "429002 too many requests", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, ErrorCode: "429002", RetryAfter: time.Second}),
			wantStatus: 429, wantCode: "429002", kind: campaign.ClassThrottled, class: retry, retryAfter: time.Second, wantAPI: 1, wantTokens: 1},
		{name: "500 unknown tenant", op: campaign.OpTrigger, org: "nobody", wantErr: true, setup: ready,
			wantStatus: 500, wantMsg: campaign.MessageBadURI, kind: campaign.ClassServerError, class: retry, wantAPI: 1, wantTokens: 1},
		{name: "502", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 502}),
			wantStatus: 502, wantCode: "502000", kind: campaign.ClassTransient, class: retry, wantAPI: 1, wantTokens: 1},
		{name: "503", op: campaign.OpTrigger, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpTrigger, Kind: campaignsim.FaultError}),
			wantStatus: 503, wantCode: "503000", kind: campaign.ClassTransient, class: retry, wantAPI: 1, wantTokens: 1},
		{name: "504", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 504}),
			wantStatus: 504, wantCode: "504000", kind: campaign.ClassTransient, class: retry, wantAPI: 1, wantTokens: 1},
		{name: "connection dropped", op: campaign.OpTrigger, wantErr: true,
			setup: fault(campaignsim.Fault{Op: campaign.OpTrigger, Kind: campaignsim.FaultDrop}),
			kind:  campaign.ClassTransient, class: retry, wantAPI: 1, wantTokens: 1},
		{name: "malformed body", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultMalformed}),
			wantStatus: 200, kind: campaign.ClassTransient, class: retry | malformed, wantAPI: 1, wantTokens: 1},
		{name: "oversized body", op: campaign.OpStatus, wantErr: true,
			setup:      fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultOversized}),
			wantStatus: 200, kind: campaign.ClassTransient, class: retry | malformed, wantAPI: 1, wantTokens: 1},
		{name: "one spurious 401: retried with a fresh token", op: campaign.OpTrigger, wantErr: false,
			setup:   fault(campaignsim.Fault{Op: campaign.OpTrigger, Kind: campaignsim.FaultUnauthorized, Count: 1}),
			wantAPI: 2, wantTokens: 2},
		{name: "latency past the client's timeout", op: campaign.OpStatus, wantErr: true,
			setup: fault(campaignsim.Fault{Op: campaign.OpStatus, Kind: campaignsim.FaultLatency, Latency: time.Minute}),
			change: func(cfg *campaign.Config, s *campaignsim.Server) {
				// A token issued beforehand: only the status call can time out.
				tok, err := s.IssueToken(campaignsim.DemoClientID)
				if err != nil {
					panic(err)
				}
				staticToken(tok)(cfg, s)
				cfg.Timeout = 300 * time.Millisecond
			},
			kind: campaign.ClassTransient, class: retry, wantAPI: -1},
		{name: "unknown request id", op: campaign.OpStatus, wantErr: true,
			setup:      func(s *campaignsim.Server) { ready(s) }, // the status call asks for request 999999
			wantStatus: 404, kind: campaign.ClassPermanent, class: perm, wantAPI: 1, wantTokens: 1},
		{name: "token: wrong client secret", op: campaign.OpTrigger, wantErr: true, setup: ready,
			change: asClient(campaignsim.DemoClientID, "wrong-secret"), wantOp: campaign.OpToken,
			wantStatus: 401, wantCode: "invalid_client", kind: campaign.ClassUnauthorized, class: unauth | perm, wantTokens: 1},
		{name: "token: unauthorized fault", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultUnauthorized}),
			wantOp: campaign.OpToken, wantStatus: 401, wantCode: "invalid_client", kind: campaign.ClassUnauthorized, class: unauth | perm, wantTokens: 1},
		{name: "token: unknown client", op: campaign.OpTrigger, wantErr: true, setup: ready,
			change: asClient("nobody", "nobody-secret"), wantOp: campaign.OpToken,
			wantStatus: 401, wantCode: "invalid_client", kind: campaign.ClassUnauthorized, class: unauth | perm, wantTokens: 1},
		{name: "token: 500 is transient, not Campaign's 500", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultError, Code: 500}),
			wantOp: campaign.OpToken, wantStatus: 500, wantCode: "server_error", kind: campaign.ClassTransient, class: retry, wantTokens: 1},
		{name: "token: 502", op: campaign.OpStatus, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultError, Code: 502}),
			wantOp: campaign.OpToken, wantStatus: 502, wantCode: "server_error", kind: campaign.ClassTransient, class: retry, wantTokens: 1},
		{name: "token: 503", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultError}),
			wantOp: campaign.OpToken, wantStatus: 503, wantCode: "temporarily_unavailable", kind: campaign.ClassTransient, class: retry, wantTokens: 1},
		{name: "token: 429", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultThrottle, RetryAfter: 5 * time.Second}),
			wantOp: campaign.OpToken, wantStatus: 429, wantCode: "429050", kind: campaign.ClassThrottled, class: retry, retryAfter: 5 * time.Second, wantTokens: 1},
		{name: "token: malformed", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultMalformed}),
			wantOp: campaign.OpToken, kind: campaign.ClassTransient, class: retry | malformed, wantTokens: 1},
		{name: "token: dropped", op: campaign.OpTrigger, wantErr: true,
			setup:  fault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultDrop}),
			wantOp: campaign.OpToken, kind: campaign.ClassTransient, class: retry, wantTokens: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSimEnv(t, tt.opts, tt.setup, tt.change)
			org := tt.org
			if org == "" {
				org = "acme"
			}
			ctx := context.Background()
			requestID := "999999"
			if tt.expireFirst {
				tr, err := env.client.Trigger(ctx, org, "XDM44")
				if err != nil {
					t.Fatalf("Trigger: %v", err)
				}
				requestID = string(tr.RequestID)
				if _, err := env.client.Status(ctx, org, "XDM44", requestID); err != nil {
					t.Fatalf("first Status: %v", err)
				}
				env.sim.ExpireTokens()
			}
			var err error
			if tt.op == campaign.OpTrigger {
				_, err = env.client.Trigger(ctx, org, "XDM44")
			} else {
				_, err = env.client.Status(ctx, org, "XDM44", requestID)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			} else {
				checkAPIError(t, err, cmp.Or(tt.wantOp, tt.op), tt.wantStatus, tt.wantCode, tt.wantMsg, tt.retryAfter)
				class := 0
				for bit, f := range map[int]func(error) bool{
					retry: campaign.Retryable, unauth: campaign.Unauthorized, perm: campaign.Permanent,
					malformed: func(err error) bool { return errors.Is(err, campaign.ErrMalformed) },
				} {
					if f(err) {
						class |= bit
					}
				}
				if class != tt.class {
					t.Errorf("class %04b, want %04b (malformed|perm|unauth|retry): %v", class, tt.class, err)
				}
				if got := campaign.Classify(err); got != tt.kind {
					t.Errorf("Classify = %v, want %v: %v", got, tt.kind, err)
				}
			}
			simOp := campaignsim.Operation(tt.op)
			if got := env.calls(simOp); tt.wantAPI >= 0 && got != tt.wantAPI {
				t.Errorf("simulator saw %d %s calls, want %d", got, tt.op, tt.wantAPI)
			}
			if got := env.calls(campaign.OpToken); got != tt.wantTokens {
				t.Errorf("simulator saw %d token calls, want %d", got, tt.wantTokens)
			}
		})
	}
}

// checkAPIError checks the fields of err, an *APIError.
func checkAPIError(t *testing.T, err error, op string, status int, code, msg string, retryAfter time.Duration) {
	t.Helper()
	var e *campaign.APIError
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *APIError", err)
	}
	if e.Operation != op || e.StatusCode != status || e.ErrorCode != code || (msg != "" && e.Message != msg) {
		t.Errorf("got %s %d %q %q, want %s %d %q %q", e.Operation, e.StatusCode, e.ErrorCode, e.Message, op, status, code, msg)
	}
	if d, _ := campaign.RetryAfterOf(err); d != retryAfter {
		t.Errorf("RetryAfterOf = %v, want %v", d, retryAfter)
	}
}

// A 500 of the IMS token endpoint is transient: the call fails
// (ClassTransient, never ClassServerError), nothing is cached, and the next
// call gets a token and goes through. A refusal of the credential is final.
func TestSimTokenEndpoint5xxThenRecovery(t *testing.T) {
	for _, code := range []int{500, 502, 503, 504} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			env := newSimEnv(t, campaignsim.Options{}, func(s *campaignsim.Server) {
				s.PutMapping(mapping("XDM44", "", campaignsim.Script{Outcome: campaignsim.OutcomeNever}))
				s.InjectFault(campaignsim.Fault{Op: campaign.OpToken, Kind: campaignsim.FaultError, Code: code, Count: 2})
			}, nil)
			ctx := context.Background()
			for i := range 2 {
				_, err := env.client.Trigger(ctx, "acme", "XDM44")
				if c := campaign.Classify(err); c != campaign.ClassTransient || !campaign.Retryable(err) ||
					campaign.Permanent(err) || campaign.FinalAfterRetries(err) {
					t.Fatalf("attempt %d: %v: class %v, want a transient token error", i+1, err, c)
				}
			}
			tr, err := env.client.Trigger(ctx, "acme", "XDM44")
			if err != nil || tr.Kind() != campaign.TriggerAccepted {
				t.Fatalf("after the token endpoint recovered: %+v, %v", tr, err)
			}
			if got := env.calls(campaign.OpToken); got != 3 {
				t.Errorf("%d token calls, want 3 (two failed, one issued)", got)
			}
			if got := env.calls(campaign.OpTrigger); got != 1 {
				t.Errorf("%d trigger calls, want 1 (none without a token)", got)
			}
		})
	}
}

// orgEnv is one simulator with one credential per organization, and one
// client per credential, as the worker builds them from its organizations
// file.
type orgEnv struct {
	sim     *campaignsim.Server
	url     string
	clients map[string]*campaign.Client // by organization
}

// orgCredentials are the simulator's clients of orgEnv: each may use its
// own organization only, and has its own API key.
var orgCredentials = map[string]campaignsim.Client{
	"acme":   {ID: "acme-etl", Secret: "acme-secret", APIKey: "acme-key", SQLRole: true, Orgs: []string{"acme"}},
	"globex": {ID: "globex-etl", Secret: "globex-secret", APIKey: "globex-key", SQLRole: true, Orgs: []string{"globex"}},
}

func newOrgEnv(t *testing.T) *orgEnv {
	t.Helper()
	var creds []campaignsim.Client
	for _, c := range orgCredentials {
		creds = append(creds, c)
	}
	sim := campaignsim.New(campaignsim.Options{Clients: creds})
	never := campaignsim.Script{Outcome: campaignsim.OutcomeNever}
	sim.PutMapping(campaignsim.Mapping{Org: "acme", ID: "XDM44", Script: never})
	sim.PutMapping(campaignsim.Mapping{Org: "globex", ID: "XDM95", Script: never})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	e := &orgEnv{sim: sim, url: srv.URL, clients: map[string]*campaign.Client{}}
	for org, cred := range orgCredentials {
		e.clients[org] = e.client(t, cred.ID, cred.Secret, cred.APIKey)
	}
	return e
}

// client returns a client of the simulator with a credential.
func (e *orgEnv) client(t *testing.T, id, secret, apiKey string) *campaign.Client {
	t.Helper()
	c, err := campaign.New(campaign.Config{
		BaseURL: e.url,
		APIKey:  apiKey,
		IMS:     campaign.IMSConfig{TokenURL: e.url + "/ims/token/v3", ClientID: id, ClientSecret: secret},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// mappingOf is the mapping each organization of orgEnv triggers.
var mappingOf = map[string]string{"acme": "XDM44", "globex": "XDM95"}

// Each organization's calls carry its own token and its own API key: the
// simulator's call log names, for every call, the client whose token
// authenticated it.
func TestSimEachOrganizationItsOwnCredential(t *testing.T) {
	e := newOrgEnv(t)
	ctx := context.Background()
	for _, org := range []string{"acme", "globex", "acme", "globex"} {
		tr, err := e.clients[org].Trigger(ctx, org, mappingOf[org])
		if err != nil {
			t.Fatalf("%s: Trigger: %v", org, err)
		}
		if _, err := e.clients[org].Status(ctx, org, mappingOf[org], string(tr.RequestID)); err != nil {
			t.Fatalf("%s: Status: %v", org, err)
		}
	}
	perClient := map[string]int{}
	for _, c := range e.sim.Calls() {
		if c.Op == campaign.OpToken {
			perClient[c.Client]++
			continue
		}
		want := orgCredentials[c.Org]
		if c.Client != want.ID || c.APIKey != want.APIKey || c.HTTPStatus != 200 {
			t.Errorf("%s %s of %s: client %q key %q HTTP %d; want %q %q 200",
				c.Method, c.Mapping, c.Org, c.Client, c.APIKey, c.HTTPStatus, want.ID, want.APIKey)
		}
	}
	if perClient["acme-etl"] != 1 || perClient["globex-etl"] != 1 || len(perClient) != 2 {
		t.Errorf("token calls per client %v, want one each", perClient)
	}
}

// A revoked credential for one organization fails that organization's
// calls as unauthorized (after one fresh token, refused by IMS), and
// leaves the other organization running.
func TestSimRevokedCredentialLeavesTheOtherOrganization(t *testing.T) {
	e := newOrgEnv(t)
	ctx := context.Background()
	for org, c := range e.clients {
		if _, err := c.Trigger(ctx, org, mappingOf[org]); err != nil {
			t.Fatalf("%s before the revocation: %v", org, err)
		}
	}
	if !e.sim.RevokeClient("acme-etl") {
		t.Fatal("RevokeClient(acme-etl) = false")
	}
	_, err := e.clients["acme"].Status(ctx, "acme", "XDM44", "3520")
	if c := campaign.Classify(err); c != campaign.ClassUnauthorized || !campaign.Unauthorized(err) {
		t.Fatalf("acme after the revocation: %v (class %v), want unauthorized", err, c)
	}
	var ae *campaign.APIError
	if !errors.As(err, &ae) || ae.Operation != campaign.OpToken || ae.ErrorCode != "invalid_client" {
		t.Errorf("acme: got %v, want the token endpoint's invalid_client (the cached token got a 401 first)", err)
	}
	for range 2 {
		if _, err := e.clients["globex"].Trigger(ctx, "globex", "XDM95"); err != nil {
			t.Errorf("globex after acme's revocation: %v", err)
		}
	}
	var acmeCalls []string
	for _, c := range e.sim.Calls() {
		if c.Client == "acme-etl" {
			acmeCalls = append(acmeCalls, fmt.Sprintf("%s %d", c.Op, c.HTTPStatus))
		}
		if c.Client == "acme-etl" && c.Org == "globex" {
			t.Errorf("acme's credential used for globex: %+v", c)
		}
	}
	want := "token 200,trigger 200,status 401,token 401"
	if got := strings.Join(acmeCalls, ","); got != want {
		t.Errorf("acme's calls %s, want %s", got, want)
	}
}

// Rotating a secret: a client with the old secret keeps its cached token
// until it expires, then fails as unauthorized; a client with the new
// secret works.
func TestSimSecretRotation(t *testing.T) {
	e := newOrgEnv(t)
	ctx := context.Background()
	old := e.clients["acme"]
	if _, err := old.Trigger(ctx, "acme", "XDM44"); err != nil {
		t.Fatal(err)
	}
	rotated := orgCredentials["acme"]
	rotated.Secret = "acme-secret-2"
	e.sim.AddClient(rotated)

	if _, err := old.Status(ctx, "acme", "XDM44", "3520"); err != nil {
		t.Errorf("cached token after the rotation: %v, want it still valid", err)
	}
	e.sim.ExpireTokens()
	if _, err := old.Status(ctx, "acme", "XDM44", "3520"); campaign.Classify(err) != campaign.ClassUnauthorized {
		t.Errorf("old secret once the token expired: %v, want unauthorized", err)
	}
	fresh := e.client(t, rotated.ID, rotated.Secret, rotated.APIKey)
	if _, err := fresh.Status(ctx, "acme", "XDM44", "3520"); err != nil {
		t.Errorf("new secret: %v", err)
	}
}
