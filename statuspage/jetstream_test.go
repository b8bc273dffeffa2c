package statuspage

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/natsconn"
)

// TestReplicasShowTheSameJobs: two workers, each with its page; whichever
// runs a job, both pages show every job and its outcome, read from
// JetStream.
func TestReplicasShowTheSameJobs(t *testing.T) {
	c := newCluster(t, append(demoMappings("acme"), demoMappings("globex")...)...)
	a, b := c.start(Config{}), c.start(Config{})
	want := map[string]string{
		"ok-1": "succeeded", "ok-2": "succeeded", "fetch-1": "failed", "upload-1": "failed",
		"abort-1": "aborted", "draft-1": "rejected", "never-1": "running", "globex-1": "succeeded",
		"mismatch-1": "rejected",
	}
	mappings := map[string]string{
		"ok-1": "XDM44", "ok-2": "XDM44", "fetch-1": "XDMFETCH", "upload-1": "XDMUPLOAD",
		"abort-1": "XDMABORT", "draft-1": "XDMDRAFT", "never-1": "XDMNEVER", "globex-1": "XDM44",
	}
	for id, mapping := range mappings {
		org := "acme"
		if strings.HasPrefix(id, "globex") {
			org = "globex"
		}
		c.publish(org, mapping, id, "etl-"+id)
	}
	// Rejected before it ran: no record, only its event.
	if _, err := c.js.Publish(context.Background(), "ingest.commands.acme.XDM44", []byte(`{"id":"mismatch-1","mappingId":"XDMOTHER"}`)); err != nil {
		t.Fatal(err)
	}
	for id, state := range want {
		if state != "running" {
			c.events.Terminal(t, id, 20*time.Second)
		}
	}
	for name, r := range map[string]*replica{"a": a, "b": b} {
		r.waitRows(t, "replica "+name+" shows every outcome", func(got map[string]string) bool { return maps.Equal(got, want) })
	}

	// One job's detail: its events in order and its record, on either page.
	status, body := b.fetch(t, "/job?org=acme&id=upload-1")
	if status != 200 {
		t.Fatalf("GET /job: %d", status)
	}
	if missing := contains(body, `<span class="state s-triggered">triggered</span>`, `<span class="state s-failed">failed</span>`,
		"upload_failed", "ACP-880096", "etl-upload-1", `&#34;phase&#34;: &#34;done&#34;`); len(missing) > 0 {
		t.Errorf("the detail of upload-1 lacks %q", missing)
	}
	if i, j := strings.Index(body, "s-triggered"), strings.LastIndex(body, "s-failed"); i < 0 || j < i {
		t.Error("the events are not in order")
	}
	// Refused at its trigger, it kept no state: its event tells all.
	_, body = a.fetch(t, "/job?org=acme&id=draft-1")
	if missing := contains(body, "mapping_not_published", `<span class="state s-rejected">rejected</span>`); len(missing) > 0 {
		t.Errorf("the detail of a rejected job lacks %q", missing)
	}
	_, body = a.fetch(t, "/job?org=acme&id=mismatch-1")
	// A rejection records its id as done (so that the id cannot run again).
	if missing := contains(body, "subject_mismatch", "&#34;outcome&#34;: &#34;rejected&#34;"); len(missing) > 0 {
		t.Errorf("the detail of a rejected job lacks %q", missing)
	}
	if status, _ := a.fetch(t, "/job?org=acme&id=nope"); status != 404 {
		t.Errorf("an unknown job: %d, want 404", status)
	}

	// The mappings view of either page.
	_, body = a.fetch(t, "/")
	if missing := contains(body, "XDMFETCH", "globex", `<span class="state s-running">yes, 1</span>`, `<td class="num">15</td>`); len(missing) > 0 {
		t.Errorf("the mappings view lacks %q", missing)
	}
}

// TestFixedOrganizationReadsOnlyItsOwn: a page fixed to one organization
// holds none of another's jobs.
func TestFixedOrganizationReadsOnlyItsOwn(t *testing.T) {
	c := newCluster(t, append(demoMappings("acme"), demoMappings("globex")...)...)
	r := c.start(Config{Org: "globex"})
	c.publish("acme", "XDMFETCH", "acme-1", "")
	c.publish("globex", "XDMFETCH", "globex-1", "")
	c.events.Terminal(t, "acme-1", 20*time.Second)
	r.waitRows(t, "globex's job", func(got map[string]string) bool { return got["globex-1"] == "failed" })
	if _, ok := r.page.ix.Job("acme", "acme-1"); ok || r.page.ix.Len() != 1 {
		t.Errorf("the page fixed to globex holds %d jobs", r.page.ix.Len())
	}
	if status, _ := r.fetch(t, "/job?org=acme&id=acme-1"); status != 404 {
		t.Errorf("acme's job on globex's page: %d, want 404", status)
	}
}

// TestMount: ingest-worker's mount of the page, on and off.
func TestMount(t *testing.T) {
	ns := testenv.NATS(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		cfg    Config
		url    string
		routes int
	}{
		{"on", Config{Page: true}, ns.ClientURL(), 5},
		{"off", Config{Page: false}, ns.ClientURL(), 0},
		{"no NATS URL: the worker says why", Config{Page: true}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, stop, err := Mount(ctx, tt.cfg, natsconn.Config{URL: tt.url}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if len(routes) != tt.routes {
				t.Errorf("%d routes, want %d", len(routes), tt.routes)
			}
		})
	}
	if _, _, err := Mount(ctx, Config{Page: true, Org: "Not An Org"}, natsconn.Config{URL: ns.ClientURL()}, nil); err == nil {
		t.Error("an invalid configuration was mounted")
	}
}
