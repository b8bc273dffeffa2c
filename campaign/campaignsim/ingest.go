package campaignsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

type mappingKey struct{ org, id string }

type mappingEntry struct {
	m         Mapping
	running   *request // the last request submitted; running until it is done
	submitted int      // requests submitted since the mapping was put
}

// request is one ingestion request. Its fields are guarded by Server.mu.
type request struct {
	id       int64
	org      string
	mapping  string
	script   Script
	outcome  Outcome // resolved: never OutcomeAbortedThenSuccess or ""
	batchID  string
	created  time.Time
	finished time.Time
	polls    int
	done     bool
}

// finish reports whether r is terminal at now, and marks it so when its
// script says it has ended. A terminal request stays terminal.
func (r *request) finish(now time.Time) bool {
	if r.done {
		return true
	}
	sc := r.script
	switch {
	case r.outcome == OutcomeNever:
		return false
	case sc.Duration == 0 && sc.Polls == 0,
		sc.Duration > 0 && now.Sub(r.created) >= time.Duration(sc.Duration),
		sc.Polls > 0 && r.polls >= sc.Polls:
		r.done, r.finished = true, now
	}
	return r.done
}

// apiStatus is the status a GET answers for r now.
func (r *request) apiStatus() campaign.Status {
	if !r.done {
		return campaign.StatusInProgress
	}
	switch r.outcome {
	case OutcomeFetchFailure, OutcomeUploadFailure:
		return campaign.StatusFailed
	case OutcomeAborted:
		return campaign.StatusAborted
	}
	return campaign.StatusSuccess
}

// requestRing holds the requests by id. Ids are consecutive, so a request's
// index is its id minus the id of the oldest one kept.
type requestRing struct {
	next  int64 // the next id to hand out
	base  int64 // id of list[0]
	limit int
	list  []*request
}

func (q *requestRing) init(first int64, limit int) {
	q.next, q.base, q.limit = first, first, limit
}

func (q *requestRing) add(r *request) {
	r.id = q.next
	q.next++
	q.list = append(q.list, r)
	if len(q.list) > q.limit {
		q.list[0] = nil
		q.list = q.list[1:]
		q.base++
	}
}

func (q *requestRing) get(id int64) *request {
	i := id - q.base
	if i < 0 || i >= int64(len(q.list)) {
		return nil
	}
	return q.list[i]
}

// PutMapping creates m or replaces the mapping with the same organization
// and id. A request still running for it keeps running (and keeps the
// mapping busy) with its old script.
func (s *Server) PutMapping(m Mapping) {
	k := mappingKey{m.Org, m.ID}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[m.Org] = struct{}{}
	if e, ok := s.mappings[k]; ok {
		e.m, e.submitted = m, 0
		return
	}
	s.mappings[k] = &mappingEntry{m: m}
}

// DeleteMapping forgets a mapping; its requests can still be read. The
// organization stays known.
func (s *Server) DeleteMapping(org, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mappings, mappingKey{org, id})
}

// Mapping returns the mapping org/id.
func (s *Server) Mapping(org, id string) (Mapping, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.mappings[mappingKey{org, id}]
	if !ok {
		return Mapping{}, false
	}
	return e.m, true
}

// Mappings returns every mapping, in no particular order.
func (s *Server) Mappings() []Mapping {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := make([]Mapping, 0, len(s.mappings))
	for _, e := range s.mappings {
		ms = append(ms, e.m)
	}
	return ms
}

// Request is the state of one ingestion request, as the admin API lists it.
type Request struct {
	RequestID  string          `json:"requestId"`
	Org        string          `json:"organization"`
	Mapping    string          `json:"mappingId"`
	Outcome    Outcome         `json:"outcome"`
	Status     campaign.Status `json:"status"` // what a GET would answer now (without counting a poll)
	Polls      int             `json:"polls"`
	NumRecords int64           `json:"numRecords"`
	BatchID    string          `json:"batchId,omitempty"`
	Created    time.Time       `json:"createdAt"`
	Finished   time.Time       `json:"finishedAt,omitzero"`
}

// Requests returns the ingestion requests kept, oldest first.
func (s *Server) Requests() []Request {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.reqs.list))
	for _, r := range s.reqs.list {
		r.finish(now)
		st := r.apiStatus()
		var n int64
		if st == campaign.StatusSuccess {
			n = r.script.Records
		}
		out = append(out, Request{
			RequestID: strconv.FormatInt(r.id, 10), Org: r.org, Mapping: r.mapping,
			Outcome: r.outcome, Status: st, Polls: r.polls, NumRecords: n, BatchID: r.batchID,
			Created: r.created, Finished: r.finished,
		})
	}
	return out
}

