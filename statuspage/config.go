// Package statuspage serves the worker's read-only status page: every
// mapping seen with its last outcome, the jobs newest first with filters,
// one job's events and record, and live updates over server-sent events.
//
// The page is built from JetStream, not from the memory of the worker that
// serves it: a KV watcher on the job bucket (INGEST_JOBS) and an ordered
// consumer on the event stream (INGEST_EVENTS) feed an in-memory index of
// the newest jobs, so every replica converges on the same page. The index
// is bounded (Config.MaxJobs) and a request renders at most one page of
// rows. HTML comes from html/template; the stylesheet and the little
// script are embedded.
package statuspage

import (
	"fmt"
	"strings"

	"github.com/acme/campaign-ingest/ingest"
)

// Config is the status page's configuration. A program reads it from the
// environment as a field named Status of its configuration (prefix
// INGEST_), so that the variables are INGEST_STATUS_*.
type Config struct {
	// Page serves the page (INGEST_STATUS_PAGE); default true.
	Page bool `default:"true" desc:"serve the read-only status page on INGEST_HTTP_ADDR (/, /jobs, /job, /live)"`
	// Org fixes the page to one organization (INGEST_STATUS_ORG): it reads
	// only that organization's records and events, and shows nothing
	// else. Default empty: every organization.
	Org string `desc:"show only this organization on the status page (it reads only that organization's keys and events)"`
	// OrgHeader names a request header set by an authenticating proxy
	// (INGEST_STATUS_ORG_HEADER, e.g. X-Forwarded-Org): each request shows
	// only the organization it names, and a request without exactly one
	// valid organization in it is answered 403. Default empty: no header.
	OrgHeader string `split_words:"true" desc:"request header naming the one organization a request may see (set by an authenticating proxy); requests without it get 403"`
	// MaxJobs bounds the jobs the page keeps in memory, newest first
	// (INGEST_STATUS_MAX_JOBS); default 200000.
	MaxJobs int `split_words:"true" default:"200000" desc:"jobs the status page keeps in memory (the oldest are dropped)"`
}

// DefaultMaxJobs is MaxJobs' default.
const DefaultMaxJobs = 200_000

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Org != "" && !ingest.ValidOrganization(c.Org) {
		return fmt.Errorf("INGEST_STATUS_ORG=%q: not a valid organization", ingest.Bounded(c.Org, 80))
	}
	if c.OrgHeader != "" && !validHeaderName(c.OrgHeader) {
		return fmt.Errorf("INGEST_STATUS_ORG_HEADER=%q: not a header name", ingest.Bounded(c.OrgHeader, 80))
	}
	if c.MaxJobs < 0 {
		return fmt.Errorf("INGEST_STATUS_MAX_JOBS=%d: want 0 (the default) or more", c.MaxJobs)
	}
	return nil
}

func (c Config) maxJobs() int {
	if c.MaxJobs <= 0 {
		return DefaultMaxJobs
	}
	return c.MaxJobs
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_!#$%&'*+.^`|~", r)) {
			return false
		}
	}
	return true
}

// scope returns the one organization a request may see ("" for every
// organization), or false when it may see nothing; header returns a
// request header's values (http.Header.Values). With OrgHeader set, the
// request must carry exactly one value of it, a valid organization (and
// Org's, when Org is set too).
func (c Config) scope(header func(string) []string) (string, bool) {
	if c.OrgHeader == "" {
		return c.Org, true
	}
	vals := header(c.OrgHeader)
	if len(vals) != 1 || !ingest.ValidOrganization(vals[0]) {
		return "", false
	}
	if c.Org != "" && vals[0] != c.Org {
		return "", false
	}
	return vals[0], true
}
