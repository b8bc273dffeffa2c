package statuspage

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/acme/campaign-ingest/ingest"
)

// serve serves a page without JetStream (its index is filled by the
// test) and stops it at the end of the test.
func serve(t *testing.T, cfg Config) (*Page, *httptest.Server) {
	t.Helper()
	cfg.Page = true
	p, err := New(nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.ix.setLoaded(true, true)
	mux := http.NewServeMux()
	for pattern, h := range p.Handlers() {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { p.stop(); srv.Close() })
	return p, srv
}

func get(t *testing.T, srv *httptest.Server, path string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Add(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func twoTenants(p *Page) {
	p.ix.PutEvent(event(ingest.EventSucceeded, "acme", "acme-job-1", "XDM44", func(e *ingest.Event) {
		e.NumRecords, e.TriggeredAt, e.FinishedAt = 15, itime(1), itime(2)
	}), at(2))
	p.ix.PutEvent(event(ingest.EventFailed, "globex", "globex-secret-job", "XDMG", func(e *ingest.Event) {
		e.Reason, e.TriggeredAt, e.FinishedAt = ingest.ReasonFetchFailed, itime(1), itime(3)
	}), at(3))
}

func TestTenantViews(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		header map[string]string
		status int
		shows  []string
		hides  []string
	}{
		{name: "no tenant config shows every organization", status: 200,
			shows: []string{"acme-job-1", "globex-secret-job"}},
		{name: "fixed organization", cfg: Config{Org: "acme"}, status: 200,
			shows: []string{"acme-job-1"}, hides: []string{"globex"}},
		{name: "header names the organization", cfg: Config{OrgHeader: "X-Forwarded-Org"},
			header: map[string]string{"X-Forwarded-Org": "globex"}, status: 200,
			shows: []string{"globex-secret-job"}, hides: []string{"acme-job-1"}},
		{name: "header missing", cfg: Config{OrgHeader: "X-Forwarded-Org"}, status: 403, hides: []string{"job"}},
		{name: "header not an organization", cfg: Config{OrgHeader: "X-Forwarded-Org"},
			header: map[string]string{"X-Forwarded-Org": "acme, globex"}, status: 403, hides: []string{"job"}},
		{name: "header and fixed organization disagree", cfg: Config{Org: "acme", OrgHeader: "X-Forwarded-Org"},
			header: map[string]string{"X-Forwarded-Org": "globex"}, status: 403, hides: []string{"job"}},
		{name: "header and fixed organization agree", cfg: Config{Org: "acme", OrgHeader: "X-Forwarded-Org"},
			header: map[string]string{"X-Forwarded-Org": "acme"}, status: 200, shows: []string{"acme-job-1"}, hides: []string{"globex"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv := serve(t, tt.cfg)
			twoTenants(p)
			// The org parameter cannot widen a tenant's view.
			for _, path := range []string{"/", "/jobs", "/jobs?org=globex", "/jobs?org=acme", "/assets/status.css"} {
				status, _, body := get(t, srv, path, tt.header)
				if status != tt.status {
					t.Errorf("GET %s: %d, want %d", path, status, tt.status)
				}
				if strings.HasPrefix(path, "/assets") {
					continue
				}
				for _, s := range tt.hides {
					if strings.Contains(body, s) {
						t.Errorf("GET %s shows %q", path, s)
					}
				}
				if path == "/" || path == "/jobs" {
					for _, s := range tt.shows {
						if !strings.Contains(body, s) {
							t.Errorf("GET %s does not show %q", path, s)
						}
					}
				}
			}
		})
	}
}

func TestTenantCannotOpenAnotherOrganizationsJob(t *testing.T) {
	p, srv := serve(t, Config{OrgHeader: "X-Forwarded-Org"})
	twoTenants(p)
	h := map[string]string{"X-Forwarded-Org": "acme"}
	if status, _, body := get(t, srv, "/job?org=globex&id=globex-secret-job", h); status != 404 || strings.Contains(body, "fetch_failed") {
		t.Errorf("another organization's job: %d", status)
	}
	if status, _, _ := get(t, srv, "/live?view=job&org=globex&id=globex-secret-job", h); status != 400 {
		t.Errorf("another organization's job's live stream: %d, want 400", status)
	}
}

func TestPageEscapesAndBoundsStrings(t *testing.T) {
	p, srv := serve(t, Config{})
	evil := `<script>alert("x")</script>` + strings.Repeat("A", 300)
	p.ix.PutEvent(event(ingest.EventFailed, "acme", evil, "XDM44", func(e *ingest.Event) {
		e.Reason, e.ErrorCode, e.Info, e.FinishedAt = ingest.ReasonIngestionFailed, `"><img src=x onerror=alert(1)>`, strings.Repeat("i", 5000), itime(1)
		e.CorrelationID = "\x1b[31mred\u202e"
	}), at(1))
	status, hdr, body := get(t, srv, "/jobs", nil)
	if status != 200 {
		t.Fatalf("GET /jobs: %d", status)
	}
	for _, bad := range []string{"<script>alert", "<img src=x", "\x1b", "\u202e", strings.Repeat("i", longLen)} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert") || !strings.Contains(body, "AAA…</a></th>") {
		t.Error("the escaped id is not shown, or not bounded")
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
}

func TestJobsViewPagesAndFilters(t *testing.T) {
	p, srv := serve(t, Config{})
	fill(p.ix, 150)
	_, _, body := get(t, srv, "/jobs", nil)
	if n := strings.Count(body, "<tr data-key="); n != PageSize {
		t.Fatalf("the first page has %d rows, want %d", n, PageSize)
	}
	older := between(body, `<a href="`, `" rel="next">Older jobs`)
	if older == "" || !strings.Contains(body, "data-live=") {
		t.Fatal("the first page has no older link or no live stream")
	}
	_, _, body = get(t, srv, strings.ReplaceAll(older, "&amp;", "&"), nil)
	if n := strings.Count(body, "<tr data-key="); n != 50 || strings.Contains(body, "Older jobs") || strings.Contains(body, "data-live=") {
		t.Errorf("the second page has %d rows, an older link or a live stream", n)
	}
	if !strings.Contains(body, "c0000") || strings.Contains(body, "c0149") {
		t.Error("the second page does not hold the oldest jobs")
	}

	q := url.Values{"outcome": {"failed"}, "mapping": {"XDMFETCH"}, "from": {"2026-12-01T02:00:30"}, "until": {"yesterday"}}
	_, _, body = get(t, srv, "/jobs?"+q.Encode(), nil)
	if n := strings.Count(body, "<tr data-key="); n != 32 { // multiples of 3 but not 5 from 30 to 149
		t.Errorf("the filtered page has %d rows, want 32", n)
	}
	if !strings.Contains(body, `<option value="failed" selected>`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Error("the filter form does not show the filter, or accepts an invalid time")
	}
}

func TestMappingsView(t *testing.T) {
	p, srv := serve(t, Config{})
	_, _, body := get(t, srv, "/", nil)
	if !strings.Contains(body, "No job seen yet.") {
		t.Error("the empty mappings view says nothing")
	}
	fill(p.ix, 30)
	_, _, body = get(t, srv, "/", nil)
	for _, s := range []string{`<th scope="row"><a href="/jobs?mapping=XDMFETCH&amp;org=acme">XDMFETCH</a></th>`, "<caption", `scope="col"`, "yes, 6"} {
		if !strings.Contains(body, s) {
			t.Errorf("the mappings view does not hold %q", s)
		}
	}
}

func TestAssets(t *testing.T) {
	_, srv := serve(t, Config{})
	for _, name := range []string{"status.css", "status.js"} {
		status, hdr, body := get(t, srv, "/assets/"+name, nil)
		if status != 200 || hdr.Get("ETag") == "" || len(body) < 100 {
			t.Fatalf("GET %s: %d, ETag %q", name, status, hdr.Get("ETag"))
		}
		if status, _, _ := get(t, srv, "/assets/"+name, map[string]string{"If-None-Match": hdr.Get("ETag")}); status != 304 {
			t.Errorf("GET %s again: %d, want 304", name, status)
		}
	}
	if status, _, _ := get(t, srv, "/assets/nope.js", nil); status != 404 {
		t.Errorf("an unknown asset: %d", status)
	}
}

func TestLiveStream(t *testing.T) {
	p, srv := serve(t, Config{OrgHeader: "X-Forwarded-Org"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live?view=jobs&outcome=succeeded&v=0", nil)
	req.Header.Set("X-Forwarded-Org", "acme")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /live: %d %s", resp.StatusCode, ct)
	}
	twoTenants(p) // a globex job changes too: it must not be mentioned
	p.ix.PutRecord(rec("acme", "acme-running", "XDM44", ingest.PhaseRunning), at(5))
	r := bufio.NewReader(resp.Body)
	var event string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		if strings.Contains(line, "globex") {
			t.Fatalf("the stream mentions another organization: %s", line)
		}
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = strings.TrimSpace(e)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
		case event == "remove" && strings.Contains(data, "acme-running"): // running: not succeeded
		case event == "row" && strings.Contains(data, "acme-job-1") && strings.Contains(data, `\u003ctr data-key=`):
			return
		default:
			t.Fatalf("unexpected message %s: %s", event, data)
		}
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want Config
		err  bool
	}{
		{env: nil, want: Config{Page: true, MaxJobs: DefaultMaxJobs}},
		{env: map[string]string{"INGEST_STATUS_PAGE": "false"}, want: Config{Page: false, MaxJobs: DefaultMaxJobs}},
		{env: map[string]string{"INGEST_STATUS_ORG": "acme", "INGEST_STATUS_ORG_HEADER": "X-Forwarded-Org", "INGEST_STATUS_MAX_JOBS": "5000"},
			want: Config{Page: true, Org: "acme", OrgHeader: "X-Forwarded-Org", MaxJobs: 5000}},
		{env: map[string]string{"INGEST_STATUS_ORG": "ACME"}, err: true},
		{env: map[string]string{"INGEST_STATUS_ORG_HEADER": "X Org"}, err: true},
		{env: map[string]string{"INGEST_STATUS_MAX_JOBS": "-1"}, err: true},
	}
	for _, tt := range tests {
		for _, k := range []string{"INGEST_STATUS_PAGE", "INGEST_STATUS_ORG", "INGEST_STATUS_ORG_HEADER", "INGEST_STATUS_MAX_JOBS"} {
			v, ok := tt.env[k]
			if !ok {
				t.Setenv(k, "")
				os.Unsetenv(k)
				continue
			}
			t.Setenv(k, v)
		}
		var cfg struct{ Status Config }
		if err := envconfig.Process("ingest", &cfg); err != nil {
			t.Fatal(err)
		}
		err := cfg.Status.Validate()
		if (err != nil) != tt.err || !tt.err && cfg.Status != tt.want {
			t.Errorf("%v: %+v, %v; want %+v, error %v", tt.env, cfg.Status, err, tt.want, tt.err)
		}
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, end)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(s[:i], start)
	if j < 0 {
		return ""
	}
	return s[j+len(start) : i]
}
