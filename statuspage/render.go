package statuspage

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

//go:embed templates/*.html
var templateFS embed.FS

// Bounds of the strings from outside shown by the page, in bytes.
const (
	shortLen = 64  // table cells: ids, status, codes
	longLen  = 512 // detail: info, detail, full ids
)

// TimeLayout is how the page writes times (UTC).
const TimeLayout = "2006-01-02 15:04:05Z"

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"short":          func(s string) string { return ingest.Bounded(s, shortLen) },
	"long":           func(s string) string { return ingest.Bounded(s, longLen) },
	"when":           when,
	"duration":       func(j Job) string { return formatDuration(j.Duration(time.Now())) },
	"eventTime":      func(ev ingest.Event) string { return when(time.Time(firstTimeOf(ev))) },
	"mappingJobsURL": mappingJobsURL,
}).ParseFS(templateFS, "templates/*.html"))

func firstTimeOf(ev ingest.Event) ingest.Time {
	if ev.Type.Terminal() && !ev.FinishedAt.IsZero() {
		return ev.FinishedAt
	}
	return ev.TriggeredAt
}

// when writes t in UTC, or a dash when t is zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(TimeLayout)
}

// formatDuration writes d to the millisecond under a second, to the tenth
// of a second under a minute, else to the second; a dash for 0.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func mappingJobsURL(org, mapping string) string {
	return "/jobs?" + url.Values{"org": {org}, "mapping": {mapping}}.Encode()
}

// chrome is what every view shows around its content.
type chrome struct {
	Title    string
	Nav      string
	Scope    string // the one organization shown, if any
	Live     string // the live stream's URL; empty for none
	LiveOff  string // why live updates are off, if they are
	Jobs     int
	Loading  bool
	PageSize int
	Bucket   string
	Stream   string
}

func (p *Page) chrome(title, nav, scope string) chrome {
	return chrome{
		Title: title, Nav: nav, Scope: scope, Jobs: p.ix.Len(), Loading: !p.ix.Loaded(),
		PageSize: PageSize, Bucket: layout.DefaultBucket, Stream: layout.EventStream,
	}
}

// render writes template name with data, or a 500 when it fails.
func (p *Page) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		p.log.Error("status page: render", "template", name, "err", err)
		http.Error(w, "500 internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fragment renders template name with data, for a live update.
func fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}
