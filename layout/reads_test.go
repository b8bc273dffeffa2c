package layout_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/testenv"
	"github.com/acme/campaign-ingest/layout"
)

// TestRecordReads reads many records at once with batched reads on: each
// read answers what a read of its own answers (a record, none for a key
// never written, deleted or purged, an error for a value that is no
// record), records are scoped by organization, and the reads went out in
// far fewer requests than there were reads. LoadLatest answers the same,
// each read a stream message get (answered by the stream's leader), never
// a direct get (answered by any replica).
func TestRecordReads(t *testing.T) {
	ns, nc, js, h := newTopology(t)
	ctx := context.Background()
	store := layout.NewStore(h.Jobs, js)
	rec := func(org, id string) ingest.Record {
		return ingest.Record{CommandID: id, Organization: org, MappingID: "XDM44", Phase: ingest.PhaseDone, Outcome: ingest.EventSucceeded}
	}
	for _, r := range []ingest.Record{rec("acme", "done"), rec("acme", "deleted"), rec("acme", "purged"), rec("globex", "theirs"), rec("acme", "with space")} {
		if err := store.Save(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Jobs.Delete(ctx, layout.RecordKey("acme", "deleted")); err != nil {
		t.Fatal(err)
	}
	if err := h.Jobs.Purge(ctx, layout.RecordKey("acme", "purged")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Jobs.Put(ctx, layout.RecordKey("acme", "garbled"), []byte("not a record")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		org, id string
		want    string // the record's command id; "" none
		wantErr bool
	}{
		{org: "acme", id: "done", want: "done"},
		{org: "acme", id: "with space", want: "with space"},
		{org: "acme", id: "never"},
		{org: "acme", id: "deleted"},
		{org: "acme", id: "purged"},
		{org: "acme", id: "garbled", wantErr: true},
		{org: "globex", id: "theirs", want: "theirs"},
		{org: "acme", id: "theirs"},
		{org: "globex", id: "done"},
	}
	if err := store.StartBatchedReads(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer store.StopBatchedReads()

	before := inMsgs(t, ns)
	const rounds = 50
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(tests))
	for range rounds {
		for _, tt := range tests {
			wg.Go(func() {
				got, err := store.Load(ctx, tt.org, tt.id)
				switch {
				case tt.wantErr && err == nil:
					errs <- fmt.Errorf("Load(%s, %q) = %+v, want an error", tt.org, tt.id, got)
				case !tt.wantErr && err != nil:
					errs <- fmt.Errorf("Load(%s, %q): %v", tt.org, tt.id, err)
				case tt.want == "" && got != nil:
					errs <- fmt.Errorf("Load(%s, %q) = %+v, want none", tt.org, tt.id, got)
				case tt.want != "" && (got == nil || got.CommandID != tt.want || got.Organization != tt.org):
					errs <- fmt.Errorf("Load(%s, %q) = %+v, want the record of %s/%q", tt.org, tt.id, got, tt.org, tt.want)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reads := rounds * len(tests)
	requests := inMsgs(t, ns) - before
	if requests > int64(reads)/4 {
		t.Errorf("%d reads took %d requests, want at most %d", reads, requests, reads/4)
	}

	// Stopped, reads go one per request, with the same answers.
	store.StopBatchedReads()
	for _, tt := range tests {
		got, err := store.Load(ctx, tt.org, tt.id)
		if (err != nil) != tt.wantErr || (got == nil) != (tt.want == "") {
			t.Errorf("stopped: Load(%s, %q) = %+v, %v", tt.org, tt.id, got, err)
		}
	}

	// From the leader: the same answers, one stream message get each.
	msgGets, err := nc.SubscribeSync("$JS.API.STREAM.MSG.GET.KV_INGEST_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	directGets, err := nc.SubscribeSync("$JS.API.DIRECT.GET.KV_INGEST_JOBS.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		got, err := store.LoadLatest(ctx, tt.org, tt.id)
		switch {
		case (err != nil) != tt.wantErr:
			t.Errorf("LoadLatest(%s, %q): %v", tt.org, tt.id, err)
		case tt.want == "" && got != nil:
			t.Errorf("LoadLatest(%s, %q) = %+v, want none", tt.org, tt.id, got)
		case tt.want != "" && (got == nil || got.CommandID != tt.want || got.Organization != tt.org):
			t.Errorf("LoadLatest(%s, %q) = %+v, want the record of %s/%q", tt.org, tt.id, got, tt.org, tt.want)
		}
	}
	// Our copies of the requests may come after the answers.
	deadline := time.Now().Add(5 * time.Second)
	n, _, _ := msgGets.Pending()
	for ; n < len(tests) && time.Now().Before(deadline); n, _, _ = msgGets.Pending() {
		time.Sleep(5 * time.Millisecond)
	}
	if n != len(tests) {
		t.Errorf("%d reads from the leader made %d stream message gets", len(tests), n)
	}
	if n, _, _ := directGets.Pending(); n != 0 {
		t.Errorf("reads from the leader made %d direct gets", n)
	}
}

// TestBatchedReadsFailures: a batch answered with an error status fails its
// reads at once, a batch without an answer fails them after the read
// timeout, and in both cases the next batch goes out and is answered.
func TestBatchedReadsFailures(t *testing.T) {
	_, nc, js, h := newTopology(t)
	ctx := context.Background()
	store := layout.NewStore(h.Jobs, js)
	const timeout = 300 * time.Millisecond
	if err := store.StartBatchedReads(ctx, 0, timeout); err != nil {
		t.Fatal(err)
	}
	defer store.StopBatchedReads()
	recreate := func() {
		t.Helper()
		if _, err := layout.Setup(ctx, js, layout.Topology{Create: true}); err != nil {
			t.Fatal(err)
		}
		if err := store.Save(ctx, ingest.Record{CommandID: "c1", Organization: "acme", Phase: ingest.PhaseDone}); err != nil {
			t.Fatal(err)
		}
		got, err := store.Load(ctx, "acme", "c1")
		if err != nil || got == nil || got.CommandID != "c1" {
			t.Fatalf("Load after the bucket came back = %+v, %v; want the record of c1", got, err)
		}
	}
	recreate()

	// No stream answers direct gets: the server says so (503).
	if err := js.DeleteKeyValue(ctx, layout.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got, err := store.Load(ctx, "acme", "c1"); err == nil {
		t.Fatalf("Load without a bucket = %+v, want an error", got)
	}
	if d := time.Since(start); d >= timeout {
		t.Errorf("Load without a bucket failed after %s, want an answer before the read timeout", d)
	}
	recreate()

	// Nothing answers: a subscriber takes the requests and drops them.
	if err := js.DeleteKeyValue(ctx, layout.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	sink, err := nc.Subscribe("$JS.API.DIRECT.GET.KV_"+layout.DefaultBucket, func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if got, err := store.Load(ctx, "acme", "c1"); err == nil {
		t.Fatalf("Load without an answer = %+v, want an error", got)
	}
	if d := time.Since(start); d < timeout || d > 10*timeout {
		t.Errorf("Load without an answer failed after %s, want about %s", d, timeout)
	}
	if err := sink.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	recreate()
}

// TestPrefetch: a prefetched read calls back once answered, and its Load
// answers from it only while it is of the same record, fresh and did not
// fail; otherwise Load reads again. Without batched reads nothing is
// prefetched.
func TestPrefetch(t *testing.T) {
	_, _, js, h := newTopology(t)
	ctx := context.Background()
	store := layout.NewStore(h.Jobs, js)
	if store.Prefetch("acme", "c1", func(*layout.Prefetch) { t.Error("called back without batched reads") }) {
		t.Fatal("Prefetch without batched reads reported a read")
	}
	if err := store.StartBatchedReads(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer store.StopBatchedReads()
	prefetch := func(org, id string) *layout.Prefetch {
		t.Helper()
		got := make(chan *layout.Prefetch, 2)
		if !store.Prefetch(org, id, func(p *layout.Prefetch) { got <- p }) {
			t.Fatalf("Prefetch(%s, %q) reported no read", org, id)
		}
		select {
		case p := <-got:
			return p
		case <-time.After(5 * time.Second):
			t.Fatalf("Prefetch(%s, %q) never called back", org, id)
		}
		return nil
	}
	none := prefetch("acme", "c1") // before the record exists
	if err := store.Save(ctx, ingest.Record{CommandID: "c1", Organization: "acme", Phase: ingest.PhaseDone}); err != nil {
		t.Fatal(err)
	}
	found := prefetch("acme", "c1")
	if store.Prefetch("", "c1", func(*layout.Prefetch) {}) {
		t.Error("Prefetch of an invalid organization reported a read")
	}

	tests := []struct {
		name     string
		pre      *layout.Prefetch
		org, id  string
		maxAge   time.Duration
		wantRead bool // the answer has the record
	}{
		{name: "answered with the record", pre: found, org: "acme", id: "c1", maxAge: time.Minute, wantRead: true},
		{name: "answered before the record: its answer stands while fresh", pre: none, org: "acme", id: "c1", maxAge: time.Minute},
		{name: "stale: read again", pre: none, org: "acme", id: "c1", maxAge: 0, wantRead: true},
		{name: "another command: read again", pre: none, org: "acme", id: "c2"},
		{name: "another organization: read again", pre: found, org: "globex", id: "c1"},
		{name: "none prefetched: read", pre: nil, org: "acme", id: "c1", maxAge: time.Minute, wantRead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.pre.Load(ctx, store, tt.org, tt.id, tt.maxAge)
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tt.wantRead {
				t.Errorf("Load(%s, %q) = %+v, want a record: %v", tt.org, tt.id, got, tt.wantRead)
			}
		})
	}

	// Reads stopped: nothing is prefetched.
	store.StopBatchedReads()
	if store.Prefetch("acme", "c1", func(*layout.Prefetch) {}) {
		t.Error("Prefetch after the reads stopped reported a read")
	}
}

// newTopology starts a server with the worker's streams and bucket and
// connects to it.
func newTopology(t *testing.T) (*server.Server, *nats.Conn, jetstream.JetStream, *layout.Handles) {
	t.Helper()
	ns := testenv.NATS(t)
	nc, js := testenv.Connect(t, ns.ClientURL())
	h, err := layout.Setup(context.Background(), js, layout.Topology{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return ns, nc, js, h
}

func inMsgs(t *testing.T, s *server.Server) int64 {
	t.Helper()
	v, err := s.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.InMsgs
}
