package statuspage

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/publisher"
	"github.com/acme/campaign-ingest/worker"
)

// replica is a worker with its own status page, each on its own NATS
// connection, as ingest-worker runs them.
type replica struct {
	page *Page
	base string // http://<worker's HTTP address>
}

// cluster is an embedded NATS server, the simulator and the replicas
// started on them.
type cluster struct {
	t      *testing.T
	url    string
	simURL string
	js     jetstream.JetStream
	events *testenv.Events
}

func newCluster(t *testing.T, mappings ...campaignsim.Mapping) *cluster {
	t.Helper()
	ns := testenv.NATS(t)
	_, simURL := testenv.Simulator(t, mappings...)
	c := &cluster{t: t, url: ns.ClientURL(), simURL: simURL}
	_, c.js = testenv.Connect(t, c.url)
	c.events = testenv.RecordEvents(t, c.js)
	return c
}

// start starts a replica; it stops at the end of the test.
func (c *cluster) start(cfg Config) *replica {
	c.t.Helper()
	cfg.Page = true
	_, pjs := testenv.Connect(c.t, c.url)
	page, err := New(pjs, cfg, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { page.Run(ctx) })
	w, err := worker.New(ctx, testenv.WorkerConfig(c.url, c.simURL), worker.Options{Handlers: page.Handlers()})
	if err != nil {
		cancel()
		wg.Wait()
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	wg.Go(func() { done <- w.Run(ctx) })
	c.t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := <-done; err != nil {
			c.t.Errorf("worker ended with %v", err)
		}
	})
	return &replica{page: page, base: "http://" + w.HTTPAddr()}
}

// publish publishes a command as ingestctl does.
func (c *cluster) publish(org, mapping, id, correlation string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := ingest.Command{ID: id, Organization: org, MappingID: mapping, CorrelationID: correlation}
	if _, err := publisher.PublishCommand(ctx, c.js, cmd); err != nil {
		c.t.Fatal(err)
	}
}

// fetch GETs path from r.
func (r *replica) fetch(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var rowRE = regexp.MustCompile(`<tr data-key="[^"]*" data-t="\d+">\s*<th scope="row"><a href="[^"]*">([^<]*)</a></th>\s*<td><span class="state s-(\w+)">`)

// rows returns the command id and state of every row of a jobs page.
func rows(body string) map[string]string {
	out := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// waitRows polls r's jobs view until cond holds for its rows.
func (r *replica) waitRows(t *testing.T, what string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := r.fetch(t, "/jobs")
		got := rows(body)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; rows %v", what, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demoMappings are short versions of the simulator's demo mappings.
func demoMappings(org string) []campaignsim.Mapping {
	d := func(ms int) campaignsim.Duration { return campaignsim.Duration(time.Duration(ms) * time.Millisecond) }
	return []campaignsim.Mapping{
		{Org: org, ID: "XDM44", Script: campaignsim.Script{Outcome: campaignsim.OutcomeSuccess, Records: 15, Duration: d(1500)}},
		{Org: org, ID: "XDMFETCH", Script: campaignsim.Script{Outcome: campaignsim.OutcomeFetchFailure, Duration: d(300)}},
		{Org: org, ID: "XDMUPLOAD", Script: campaignsim.Script{Outcome: campaignsim.OutcomeUploadFailure, Duration: d(300)}},
		{Org: org, ID: "XDMABORT", Script: campaignsim.Script{Outcome: campaignsim.OutcomeAborted, Duration: d(300)}},
		{Org: org, ID: "XDMNEVER", Script: campaignsim.Script{Outcome: campaignsim.OutcomeNever}},
		{Org: org, ID: "XDMDRAFT", State: campaignsim.StateNotPublished},
	}
}

func contains(body string, want ...string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(body, w) {
			missing = append(missing, w)
		}
	}
	return missing
}
