package statuspage

import (
	"net/url"
	"time"
)

// liveView turns changed jobs into the messages of one view's stream.
type liveView interface {
	// messages returns what to send for the jobs changed; all: the
	// whole view (too many changed, or the client's view is stale).
	messages(p *Page, changed []jobKey, all bool) ([]message, error)
	// interval is the least time between two sends.
	interval() time.Duration
}

// parseLive reads the view of a live stream from its query; the
// organization is scope's when set.
func parseLive(q url.Values, scope string) (liveView, bool) {
	switch q.Get("view") {
	case "jobs":
		f, _, _, _, _ := parseFilter(q, scope)
		return jobsLive{f: f, scope: scope}, true
	case "mappings":
		return mappingsLive{scope: scope}, true
	case "job":
		org, id := q.Get("org"), q.Get("id")
		if id == "" || scope != "" && org != scope {
			return nil, false
		}
		return jobLive{k: jobKey{org, id}}, true
	}
	return nil, false
}

// jobsLive is the newest page of the jobs view: rows of jobs that match
// its filter are inserted or replaced, rows of jobs that no longer match
// are removed. Jobs out of scope are never mentioned.
type jobsLive struct {
	f     Filter
	scope string
}

type rowData struct {
	Key  string `json:"key,omitempty"`
	T    int64  `json:"t,omitempty"`
	HTML string `json:"html,omitempty"`
}

func (v jobsLive) interval() time.Duration { return 250 * time.Millisecond }

func (v jobsLive) messages(p *Page, changed []jobKey, all bool) ([]message, error) {
	if all {
		jobs, _ := p.ix.Jobs(v.f, nil, PageSize)
		html, err := fragment("jobRows", jobRows(jobs, p.now()))
		return []message{{"rows", rowData{HTML: html}}}, err
	}
	var msgs []message
	for _, k := range changed {
		if v.scope != "" && k.org != v.scope || v.f.Org != "" && k.org != v.f.Org {
			continue
		}
		j, ok := p.ix.Job(k.org, k.id)
		if !ok || !v.f.Match(&j) {
			msgs = append(msgs, message{"remove", rowData{Key: keyString(k.org, k.id)}})
			continue
		}
		html, err := fragment("jobRow", newJobRow(&j, p.now()))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, message{"row", rowData{Key: j.Key(), T: j.First.UnixNano(), HTML: html}})
	}
	return msgs, nil
}

// mappingsLive is the mappings view: the whole table, at most once a
// second.
type mappingsLive struct{ scope string }

func (v mappingsLive) interval() time.Duration { return time.Second }

func (v mappingsLive) messages(p *Page, changed []jobKey, all bool) ([]message, error) {
	if !all && !anyInScope(changed, v.scope) {
		return nil, nil
	}
	rows := p.ix.Mappings(v.scope, p.now())
	if len(rows) > MaxMappings {
		rows = rows[:MaxMappings]
	}
	html, err := fragment("mappingRows", mappingRows(rows))
	return []message{{"rows", rowData{HTML: html}}}, err
}

func anyInScope(keys []jobKey, scope string) bool {
	for _, k := range keys {
		if scope == "" || k.org == scope {
			return true
		}
	}
	return false
}

// jobLive is one job's detail: it is refreshed when the job changes.
type jobLive struct{ k jobKey }

func (v jobLive) interval() time.Duration { return 500 * time.Millisecond }

func (v jobLive) messages(_ *Page, changed []jobKey, all bool) ([]message, error) {
	if all {
		return []message{{"refresh", struct{}{}}}, nil
	}
	for _, k := range changed {
		if k == v.k {
			return []message{{"refresh", struct{}{}}}, nil
		}
	}
	return nil, nil
}
