package campaign_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/acme/campaign-ingest/campaign"
)

const (
	testClientID = "test-client-id"
	testSecret   = "test-client-secret-value"
	tokenPath    = "/ims/token/v3"
)

// seen is one request as a test server saw it.
type seen struct {
	Method     string
	RequestURI string
	RawPath    string // r.URL.EscapedPath()
	Query      url.Values
	Header     http.Header
	Form       url.Values // token requests only
}

// gateway is a test server with an IMS token endpoint (tokens
// "access-token-1", "access-token-2", … valid 86399 s) and an API whose
// answers the test scripts. It records every request.
type gateway struct {
	*httptest.Server

	// answer writes the API's answer to the n-th API request (1-based).
	answer func(w http.ResponseWriter, r *http.Request, n int)
	// tokenAnswer, if set, writes the token endpoint's answer instead.
	tokenAnswer func(w http.ResponseWriter, r *http.Request)

	mu     sync.Mutex
	api    []seen
	tokens []seen
}

// newGateway starts a gateway whose API answers with answer.
func newGateway(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *gateway {
	t.Helper()
	g := &gateway{answer: answer}
	g.Server = httptest.NewServer(g)
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seen{Method: r.Method, RequestURI: r.RequestURI, RawPath: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone()}
	if r.URL.Path == tokenPath {
		_ = r.ParseForm()
		s.Form = r.PostForm
		g.mu.Lock()
		g.tokens = append(g.tokens, s)
		n := len(g.tokens)
		g.mu.Unlock()
		if g.tokenAnswer != nil {
			g.tokenAnswer(w, r)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": fmt.Sprintf("access-token-%d", n), "token_type": "bearer", "expires_in": 86399,
		})
		return
	}
	g.mu.Lock()
	g.api = append(g.api, s)
	n := len(g.api)
	g.mu.Unlock()
	g.answer(w, r, n)
}

// apiRequests returns the API requests seen so far.
func (g *gateway) apiRequests() []seen {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]seen(nil), g.api...)
}

// tokenRequests returns the token requests seen so far.
func (g *gateway) tokenRequests() []seen {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]seen(nil), g.tokens...)
}

// config returns a client configuration for g.
func (g *gateway) config() campaign.Config {
	return campaign.Config{
		BaseURL: g.URL,
		IMS: campaign.IMSConfig{
			TokenURL:     g.URL + tokenPath,
			ClientID:     testClientID,
			ClientSecret: testSecret,
			Scopes:       []string{"openid", "AdobeID", "read_organizations", "additional_info.projectedProductContext", "campaign_sdk"},
		},
	}
}

// client returns a client for g, with cfg's changes applied.
func (g *gateway) client(t *testing.T, change func(*campaign.Config)) *campaign.Client {
	t.Helper()
	cfg := g.config()
	if change != nil {
		change(&cfg)
	}
	c, err := campaign.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeBody(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// answerWith answers every API request with code and body.
func answerWith(code int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { writeBody(w, code, body) }
}

const (
	acceptedBody = `{"requestId": 3520, "info": "Ingestion request submitted successfully for the Mapping ID: XDM44", "status": "Success"}`
	successBody  = `{"batchId": "", "info": "Mapping Id: XDM44. ", "numRecords": 15, "requestId": 3520, "status": "Success"}`
)

// callBoth runs Trigger or Status (op) against c and returns the error.
func callOp(ctx context.Context, c *campaign.Client, op, org, mapping string) error {
	if op == campaign.OpTrigger {
		_, err := c.Trigger(ctx, org, mapping)
		return err
	}
	_, err := c.Status(ctx, org, mapping, "3520")
	return err
}

// x509Pool returns an empty certificate pool.
func x509Pool() *x509.CertPool { return x509.NewCertPool() }
