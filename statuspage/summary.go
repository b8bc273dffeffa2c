package statuspage

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// FailureWindow is the window of MappingSummary.Failures: a day.
const FailureWindow = 24 * time.Hour

// MappingSummary is one mapping's line in the mappings view.
type MappingSummary struct {
	Org, Mapping string
	// Last is the mapping's newest job.
	Last Job
	// LastSuccess is when its last succeeded job finished (zero: none
	// held).
	LastSuccess time.Time
	// Failures counts its jobs that ended without success in the
	// FailureWindow before now.
	Failures int
	// Running counts its jobs that have not ended.
	Running int
	// Jobs counts its jobs held.
	Jobs int
}

// Key is the summary's identity in the page.
func (m MappingSummary) Key() string { return m.Org + "/" + m.Mapping }

// summaryCache keeps the last summaries computed, for one organization
// scope and one version of the index, for up to a minute (the failure
// window moves).
type summaryCache struct {
	mu      sync.Mutex
	org     string
	version uint64
	at      time.Time
	rows    []MappingSummary
}

func (c *summaryCache) get(org string, version uint64, now time.Time) ([]MappingSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil || c.org != org || c.version != version || now.Sub(c.at) > time.Minute || now.Before(c.at) {
		return nil, false
	}
	return c.rows, true
}

func (c *summaryCache) put(org string, version uint64, now time.Time, rows []MappingSummary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.org, c.version, c.at, c.rows = org, version, now, rows
}

// Mappings summarizes every mapping of the jobs held (of organization org
// only, when not empty), ordered by organization and mapping. The result is
// shared: callers must not modify it.
func (ix *Index) Mappings(org string, now time.Time) []MappingSummary {
	ix.mu.RLock()
	v := ix.version
	ix.mu.RUnlock()
	if rows, ok := ix.summaries.get(org, v, now); ok {
		return rows
	}
	var rows []MappingSummary
	ix.read(func() {
		v = ix.version
		rows = summarize(ix.order, org, now)
	})
	ix.summaries.put(org, v, now, rows)
	return rows
}

// summarize summarizes jobs, oldest first.
func summarize(jobs []*Job, org string, now time.Time) []MappingSummary {
	type key struct{ org, mapping string }
	byKey := map[key]*MappingSummary{}
	since := now.Add(-FailureWindow)
	for _, j := range jobs {
		if j.removed || org != "" && j.Org != org {
			continue
		}
		k := key{j.Org, j.Mapping}
		m := byKey[k]
		if m == nil {
			m = &MappingSummary{Org: j.Org, Mapping: j.Mapping}
			byKey[k] = m
		}
		m.Jobs++
		m.Last = *j
		switch {
		case j.Running():
			m.Running++
		case j.Outcome == ingest.EventSucceeded:
			if end := firstTime(j.FinishedAt, j.First); end.After(m.LastSuccess) {
				m.LastSuccess = end
			}
		case j.Failed():
			if !firstTime(j.FinishedAt, j.First).Before(since) {
				m.Failures++
			}
		}
	}
	rows := make([]MappingSummary, 0, len(byKey))
	for _, m := range byKey {
		rows = append(rows, *m)
	}
	slices.SortFunc(rows, func(a, b MappingSummary) int {
		if c := strings.Compare(a.Org, b.Org); c != 0 {
			return c
		}
		return strings.Compare(a.Mapping, b.Mapping)
	})
	return rows
}
