package campaign_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/acme/campaign-ingest/campaign"
)

func TestClientRequests(t *testing.T) {
	g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			writeBody(w, 200, acceptedBody)
			return
		}
		writeBody(w, 200, successBody)
	})
	c := g.client(t, nil)
	ctx := context.Background()

	tr, err := c.Trigger(ctx, "acme", "XDM44")
	if err != nil || tr.Kind() != campaign.TriggerAccepted || tr.RequestID != "3520" {
		t.Fatalf("Trigger: %+v, %v", tr, err)
	}
	st, err := c.Status(ctx, "acme", "XDM44", string(tr.RequestID))
	if err != nil || st.Status != campaign.StatusSuccess || st.NumRecords != 15 {
		t.Fatalf("Status: %+v, %v", st, err)
	}

	api := g.apiRequests()
	tests := []struct {
		name       string
		got        seen
		method     string
		requestURI string
	}{
		{"trigger", api[0], http.MethodPost, "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest"},
		{"status", api[1], http.MethodGet, "/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest?requestId=3520"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Method != tt.method || tt.got.RequestURI != tt.requestURI {
				t.Errorf("got %s %s, want %s %s", tt.got.Method, tt.got.RequestURI, tt.method, tt.requestURI)
			}
			for h, want := range map[string]string{
				"Authorization": "Bearer access-token-1",
				"X-Api-Key":     testClientID,
				"Cache-Control": "no-cache",
				"Content-Type":  "application/json",
			} {
				if got := tt.got.Header.Get(h); got != want {
					t.Errorf("%s: got %q, want %q", h, got, want)
				}
			}
		})
	}

	t.Run("one cached token", func(t *testing.T) {
		tokens := g.tokenRequests()
		if len(tokens) != 1 {
			t.Fatalf("got %d token requests, want 1", len(tokens))
		}
		tok := tokens[0]
		for k, want := range map[string]string{
			"grant_type":    "client_credentials",
			"client_id":     testClientID,
			"client_secret": testSecret,
			"scope":         "openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk",
		} {
			if got := tok.Form.Get(k); got != want {
				t.Errorf("token form %s: got %q, want %q", k, got, want)
			}
		}
		if tok.Method != http.MethodPost || tok.Header.Get("Authorization") != "" {
			t.Errorf("token request: %s with Authorization %q", tok.Method, tok.Header.Get("Authorization"))
		}
		if ct := tok.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("token Content-Type %q", ct)
		}
	})
}

func TestAPIKeyDefaultsAndStaticToken(t *testing.T) {
	g := newGateway(t, answerWith(200, acceptedBody))
	c := g.client(t, func(cfg *campaign.Config) {
		cfg.IMS = campaign.IMSConfig{}
		cfg.APIKey = "explicit-key"
		cfg.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static-token"})
	})
	if _, err := c.Trigger(context.Background(), "acme", "XDM44"); err != nil {
		t.Fatal(err)
	}
	h := g.apiRequests()[0].Header
	if h.Get("Authorization") != "Bearer static-token" || h.Get("X-Api-Key") != "explicit-key" {
		t.Errorf("got Authorization %q, X-Api-Key %q", h.Get("Authorization"), h.Get("X-Api-Key"))
	}
	if n := len(g.tokenRequests()); n != 0 {
		t.Errorf("%d token requests with a TokenSource", n)
	}
}

