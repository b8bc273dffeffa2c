package statuspage

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Page is the status page: an index fed from JetStream and the handlers
// that render it.
type Page struct {
	cfg Config
	js  jetstream.JetStream
	log *slog.Logger
	ix  *Index
	kv  atomic.Pointer[jetstream.KeyValue]

	recordTTL, eventsMaxAge atomic.Int64 // time.Duration; 0 until read
	lastEventSeq            atomic.Uint64

	// stopping is closed when Run's context ends: live streams end.
	stopping chan struct{}
	stopOnce sync.Once
	// liveSlots bounds the live streams served at once.
	liveSlots chan struct{}
	now       func() time.Time
}

// MaxLiveStreams bounds the live-update streams served at once; more are
// answered 503 (the page still works, without live updates).
const MaxLiveStreams = 100

// New returns the page of cfg reading from js. Run feeds it.
func New(js jetstream.JetStream, cfg Config, log *slog.Logger) (*Page, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Page{
		cfg: cfg, js: js, log: log,
		ix:        NewIndex(cfg.maxJobs(), cfg.Org),
		stopping:  make(chan struct{}),
		liveSlots: make(chan struct{}, MaxLiveStreams),
		now:       time.Now,
	}, nil
}

// Index is the page's index of jobs.
func (p *Page) Index() *Index { return p.ix }

// Run reads JetStream into the index until ctx ends: the job bucket's
// records, the event stream's events, and the expiry of old jobs. It
// retries what fails (the bucket or the stream may not exist yet) with
// backoff. Live streams end when ctx ends.
func (p *Page) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.retry(ctx, "job records", p.watchRecords) })
	wg.Go(func() { p.retry(ctx, "events", p.readEvents) })
	wg.Go(func() { p.expire(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		p.stop()
	})
	wg.Wait()
}

func (p *Page) stop() { p.stopOnce.Do(func() { close(p.stopping) }) }

// Handlers are the page's routes, ServeMux patterns for
// worker.Options.Handlers: GET / (mappings), /jobs (jobs), /job (one job),
// /live (server-sent events) and /assets/ (stylesheet and script).
func (p *Page) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /{$}":     p.guard(p.mappings),
		"GET /jobs":    p.guard(p.jobs),
		"GET /job":     p.guard(p.job),
		"GET /live":    p.guard(p.live),
		"GET /assets/": p.guard(assets),
	}
}

// guard sets the security headers and resolves the organization a request
// may see: 403 when it may see none.
func (p *Page) guard(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("X-Frame-Options", "DENY")
		org, ok := p.cfg.scope(r.Header.Values)
		if !ok {
			hdr.Set("Cache-Control", "no-store")
			http.Error(w, "403 forbidden: this status page shows one organization, and the request names none it may see", http.StatusForbidden)
			return
		}
		h(w, r, org)
	})
}
