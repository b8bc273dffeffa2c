package statuspage

import (
	"slices"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/ingest"
)

// Index holds the newest jobs in memory, merged from records and events,
// ordered by their first time. It is safe for concurrent use.
type Index struct {
	max int
	// org, when set, is the only organization admitted.
	org string

	mu    sync.RWMutex
	jobs  map[jobKey]*Job
	order []*Job // by cmpJobs ascending when !dirty; may hold removed jobs until sorted
	dirty bool
	subs  map[*subscription]struct{}

	recordsLoaded, eventsLoaded bool
	version                     uint64
	summaries                   summaryCache
}

// NewIndex returns an index of at most max jobs (about: it trims by 1 %
// at once), admitting only organization org when org is not empty.
func NewIndex(max int, org string) *Index {
	return &Index{max: max, org: org, jobs: map[jobKey]*Job{}, subs: map[*subscription]struct{}{}}
}

// PutRecord merges a job record written at at.
func (ix *Index) PutRecord(rec *ingest.Record, at time.Time) {
	if ix.org != "" && rec.Organization != ix.org {
		return
	}
	ix.update(jobKey{rec.Organization, rec.CommandID}, func(j *Job) { j.applyRecord(rec, at) })
}

// PutEvent merges an event stored at at.
func (ix *Index) PutEvent(ev ingest.Event, at time.Time) {
	if ix.org != "" && ev.Organization != ix.org {
		return
	}
	ix.update(jobKey{ev.Organization, ev.CommandID}, func(j *Job) { j.applyEvent(ev, at) })
}

// DeleteRecord forgets the record of a command; the job stays while its
// events tell about it.
func (ix *Index) DeleteRecord(org, id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k := jobKey{org, id}
	j, ok := ix.jobs[k]
	if !ok {
		return
	}
	if !j.clearRecord() {
		ix.remove(j)
	}
	ix.changed(k)
}

func (ix *Index) update(k jobKey, apply func(*Job)) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	j, ok := ix.jobs[k]
	if !ok {
		j = &Job{Org: k.org, CommandID: k.id}
		apply(j)
		ix.insert(j)
	} else {
		first := j.First
		apply(j)
		if !j.First.Equal(first) {
			ix.dirty = true
		}
	}
	ix.changed(k)
}

func (ix *Index) insert(j *Job) {
	ix.jobs[j.key()] = j
	if n := len(ix.order); n > 0 && cmpJobs(ix.order[n-1], j) > 0 {
		ix.dirty = true
	}
	ix.order = append(ix.order, j)
	if len(ix.jobs) > ix.max+ix.max/100 {
		ix.trim(len(ix.jobs) - ix.max)
	}
}

// trim drops the n oldest jobs.
func (ix *Index) trim(n int) {
	ix.sortLocked()
	for _, j := range ix.order[:n] {
		delete(ix.jobs, j.key())
	}
	ix.order = slices.Delete(ix.order, 0, n)
}

func (ix *Index) remove(j *Job) {
	j.removed = true
	delete(ix.jobs, j.key())
	ix.dirty = true
}

// Expire drops the jobs last written before cutoff (their record and
// events have expired from JetStream) and returns how many.
func (ix *Index) Expire(cutoff time.Time) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := 0
	for _, j := range ix.jobs {
		if j.Seen.Before(cutoff) {
			ix.remove(j)
			n++
		}
	}
	if n > 0 {
		ix.version++
	}
	return n
}

// sortLocked restores the order; ix.mu must be held for writing.
func (ix *Index) sortLocked() {
	if !ix.dirty {
		return
	}
	ix.order = slices.DeleteFunc(ix.order, func(j *Job) bool { return j.removed })
	slices.SortFunc(ix.order, cmpJobs)
	ix.dirty = false
}

// read runs f with the index read-locked, sorted first if needed. A write
// between the locks may leave removed jobs or one out of place: f skips
// removed jobs.
func (ix *Index) read(f func()) {
	ix.mu.RLock()
	if ix.dirty {
		ix.mu.RUnlock()
		ix.mu.Lock()
		ix.sortLocked()
		ix.mu.Unlock()
		ix.mu.RLock()
	}
	defer ix.mu.RUnlock()
	f()
}

// Job returns the job of command id in org.
func (ix *Index) Job(org, id string) (Job, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	j, ok := ix.jobs[jobKey{org, id}]
	if !ok {
		return Job{}, false
	}
	return *j, true
}

// Len is the number of jobs held.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.jobs)
}

// Loaded reports whether the records and the events stored when the page
// started have been read.
func (ix *Index) Loaded() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.recordsLoaded && ix.eventsLoaded
}

func (ix *Index) setLoaded(records, events bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.recordsLoaded = ix.recordsLoaded || records
	ix.eventsLoaded = ix.eventsLoaded || events
}

// changed records a change of job k; ix.mu must be held for writing.
func (ix *Index) changed(k jobKey) {
	ix.version++
	for s := range ix.subs {
		s.add(k)
	}
}