// A mapping id, an organization or a request id never changes the path or
// the query: each is one escaped path segment (or the requestId value).
func TestHostileIDs(t *testing.T) {
	g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			writeBody(w, 200, acceptedBody)
			return
		}
		writeBody(w, 200, successBody)
	})
	c := g.client(t, nil)
	tests := []struct {
		name, org, mapping, requestID string
	}{
		{"dot dot slash", "acme", "../x", "3520"},
		{"slash", "acme", "a/b", "3520"},
		{"query and fragment", "acme", "a?b#c", "3520"},
		{"escaped slash", "acme", "%2F", "3520"},
		{"escaped dot dot", "acme", "%2E%2E", "3520"},
		{"climb to admin", "acme", "../../../_sim/faults", "3520"},
		{"space and unicode", "acme", "ma pping ü", "3520"},
		{"control characters", "acme", "a\r\nX-Evil: 1", "3520"},
		{"hostile org", "../../ims/token/v3?x=", "XDM44", "3520"},
		{"hostile request id", "acme", "XDM44", "1&requestId=2#frag"},
		{"dot in the middle", "acme", "a..b", "3520"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.apiRequests())
			ctx := context.Background()
			if _, err := c.Trigger(ctx, tt.org, tt.mapping); err != nil {
				t.Fatalf("Trigger: %v", err)
			}
			if _, err := c.Status(ctx, tt.org, tt.mapping, tt.requestID); err != nil {
				t.Fatalf("Status: %v", err)
			}
			reqs := g.apiRequests()[before:]
			if len(reqs) != 2 {
				t.Fatalf("server saw %d API requests, want 2", len(reqs))
			}
			for i, r := range reqs {
				segs := strings.Split(r.RawPath, "/")
				if len(segs) != 7 || segs[2] != "campaign" || segs[6] != "ingest" {
					t.Fatalf("%s path %q: not /{org}/campaign/dataIngestion/xdmIngestion/{id}/ingest", r.Method, r.RawPath)
				}
				org, err1 := url.PathUnescape(segs[1])
				id, err2 := url.PathUnescape(segs[5])
				if err1 != nil || err2 != nil || org != tt.org || id != tt.mapping {
					t.Errorf("%s: server saw org %q mapping %q, want %q %q", r.Method, org, id, tt.org, tt.mapping)
				}
				wantQuery := url.Values{}
				if i == 1 {
					wantQuery.Set("requestId", tt.requestID)
				}
				if r.Query.Encode() != wantQuery.Encode() {
					t.Errorf("%s: query %v, want %v", r.Method, r.Query, wantQuery)
				}
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	g := newGateway(t, answerWith(200, acceptedBody))
	c := g.client(t, nil)
	ctx := context.Background()
	tests := []struct {
		name                    string
		org, mapping, requestID string
		status                  bool // call Status rather than Trigger
	}{
		{"empty org", "", "XDM44", "", false},
		{"empty mapping", "acme", "", "", false},
		{"dot mapping", "acme", ".", "", false},
		{"dot dot mapping", "acme", "..", "", false},
		{"dot dot org", "..", "XDM44", "", false},
		{"empty request id", "acme", "XDM44", "", true},
		{"dot dot mapping on status", "acme", "..", "3520", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.status {
				_, err = c.Status(ctx, tt.org, tt.mapping, tt.requestID)
			} else {
				_, err = c.Trigger(ctx, tt.org, tt.mapping)
			}
			if !errors.Is(err, campaign.ErrInvalidArgument) || !campaign.Permanent(err) || campaign.Retryable(err) {
				t.Errorf("got %v; want a permanent ErrInvalidArgument", err)
			}
		})
	}
	if n := len(g.apiRequests()) + len(g.tokenRequests()); n != 0 {
		t.Errorf("%d requests sent for invalid arguments", n)
	}
}

