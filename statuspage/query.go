package statuspage

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// OutcomeRunning is the outcome filter of jobs that have not ended.
const OutcomeRunning = "running"

// Filter selects jobs; the zero Filter selects every job.
type Filter struct {
	Org, Mapping string
	// Outcome is "", OutcomeRunning or a terminal event type.
	Outcome string
	Reason  ingest.Reason
	// Text is searched in command, correlation and request ids.
	Text string
	// From and Until bound the job's time (First), inclusive.
	From, Until time.Time
}

// Match reports whether f selects j.
func (f Filter) Match(j *Job) bool {
	switch {
	case f.Org != "" && j.Org != f.Org,
		f.Mapping != "" && j.Mapping != f.Mapping,
		f.Reason != "" && j.Reason != f.Reason,
		!f.From.IsZero() && j.First.Before(f.From),
		!f.Until.IsZero() && j.First.After(f.Until):
		return false
	}
	switch f.Outcome {
	case "":
	case OutcomeRunning:
		if !j.Running() {
			return false
		}
	default:
		if string(j.Outcome) != f.Outcome {
			return false
		}
	}
	return f.Text == "" || strings.Contains(j.CommandID, f.Text) ||
		strings.Contains(j.CorrelationID, f.Text) || j.RequestID == f.Text
}

// Cursor is a place in the jobs' order: a page "before" it shows the jobs
// older than it.
type Cursor struct {
	First   time.Time
	Org, ID string
}

// CursorOf is the place of j.
func CursorOf(j Job) Cursor { return Cursor{First: j.First, Org: j.Org, ID: j.CommandID} }

// String encodes c for a URL.
func (c Cursor) String() string {
	s := strconv.FormatInt(c.First.UnixNano(), 10) + "\x00" + c.Org + "\x00" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// ParseCursor decodes a cursor written by String.
func ParseCursor(s string) (Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false
	}
	parts := strings.SplitN(string(b), "\x00", 3)
	if len(parts) != 3 {
		return Cursor{}, false
	}
	n, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return Cursor{}, false
	}
	return Cursor{First: time.Unix(0, n), Org: parts[1], ID: parts[2]}, true
}

// Jobs returns at most n jobs that f selects, newest first, older than
// before when it is not nil; more reports whether older ones match too.
func (ix *Index) Jobs(f Filter, before *Cursor, n int) (jobs []Job, more bool) {
	ix.read(func() {
		order := ix.order
		hi := len(order)
		if !f.Until.IsZero() {
			hi = sort.Search(hi, func(i int) bool { return order[i].First.After(f.Until) })
		}
		if before != nil {
			c := &Job{First: before.First, Org: before.Org, CommandID: before.ID}
			hi = min(hi, sort.Search(len(order), func(i int) bool { return cmpJobs(order[i], c) >= 0 }))
		}
		for i := hi - 1; i >= 0; i-- {
			j := order[i]
			if !f.From.IsZero() && j.First.Before(f.From) {
				break
			}
			if j.removed || !f.Match(j) {
				continue
			}
			if len(jobs) == n {
				more = true
				break
			}
			jobs = append(jobs, *j)
		}
	})
	return jobs, more
}
