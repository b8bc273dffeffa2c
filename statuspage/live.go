package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Live updates: GET /live streams server-sent events to a view. Events:
// "row" (a job row to insert or replace: key, t, html), "remove" (key),
// "rows" (the whole table body: html) and "refresh" (reload the job
// detail's content).
const (
	keepaliveEvery = 25 * time.Second
	writeTimeout   = 10 * time.Second
)

// liveURL is a view's live stream, stamped with the index's version read
// before the view's data: a stream that starts at another version first
// sends the whole view.
func liveURL(version uint64, params url.Values) string {
	return "/live?" + withParam(params, "v", strconv.FormatUint(version, 10)).Encode()
}

// live serves a view's live stream until the client leaves or the page
// stops.
func (p *Page) live(w http.ResponseWriter, r *http.Request, scope string) {
	q := r.URL.Query()
	view, ok := parseLive(q, scope)
	if !ok {
		http.Error(w, "400 bad request: unknown live view", http.StatusBadRequest)
		return
	}
	select {
	case p.liveSlots <- struct{}{}:
		defer func() { <-p.liveSlots }()
	default:
		http.Error(w, "503 service unavailable: too many live streams; reload later", http.StatusServiceUnavailable)
		return
	}
	sub := p.ix.subscribe()
	defer p.ix.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: http.NewResponseController(w)}
	stale := r.Header.Get("Last-Event-ID") != "" || q.Get("v") != strconv.FormatUint(p.ix.Version(), 10)
	if err := p.start(out, view, stale); err != nil {
		return
	}
	p.stream(r.Context(), out, sub, view)
}

// start opens a stream, with the whole view when the client's is stale.
func (p *Page) start(out *sseWriter, view liveView, stale bool) error {
	if _, err := out.w.Write([]byte("retry: 3000\n\n")); err != nil {
		return err
	}
	if stale {
		msgs, err := view.messages(p, nil, true)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := out.send(m); err != nil {
				return err
			}
		}
	}
	return out.flush()
}

// stream sends what changes, at most once per the view's interval.
func (p *Page) stream(ctx context.Context, out *sseWriter, sub *subscription, view liveView) {
	keepalive := time.NewTicker(keepaliveEvery)
	defer keepalive.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.stopping:
			return
		case <-keepalive.C:
			if out.comment() != nil {
				return
			}
			continue
		case <-sub.ready:
		}
		if wait := view.interval() - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.stopping:
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		keys, overflow := sub.take()
		msgs, err := view.messages(p, keys, overflow)
		if err != nil {
			p.log.Error("status page: live update", "err", err)
			return
		}
		for _, m := range msgs {
			if out.send(m) != nil {
				return
			}
		}
		if out.flush() != nil {
			return
		}
	}
}

// message is one server-sent event.
type message struct {
	event string
	data  any
}

// sseWriter writes server-sent events, each write bounded by writeTimeout.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	id int
}

func (s *sseWriter) send(m message) error {
	b, err := json.Marshal(m.data)
	if err != nil {
		return err
	}
	s.id++
	s.deadline()
	_, err = s.w.Write([]byte("id: " + strconv.Itoa(s.id) + "\nevent: " + m.event + "\ndata: " + string(b) + "\n\n"))
	return err
}

func (s *sseWriter) comment() error {
	s.deadline()
	if _, err := s.w.Write([]byte(": keepalive\n\n")); err != nil {
		return err
	}
	return s.flush()
}

func (s *sseWriter) flush() error {
	s.deadline()
	err := s.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

func (s *sseWriter) deadline() {
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // unsupported by some writers: then unbounded
}