// Credentials never go to another host: redirects there are refused, for
// API calls (Authorization, X-Api-Key) and for token requests (the client
// secret is in the body, which a 307/308 would resend).
func TestRedirects(t *testing.T) {
	var (
		mu        sync.Mutex
		elsewhere []seen
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		elsewhere = append(elsewhere, seen{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Form: r.PostForm})
		mu.Unlock()
		writeBody(w, 200, `{"access_token":"stolen","expires_in":3600,"requestId":1,"status":"Success"}`)
	}))
	t.Cleanup(other.Close)

	redirect := func(code int, to func(r *http.Request) string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to(r), code) }
	}
	toOther := func(r *http.Request) string { return other.URL + r.URL.RequestURI() }

	tests := []struct {
		name      string
		api       func(g *gateway) func(http.ResponseWriter, *http.Request, int)
		token     func(g *gateway) func(http.ResponseWriter, *http.Request)
		wantOp    string
		wantError bool
	}{
		{
			name: "api 307 to another host",
			api: func(*gateway) func(http.ResponseWriter, *http.Request, int) {
				h := redirect(http.StatusTemporaryRedirect, toOther)
				return func(w http.ResponseWriter, r *http.Request, _ int) { h(w, r) }
			},
			wantOp: campaign.OpTrigger, wantError: true,
		},
		{
			name: "api 302 to another host",
			api: func(*gateway) func(http.ResponseWriter, *http.Request, int) {
				h := redirect(http.StatusFound, toOther)
				return func(w http.ResponseWriter, r *http.Request, _ int) { h(w, r) }
			},
			wantOp: campaign.OpTrigger, wantError: true,
		},
		{
			name: "api 308 to the same host but https",
			api: func(g *gateway) func(http.ResponseWriter, *http.Request, int) {
				h := redirect(http.StatusPermanentRedirect, func(r *http.Request) string {
					return "https://" + r.Host + r.URL.RequestURI()
				})
				return func(w http.ResponseWriter, r *http.Request, _ int) { h(w, r) }
			},
			wantOp: campaign.OpTrigger, wantError: true,
		},
		{
			name: "token 307 to another host",
			api:  func(*gateway) func(http.ResponseWriter, *http.Request, int) { return answerWith(200, acceptedBody) },
			token: func(*gateway) func(http.ResponseWriter, *http.Request) {
				return redirect(http.StatusTemporaryRedirect, toOther)
			},
			wantOp: campaign.OpToken, wantError: true,
		},
		{
			name: "api 307 on the same host is followed",
			api: func(*gateway) func(http.ResponseWriter, *http.Request, int) {
				return func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 1 {
						http.Redirect(w, r, "/moved"+r.URL.RequestURI(), http.StatusTemporaryRedirect)
						return
					}
					writeBody(w, 200, acceptedBody)
				}
			},
			wantOp: campaign.OpTrigger, wantError: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, nil)
			g.answer = tt.api(g)
			if tt.token != nil {
				g.tokenAnswer = tt.token(g)
			}
			c := g.client(t, nil)
			_, err := c.Trigger(context.Background(), "acme", "XDM44")
			if !tt.wantError {
				if err != nil {
					t.Fatalf("Trigger: %v", err)
				}
				if h := g.apiRequests()[1].Header; h.Get("Authorization") == "" || h.Get("X-Api-Key") == "" {
					t.Errorf("same-host redirect lost its credentials: %v", h)
				}
				return
			}
			var e *campaign.APIError
			if !errors.As(err, &e) || e.Operation != tt.wantOp || !errors.Is(err, campaign.ErrRedirect) ||
				!campaign.Permanent(err) || campaign.Retryable(err) {
				t.Fatalf("got %v; want a permanent %s ErrRedirect", err, tt.wantOp)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(elsewhere) != 0 {
				t.Fatalf("the other host got %d requests: %+v", len(elsewhere), elsewhere)
			}
		})
	}
}

// After a 401 (or a 403 403010/403020) the client fetches exactly one fresh
// token and retries exactly once.
func TestUnauthorizedRetry(t *testing.T) {
	const (
		unauthorized = `{"error_code":"401013","message":"Oauth token is not valid"}`
		tokenMissing = `{"error_code":"403010","message":"Oauth token is missing"}`
		badKey       = `{"error_code":"403003","message":"Api Key is invalid"}`
	)
	firstThen := func(code int, body string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeBody(w, code, body)
				return
			}
			writeBody(w, 200, acceptedBody)
		}
	}
	static := func(cfg *campaign.Config) {
		cfg.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static-token"})
		cfg.APIKey = testClientID
	}
	tests := []struct {
		name         string
		answer       func(http.ResponseWriter, *http.Request, int)
		change       func(*campaign.Config)
		wantAPI      int
		wantTokens   int
		wantErr      func(error) bool
		wantLastAuth string
	}{
		{"401 once", firstThen(401, unauthorized), nil, 2, 2, nil, "Bearer access-token-2"},
		{"401 always", answerWith(401, unauthorized), nil, 2, 2, campaign.Unauthorized, "Bearer access-token-2"},
		{"403010 once", firstThen(403, tokenMissing), nil, 2, 2, nil, "Bearer access-token-2"},
		{"403010 always", answerWith(403, tokenMissing), nil, 2, 2, campaign.Unauthorized, "Bearer access-token-2"},
		{"403003 is not retried", answerWith(403, badKey), nil, 1, 1, campaign.Permanent, "Bearer access-token-1"},
		{"503 is not retried", answerWith(503, `{"error_code":"503000","message":"unavailable"}`), nil, 1, 1, campaign.Retryable, "Bearer access-token-1"},
		{"static token, 401 always", answerWith(401, unauthorized), static, 2, 0, campaign.Unauthorized, "Bearer static-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, tt.answer)
			c := g.client(t, tt.change)
			_, err := c.Trigger(context.Background(), "acme", "XDM44")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Trigger: %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("Trigger: unexpected error class: %v", err)
			}
			api, tokens := g.apiRequests(), g.tokenRequests()
			if len(api) != tt.wantAPI || len(tokens) != tt.wantTokens {
				t.Fatalf("got %d API and %d token requests, want %d and %d", len(api), len(tokens), tt.wantAPI, tt.wantTokens)
			}
			if got := api[len(api)-1].Header.Get("Authorization"); got != tt.wantLastAuth {
				t.Errorf("last Authorization %q, want %q", got, tt.wantLastAuth)
			}
		})
	}
}