// trigger serves POST …/xdmIngestion/{mapping}/ingest.
func (s *Server) trigger(r *http.Request, c *Call) answer {
	if a, ok := s.authorize(r, c, true); !ok {
		return a
	}
	now := s.now()
	s.mu.Lock()
	if _, ok := s.orgs[c.Org]; !ok {
		s.mu.Unlock()
		return errBadURI
	}
	e := s.mappings[mappingKey{c.Org, c.Mapping}]
	state := StateNotPublished // an unknown mapping is answered like an unpublished one
	if e != nil {
		state = e.m.State
	}
	var id int64
	var status campaign.Status
	switch {
	case state == StateNotPublished || state == StateNotStopped:
		status = campaign.StatusFailed
	case e.running != nil && !e.running.finish(now):
		id, status = e.running.id, campaign.StatusInProgress
	default:
		req := s.submitLocked(e, now)
		id, status = req.id, campaign.StatusSuccess
	}
	s.mu.Unlock()

	c.Status = string(status)
	resp := campaign.TriggerResponse{Status: status}
	code := http.StatusOK
	switch {
	case state == StateNotPublished:
		resp.Info, code = fmt.Sprintf(campaign.InfoTriggerNotPublished, c.Mapping), s.failedHTTPStatus
	case state == StateNotStopped:
		resp.Info, code = fmt.Sprintf(campaign.InfoTriggerNotStopped, c.Mapping), s.failedHTTPStatus
	case status == campaign.StatusInProgress:
		resp.Info = fmt.Sprintf(campaign.InfoTriggerInProgress, c.Mapping)
	default:
		resp.Info = fmt.Sprintf(campaign.InfoTriggerAccepted, c.Mapping)
	}
	if id != 0 {
		c.RequestID = strconv.FormatInt(id, 10)
		resp.RequestID = campaign.RequestID(c.RequestID)
	}
	return answer{code, mustJSON(resp)}
}

// submitLocked creates a request for e. s.mu must be held.
func (s *Server) submitLocked(e *mappingEntry, now time.Time) *request {
	sc := e.m.Script
	outcome := sc.Outcome
	switch outcome {
	case "":
		outcome = OutcomeSuccess
	case OutcomeAbortedThenSuccess:
		outcome = OutcomeSuccess
		if e.submitted == 0 {
			outcome = OutcomeAborted
		}
	}
	req := &request{org: e.m.Org, mapping: e.m.ID, script: sc, outcome: outcome, created: now}
	if outcome == OutcomeUploadFailure {
		req.batchID = sc.BatchID
		if req.batchID == "" {
			req.batchID = fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
		}
	}
	s.reqs.add(req)
	e.running = req
	e.submitted++
	return req
}

// status serves GET …/xdmIngestion/{mapping}/ingest.
func (s *Server) status(r *http.Request, c *Call) answer {
	if a, ok := s.authorize(r, c, false); !ok {
		return a
	}
	idText, ok := requestIDOf(r)
	if !ok {
		return errRequestIDNeeded
	}
	c.RequestID = idText
	id, err := strconv.ParseInt(idText, 10, 64)
	now := s.now()
	s.mu.Lock()
	if _, ok := s.orgs[c.Org]; !ok {
		s.mu.Unlock()
		return errBadURI
	}
	req := s.reqs.get(id)
	if err != nil || req == nil || req.org != c.Org || req.mapping != c.Mapping {
		s.mu.Unlock()
		return campaignError(http.StatusNotFound,
			fmt.Sprintf("No ingestion request %s for the Mapping ID: %s", idText, c.Mapping))
	}
	req.polls++
	req.finish(now)
	st, outcome, batchID, records := req.apiStatus(), req.outcome, req.batchID, req.script.Records
	s.mu.Unlock()

	c.Status = string(st)
	resp := campaign.StatusResponse{RequestID: campaign.RequestID(idText), Status: st}
	code := http.StatusOK
	switch {
	case st == campaign.StatusInProgress:
		resp.Info = fmt.Sprintf(campaign.InfoStatusInProgress, c.Mapping)
	case outcome == OutcomeFetchFailure:
		resp.Info, code = fmt.Sprintf(campaign.InfoStatusFetchFailed, c.Mapping), s.failedHTTPStatus
		c.ErrorCode = campaign.CodeFetchFailed
	case outcome == OutcomeUploadFailure:
		resp.Info, code = fmt.Sprintf(campaign.InfoStatusUploadFail, c.Mapping), s.failedHTTPStatus
		resp.BatchID, c.ErrorCode = batchID, campaign.CodeUploadFailed
	case outcome == OutcomeAborted:
		resp.Info = fmt.Sprintf(campaign.InfoStatusAborted, c.Mapping)
	default:
		resp.Info, resp.NumRecords = fmt.Sprintf(campaign.InfoStatusSuccess, c.Mapping), records
	}
	return answer{code, mustJSON(resp)}
}

// requestIDOf returns the request id of a status GET: the query parameter
// requestId or, without it, a body {"requestId": 3520}, {"requestId":"3520"}
// or the documentation's own {"requestId"="3520"}.
func requestIDOf(r *http.Request) (string, bool) {
	if id := r.URL.Query().Get("requestId"); id != "" {
		return id, true
	}
	if r.Body == nil {
		return "", false
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", false
	}
	var body struct {
		RequestID campaign.RequestID `json:"requestId"`
	}
	if err := json.Unmarshal(b, &body); err == nil {
		return string(body.RequestID), body.RequestID != ""
	}
	if m := docRequestIDRE.FindSubmatch(b); m != nil {
		return string(m[1]), true
	}
	return "", false
}

// docRequestIDRE reads the not-quite-JSON body of Adobe's page: {"requestId"="3520"}.
var docRequestIDRE = regexp.MustCompile(`^\{\s*"requestId"\s*=\s*"?([^"\s}]+)"?\s*\}$`)
