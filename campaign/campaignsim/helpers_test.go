package campaignsim

import (
	"bytes"
	"cmp"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// epoch is where every fake clock starts.
var epoch = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a simulator behind a real HTTP server, on a fake clock, with a
// token of the first client (the demo client by default).
type env struct {
	t     *testing.T
	sim   *Server
	url   string
	http  *http.Client
	clock *fakeClock
	key   string // API key of the first client
	token string // a token of the first client
}

// newEnv starts a simulator with opts (Now is replaced by a fake clock) and
// the given mappings.
func newEnv(t *testing.T, opts Options, mappings ...Mapping) *env {
	t.Helper()
	clock := &fakeClock{t: epoch}
	opts.Now = clock.Now
	sim := New(opts)
	for _, m := range mappings {
		sim.PutMapping(m)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	e := &env{t: t, sim: sim, url: ts.URL, http: ts.Client(), clock: clock}
	e.key = DemoClientID
	if len(opts.Clients) > 0 {
		e.key = cmp.Or(opts.Clients[0].APIKey, opts.Clients[0].ID)
		e.token = e.issue(opts.Clients[0].ID)
	} else {
		e.token = e.issue(DemoClientID)
	}
	return e
}

func (e *env) issue(clientID string) string {
	e.t.Helper()
	tok, err := e.sim.IssueToken(clientID)
	if err != nil {
		e.t.Fatalf("IssueToken(%q): %v", clientID, err)
	}
	return tok
}

// response is an answer read in full.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request and reads the answer. A transport error fails the test.
func (e *env) do(method, path string, hdr http.Header, body string) response {
	e.t.Helper()
	r, err := e.try(method, path, hdr, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is do that returns the transport error.
func (e *env) try(method, path string, hdr http.Header, body string) (response, error) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header, b}, nil
}

// auth returns the headers of the first client, whose API key must be its
// id: its key and token.
func (e *env) auth() http.Header {
	return authHeader(e.key, e.token)
}

func authHeader(key, token string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set("X-Api-Key", key)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", "application/json")
	return h
}

func ingestPath(org, mapping string) string {
	return "/" + url.PathEscape(org) + "/campaign/dataIngestion/xdmIngestion/" + url.PathEscape(mapping) + "/ingest"
}

func (e *env) trigger(org, mapping string) response {
	e.t.Helper()
	return e.do(http.MethodPost, ingestPath(org, mapping), e.auth(), "")
}

func (e *env) status(org, mapping, requestID string) response {
	e.t.Helper()
	return e.do(http.MethodGet, ingestPath(org, mapping)+"?requestId="+url.QueryEscape(requestID), e.auth(), "")
}

// golden compares got with testdata/name byte for byte, or rewrites the
// file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("body differs from %s\n got: %q\nwant: %q", path, got, want)
	}
}