// Concurrent calls that all meet a 401 with the same token share one fresh
// token.
func TestUnauthorizedConcurrentOneFreshToken(t *testing.T) {
	g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Header.Get("Authorization") == "Bearer access-token-1" {
			writeBody(w, 401, `{"error_code":"401013","message":"Oauth token is not valid"}`)
			return
		}
		writeBody(w, 200, successBody)
	})
	c := g.client(t, nil)
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Status(context.Background(), "acme", "XDM44", "3520")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Status: %v", err)
		}
	}
	if got := len(g.tokenRequests()); got != 2 {
		t.Errorf("got %d token requests, want 2", got)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name         string
		token        func(http.ResponseWriter, *http.Request)
		wantStatus   int
		wantCode     string
		retryable    bool
		unauthorized bool
		permanent    bool
		malformed    bool
		retryAfter   time.Duration
	}{
		{
			name: "invalid client echoing the secret",
			token: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 400, map[string]string{"error": "invalid_client",
					"error_description": "invalid client_secret parameter " + r.PostForm.Get("client_secret")})
			},
			wantStatus: 400, wantCode: "invalid_client", unauthorized: true, permanent: true,
		},
		{
			name: "invalid scope",
			token: func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 400, map[string]string{"error": "invalid_scope", "error_description": "invalid scope"})
			},
			wantStatus: 400, wantCode: "invalid_scope", unauthorized: true, permanent: true,
		},
		{
			name: "throttled",
			token: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "42")
				writeJSON(w, 429, map[string]string{"error": "too_many_requests"})
			},
			wantStatus: 429, wantCode: "too_many_requests", retryable: true, retryAfter: 42 * time.Second,
		},
		{
			name:       "unavailable",
			token:      func(w http.ResponseWriter, _ *http.Request) { writeBody(w, 503, "<html>down</html>") },
			wantStatus: 503, retryable: true,
		},
		{
			name:      "not json",
			token:     func(w http.ResponseWriter, _ *http.Request) { writeBody(w, 200, "<html>ok</html>") },
			retryable: true, malformed: true,
		},
		{
			name:      "no access token",
			token:     func(w http.ResponseWriter, _ *http.Request) { writeBody(w, 200, `{"token_type":"bearer"}`) },
			retryable: true, malformed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, answerWith(200, acceptedBody))
			g.tokenAnswer = tt.token
			c := g.client(t, nil)
			_, err := c.Trigger(context.Background(), "acme", "XDM44")
			var e *campaign.APIError
			if !errors.As(err, &e) || e.Operation != campaign.OpToken {
				t.Fatalf("got %v, want a token APIError", err)
			}
			if e.StatusCode != tt.wantStatus || e.ErrorCode != tt.wantCode || e.RetryAfter != tt.retryAfter {
				t.Errorf("got %+v", e)
			}
			if campaign.Retryable(err) != tt.retryable || campaign.Unauthorized(err) != tt.unauthorized ||
				campaign.Permanent(err) != tt.permanent || errors.Is(err, campaign.ErrMalformed) != tt.malformed {
				t.Errorf("classes of %v: retryable %v unauthorized %v permanent %v malformed %v", err,
					campaign.Retryable(err), campaign.Unauthorized(err), campaign.Permanent(err), errors.Is(err, campaign.ErrMalformed))
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the client secret: %v", err)
			}
			if n := len(g.apiRequests()); n != 0 {
				t.Errorf("%d API requests without a token", n)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		g := newGateway(t, answerWith(200, acceptedBody))
		cfg := g.config()
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		cfg.IMS.TokenURL = dead.URL + tokenPath
		c, err := campaign.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Trigger(context.Background(), "acme", "XDM44")
		var e *campaign.APIError
		if !errors.As(err, &e) || e.Operation != campaign.OpToken || !campaign.Retryable(err) || campaign.Permanent(err) {
			t.Errorf("got %v, want a retryable token error", err)
		}
	})
}

