package statuspage

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// PageSize is the rows of one page of jobs.
const PageSize = 100

// MaxMappings bounds the rows of the mappings view.
const MaxMappings = 2000

type mappingsView struct {
	chrome
	Rows      []mappingRow
	Truncated int
}

// mappings serves the mappings view.
func (p *Page) mappings(w http.ResponseWriter, r *http.Request, scope string) {
	ver := p.ix.Version()
	v := mappingsView{chrome: p.chrome("Mappings", "mappings", scope)}
	ms := p.ix.Mappings(scope, p.now())
	if n := len(ms); n > MaxMappings {
		ms, v.Truncated = ms[:MaxMappings], n-MaxMappings
	}
	v.Rows = mappingRows(ms)
	v.Live = liveURL(ver, url.Values{"view": {"mappings"}})
	p.render(w, http.StatusOK, "mappings", v)
}

type jobsView struct {
	chrome
	F                 Filter
	From, Until       string
	FromErr, UntilErr string
	Caption           string
	Rows              []jobRow
	NewestURL         string
	OlderURL          string
	Orgs, Mappings    []string
	Outcomes          []string
	Reasons           []ingest.Reason
}

// jobs serves the jobs view: a page of jobs, newest first.
func (p *Page) jobs(w http.ResponseWriter, r *http.Request, scope string) {
	ver := p.ix.Version()
	q := r.URL.Query()
	v := jobsView{chrome: p.chrome("Jobs", "jobs", scope), Outcomes: outcomeChoices(), Reasons: ingest.Reasons}
	v.F, v.From, v.Until, v.FromErr, v.UntilErr = parseFilter(q, scope)
	var before *Cursor
	if c, ok := ParseCursor(q.Get("before")); ok {
		before = &c
	}
	jobs, more := p.ix.Jobs(v.F, before, PageSize)
	v.Rows = jobRows(jobs, p.now())
	v.Caption = jobsCaption(before != nil)
	params := filterParams(v.F, v.From, v.Until, scope)
	if before != nil {
		v.NewestURL = "/jobs?" + params.Encode()
		v.LiveOff = "Live updates are on for the newest jobs only."
	} else {
		v.Live = liveURL(ver, withParam(params, "view", "jobs"))
	}
	if more {
		v.OlderURL = "/jobs?" + withParam(params, "before", CursorOf(jobs[len(jobs)-1]).String()).Encode()
	}
	v.Orgs, v.Mappings = choices(p.ix.Mappings(scope, p.now()))
	p.render(w, http.StatusOK, "jobs", v)
}

func jobsCaption(older bool) string {
	s := "Jobs, newest first, up to " + strconv.Itoa(PageSize) + " a page"
	if older {
		s += " (an older page)"
	}
	return s
}

// parseFilter reads a filter from a query; invalid values are ignored,
// and an invalid time is explained. The organization is scope's when set.
func parseFilter(q url.Values, scope string) (f Filter, from, until, fromErr, untilErr string) {
	f.Org = bounded(q.Get("org"), 63)
	if scope != "" {
		f.Org = scope
	}
	f.Mapping = bounded(q.Get("mapping"), 128)
	f.Text = bounded(q.Get("q"), 256)
	if o := q.Get("outcome"); validOutcome(o) {
		f.Outcome = o
	}
	if r := ingest.Reason(q.Get("reason")); validReason(r) {
		f.Reason = r
	}
	from, until = bounded(q.Get("from"), 40), bounded(q.Get("until"), 40)
	var ok bool
	if f.From, ok = parseTime(from); !ok {
		fromErr = "not a date and time: ignored"
	}
	if f.Until, ok = parseTime(until); !ok {
		untilErr = "not a date and time: ignored"
	}
	return f, from, until, fromErr, untilErr
}

// filterParams is the query of f, for links.
func filterParams(f Filter, from, until, scope string) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	if scope == "" {
		set("org", f.Org)
	}
	set("mapping", f.Mapping)
	set("outcome", f.Outcome)
	set("reason", string(f.Reason))
	set("q", f.Text)
	if !f.From.IsZero() {
		set("from", from)
	}
	if !f.Until.IsZero() {
		set("until", until)
	}
	return v
}

func withParam(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = vals
	}
	out.Set(k, val)
	return out
}

// parseTime reads a datetime-local value (UTC) or RFC 3339; an empty
// value is the zero time.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999", time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func outcomeChoices() []string {
	out := []string{OutcomeRunning}
	for _, t := range ingest.EventTypes {
		if t.Terminal() {
			out = append(out, string(t))
		}
	}
	return out
}

func validOutcome(s string) bool {
	for _, o := range outcomeChoices() {
		if s == o {
			return true
		}
	}
	return false
}

func validReason(r ingest.Reason) bool {
	for _, v := range ingest.Reasons {
		if r == v {
			return true
		}
	}
	return false
}

// bounded cuts a query value to n bytes of printable UTF-8.
func bounded(s string, n int) string {
	if s == "" {
		return ""
	}
	return ingest.Bounded(s, n)
}

// maxChoices bounds the suggestions of the filter inputs.
const maxChoices = 500

// choices returns the organizations and mapping ids of rows, each once, at
// most maxChoices of each, for the filter inputs' suggestions.
func choices(rows []MappingSummary) (orgs, mappings []string) {
	seen := map[string]bool{}
	for _, m := range rows {
		if len(orgs) < maxChoices && !seen["o"+m.Org] {
			seen["o"+m.Org] = true
			orgs = append(orgs, m.Org)
		}
		if len(mappings) < maxChoices && !seen["m"+m.Mapping] {
			seen["m"+m.Mapping] = true
			mappings = append(mappings, m.Mapping)
		}
	}
	return orgs, mappings
}