// Errors never hold the token, the client secret or the Authorization
// header, even when the server echoes them.
func TestErrorsRedactSecrets(t *testing.T) {
	g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		echo := "echo: Authorization: " + r.Header.Get("Authorization") + " secret " + testSecret
		if r.Method == http.MethodPost {
			writeJSON(w, 403, map[string]string{"error_code": "403023", "message": echo})
			return
		}
		writeBody(w, 502, "<html>"+echo+"</html>")
	})
	c := g.client(t, nil)
	for _, op := range []string{campaign.OpTrigger, campaign.OpStatus} {
		err := callOp(context.Background(), c, op, "acme", "XDM44")
		if err == nil {
			t.Fatalf("%s: no error", op)
		}
		for _, secret := range []string{"access-token-", testSecret} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error leaks %q: %v", op, secret, err)
			}
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		header   string
		min, max time.Duration
		ok       bool
	}{
		{"seconds", "7", 7 * time.Second, 7 * time.Second, true},
		{"zero", "0", 0, 0, false},
		{"http date an hour ahead", future, 58 * time.Minute, time.Hour, true},
		{"http date in the past", "Mon, 01 Jan 2001 00:00:00 GMT", 0, 0, false},
		{"garbage", "soon", 0, 0, false},
		{"negative", "-5", 0, 0, false},
		{"huge", "99999999999999999999", 24 * time.Hour, 24 * time.Hour, true},
		{"absent", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				writeBody(w, 429, `{"error_code":"429050","message":"Too many requests"}`)
			})
			_, err := g.client(t, nil).Trigger(context.Background(), "acme", "XDM44")
			if !campaign.Retryable(err) {
				t.Fatalf("429 not retryable: %v", err)
			}
			d, ok := campaign.RetryAfterOf(err)
			if ok != tt.ok || d < tt.min || d > tt.max {
				t.Errorf("RetryAfterOf = %v, %v; want %v in [%v, %v]", d, ok, tt.ok, tt.min, tt.max)
			}
		})
	}
}

func TestBodyCap(t *testing.T) {
	const limit = 1024
	pad := func(n int) string {
		// A valid answer of exactly n bytes.
		base := `{"requestId":3520,"info":"","status":"Success"}`
		return strings.Replace(base, `"info":""`, `"info":"`+strings.Repeat("x", n-len(base))+`"`, 1)
	}
	tests := []struct {
		name      string
		code      int
		body      string
		malformed bool
		retryable bool
	}{
		{"at the cap", 200, pad(limit), false, false},
		{"one byte over", 200, pad(limit + 1), true, true},
		{"far over", 200, pad(64 * limit), true, true},
		{"error answer over the cap", 503, strings.Repeat("x", 4*limit), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, answerWith(tt.code, tt.body))
			c := g.client(t, func(cfg *campaign.Config) { cfg.MaxBodyBytes = limit })
			_, err := c.Trigger(context.Background(), "acme", "XDM44")
			if errors.Is(err, campaign.ErrMalformed) != tt.malformed || campaign.Retryable(err) != tt.retryable {
				t.Errorf("got %v; want malformed %v retryable %v", err, tt.malformed, tt.retryable)
			}
			if tt.code != 200 {
				var e *campaign.APIError
				if !errors.As(err, &e) || e.StatusCode != tt.code || len(e.Message) > 512 {
					t.Errorf("got %v", err)
				}
			}
		})
	}
}

func TestMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not json", "<html>hello</html>"},
		{"no status", `{"requestId":3520}`},
		{"accepted without request id", `{"info":"…","status":"Success"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, answerWith(200, tt.body))
			_, err := g.client(t, nil).Trigger(context.Background(), "acme", "XDM44")
			var e *campaign.APIError
			if !errors.As(err, &e) || e.StatusCode != 200 || !errors.Is(err, campaign.ErrMalformed) || !campaign.Retryable(err) {
				t.Errorf("got %v; want a retryable ErrMalformed", err)
			}
		})
	}
}

// A request that outlives Config.Timeout is a retryable timeout; one whose
// caller gave up is not retryable.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	// hang answers nothing until the request ends; it signals its arrival.
	hang := func(arrived chan<- struct{}) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}
	// hangInBody sends the headers and part of the body, then hangs.
	hangInBody := func(arrived chan<- struct{}) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"requestId":`))
			w.(http.Flusher).Flush()
			hang(arrived)(w, r, n)
		}
	}
	tests := []struct {
		name      string
		answer    func(arrived chan<- struct{}) func(http.ResponseWriter, *http.Request, int)
		cancel    bool // the caller cancels once the request arrived
		retryable bool
		is        error
	}{
		{"no answer within the timeout", hang, false, true, context.DeadlineExceeded},
		{"body stalls past the timeout", hangInBody, false, true, context.DeadlineExceeded},
		{"caller cancels", hang, true, false, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			g := newGateway(t, tt.answer(arrived))
			timeout := 200 * time.Millisecond
			if tt.cancel {
				timeout = time.Minute
			}
			c := g.client(t, func(cfg *campaign.Config) {
				cfg.Timeout = timeout
				// No token request: only the API call can time out.
				cfg.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static-token"})
				cfg.APIKey = testClientID
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() {
					<-arrived
					cancel()
				}()
			}
			_, err := c.Status(ctx, "acme", "XDM44", "3520")
			var e *campaign.APIError
			if !errors.As(err, &e) || e.Operation != campaign.OpStatus || !errors.Is(err, tt.is) ||
				campaign.Retryable(err) != tt.retryable || campaign.Permanent(err) {
				t.Errorf("got %v; want an error that Is %v, retryable %v", err, tt.is, tt.retryable)
			}
		})
	}
}

// Every request, token requests included, goes through Config.Transport
// with its operation in its context.
func TestOperationInContext(t *testing.T) {
	g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			writeBody(w, 200, acceptedBody)
			return
		}
		writeBody(w, 200, successBody)
	})
	rec := &opRecorder{base: campaign.NewTransport(nil)}
	c := g.client(t, func(cfg *campaign.Config) { cfg.Transport = rec })
	ctx := context.Background()
	if _, err := c.Trigger(ctx, "acme", "XDM44"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, "acme", "XDM44", "3520"); err != nil {
		t.Fatal(err)
	}
	want := []string{"token POST /ims/token/v3", "trigger POST /acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest",
		"status GET /acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest"}
	if got := rec.list(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transport saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := campaign.Operation(context.Background()); got != "" {
		t.Errorf("Operation of a foreign context = %q", got)
	}
}

// opRecorder is a RoundTripper that records each request's operation, as a
// metrics wrapper would.
type opRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	ops  []string
}

func (o *opRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.ops = append(o.ops, campaign.Operation(r.Context())+" "+r.Method+" "+r.URL.Path)
	o.mu.Unlock()
	return o.base.RoundTrip(r)
}

func (o *opRecorder) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ops...)
}

func TestRateLimit(t *testing.T) {
	g := newGateway(t, answerWith(200, acceptedBody))
	c := g.client(t, func(cfg *campaign.Config) { cfg.RateLimit = rate.Every(time.Hour) })
	if _, err := c.Trigger(context.Background(), "acme", "XDM44"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	// The next slot is an hour away: a call whose deadline is sooner fails
	// without being sent, and is not retryable in that context.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Trigger(ctx, "acme", "XDM44")
	if err == nil || campaign.Retryable(err) || campaign.Permanent(err) {
		t.Errorf("second call: got %v; want a rate limit error", err)
	}
	if n := len(g.apiRequests()); n != 1 {
		t.Errorf("server saw %d API requests, want 1", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	creds := campaign.IMSConfig{ClientID: "id", ClientSecret: "secret"}
	insecure := campaign.NewTransport(nil)
	insecure.TLSClientConfig.InsecureSkipVerify = true
	tests := []struct {
		name string
		cfg  campaign.Config
	}{
		{"no credential", campaign.Config{}},
		{"no secret", campaign.Config{IMS: campaign.IMSConfig{ClientID: "id"}}},
		{"token source without api key", campaign.Config{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})}},
		{"base url with a query", campaign.Config{BaseURL: "https://mc.example/?a=b", IMS: creds}},
		{"base url with user info", campaign.Config{BaseURL: "https://u:p@mc.example", IMS: creds}},
		{"base url with a fragment", campaign.Config{BaseURL: "https://mc.example/#x", IMS: creds}},
		{"base url not http", campaign.Config{BaseURL: "ftp://mc.example", IMS: creds}},
		{"base url relative", campaign.Config{BaseURL: "/acme", IMS: creds}},
		{"token url not http", campaign.Config{IMS: campaign.IMSConfig{ClientID: "id", ClientSecret: "s", TokenURL: "file:///etc/passwd"}}},
		{"transport skips tls verification", campaign.Config{IMS: creds, Transport: insecure}},
		{"root CAs with a wrapped transport", campaign.Config{IMS: creds, Transport: &opRecorder{base: http.DefaultTransport}, RootCAs: x509Pool()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := campaign.New(tt.cfg); err == nil {
				t.Errorf("New accepted %+v", tt.cfg)
			}
		})
	}
	if _, err := campaign.New(campaign.Config{IMS: creds}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestBaseURLWithPath(t *testing.T) {
	g := newGateway(t, answerWith(200, acceptedBody))
	c := g.client(t, func(cfg *campaign.Config) { cfg.BaseURL = g.URL + "/gateway/" })
	if _, err := c.Trigger(context.Background(), "acme", "XDM44"); err != nil {
		t.Fatal(err)
	}
	if got, want := g.apiRequests()[0].RequestURI, "/gateway/acme/campaign/dataIngestion/xdmIngestion/XDM44/ingest"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// tokenSourceFunc is an oauth2.TokenSource made of a function.
type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// A caller's TokenSource that asks a token endpoint itself fails with an
// *oauth2.RetrieveError: it is classified like the client's own token
// requests, and its body (which may echo a secret) never reaches the error.
func TestTokenSourceErrors(t *testing.T) {
	const echo = "echo of client_secret=" + testSecret
	retrieve := func(code int, oauthErr string) error {
		return &oauth2.RetrieveError{
			Response:         &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {"9"}}},
			Body:             []byte(`{"error":"` + oauthErr + `","error_description":"` + echo + `"}`),
			ErrorCode:        oauthErr,
			ErrorDescription: echo,
		}
	}
	tests := []struct {
		name       string
		err        error
		wantClass  campaign.Class
		wantStatus int
		wantCode   string
	}{
		{"invalid client", retrieve(401, "invalid_client"), campaign.ClassUnauthorized, 401, "invalid_client"},
		{"server error", retrieve(500, "server_error"), campaign.ClassTransient, 500, "server_error"},
		{"unavailable", retrieve(503, ""), campaign.ClassTransient, 503, ""},
		{"throttled", retrieve(429, ""), campaign.ClassThrottled, 429, ""},
		{"wrapped invalid client", fmt.Errorf("vault: %w", retrieve(400, "invalid_client")), campaign.ClassUnauthorized, 400, "invalid_client"},
		{"other failure", errors.New("vault unreachable"), campaign.ClassTransient, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, answerWith(200, acceptedBody))
			c := g.client(t, func(cfg *campaign.Config) {
				cfg.APIKey = testClientID
				cfg.TokenSource = tokenSourceFunc(func() (*oauth2.Token, error) { return nil, tt.err })
			})
			_, err := c.Trigger(context.Background(), "acme", "XDM44")
			var e *campaign.APIError
			if !errors.As(err, &e) || e.Operation != campaign.OpToken {
				t.Fatalf("got %v, want a token APIError", err)
			}
			if got := campaign.Classify(err); got != tt.wantClass || e.StatusCode != tt.wantStatus || e.ErrorCode != tt.wantCode {
				t.Errorf("got class %v, status %d, code %q; want %v %d %q: %v", got, e.StatusCode, e.ErrorCode,
					tt.wantClass, tt.wantStatus, tt.wantCode, err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the token endpoint's body: %v", err)
			}
			if n := len(g.apiRequests()); n != 0 {
				t.Errorf("%d API requests without a token", n)
			}
		})
	}
}
