package ingest_test

// Fakes of the small interfaces the ingest package takes (API, Journal,
// Records, Observer), and the answers and errors the Campaign client gives,
// for tests that read as the specification of a job's decisions.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// The command of every test, unless a case says otherwise.
const (
	testOrg     = "acme"
	testMapping = "XDM44"
	testCmdID   = "cmd-1"
)

// t0 is the fake clock's time (Config.Now): events and records carry it.
var t0 = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

func fakeNow() time.Time { return t0 }

// seqLog is the order of everything the fake API and the fake journal saw,
// one line per call: "POST", "GET 2001", "triggered 2001 attempt=1",
// "triggered stored", "progress running 2001 polls=1", …
type seqLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *seqLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *seqLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// --- API ---------------------------------------------------------------

// stall is a scripted answer that blocks until the call's context ends,
// then fails as the client does for an abandoned request.
type stall struct{}

// boom is a scripted answer that panics.
type boom struct{}

// apiCall is one call the fake API received.
type apiCall struct {
	Op, Org, Mapping, RequestID string
}

// fakeAPI answers from a script. Trigger answers are taken in order; status
// answers in order per request id. An answer is a campaign.TriggerResponse
// (or StatusResponse), an error, stall{} or boom{}; the last answer of a
// script repeats. A call whose context has ended fails at once without
// using the script, as the client's would.
type fakeAPI struct {
	t   *testing.T
	log *seqLog
	// onStall runs when a stall{} answer starts (e.g. to stop the worker).
	onStall func()

	mu       sync.Mutex
	triggers []any
	statuses map[string][]any
	nStatus  map[string]int
	calls    []apiCall
}

func (f *fakeAPI) Trigger(ctx context.Context, org, mappingID string) (campaign.TriggerResponse, error) {
	switch a := f.answer(ctx, apiCall{Op: campaign.OpTrigger, Org: org, Mapping: mappingID}).(type) {
	case campaign.TriggerResponse:
		return a, nil
	case error:
		return campaign.TriggerResponse{}, a
	default:
		f.t.Errorf("trigger answer %T is not a TriggerResponse", a)
		return campaign.TriggerResponse{}, errNotFound(campaign.OpTrigger)
	}
}

func (f *fakeAPI) Status(ctx context.Context, org, mappingID, requestID string) (campaign.StatusResponse, error) {
	switch a := f.answer(ctx, apiCall{Op: campaign.OpStatus, Org: org, Mapping: mappingID, RequestID: requestID}).(type) {
	case campaign.StatusResponse:
		a.RequestID = campaign.RequestID(requestID)
		return a, nil
	case error:
		return campaign.StatusResponse{}, a
	default:
		f.t.Errorf("status answer %T is not a StatusResponse", a)
		return campaign.StatusResponse{}, errNotFound(campaign.OpStatus)
	}
}

func (f *fakeAPI) answer(ctx context.Context, c apiCall) any {
	line := "POST"
	if c.Op == campaign.OpStatus {
		line = "GET " + c.RequestID
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	var script []any
	n := 0
	if c.Op == campaign.OpTrigger {
		script, n = f.triggers, f.count(campaign.OpTrigger)
	} else {
		if f.nStatus == nil {
			f.nStatus = map[string]int{}
		}
		script, n = f.statuses[c.RequestID], f.nStatus[c.RequestID]
		f.nStatus[c.RequestID]++
	}
	f.mu.Unlock()
	if ctx.Err() != nil {
		f.log.add("%s abandoned", line)
		return errAbandoned(ctx, c.Op)
	}
	f.log.add("%s", line)
	if len(script) == 0 {
		f.t.Errorf("unscripted call %s", line)
		return errNotFound(c.Op)
	}
	switch a := script[min(n, len(script)-1)].(type) {
	case stall:
		if f.onStall != nil {
			f.onStall()
		}
		<-ctx.Done()
		return errAbandoned(ctx, c.Op)
	case boom:
		panic("boom in " + line)
	default:
		return a
	}
}

// count returns how many calls of op were made before the last one; f.mu held.
func (f *fakeAPI) count(op string) int {
	n := 0
	for _, c := range f.calls {
		if c.Op == op {
			n++
		}
	}
	return n - 1
}

func (f *fakeAPI) posts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count(campaign.OpTrigger) + 1
}

func (f *fakeAPI) allCalls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// --- answers the Campaign API gives -------------------------------------

func accepted(id string) campaign.TriggerResponse {
	return campaign.TriggerResponse{RequestID: campaign.RequestID(id), Status: campaign.StatusSuccess,
		Info: fmt.Sprintf(campaign.InfoTriggerAccepted, testMapping)}
}

// busy is the trigger's answer when request id of the mapping is running.
func busy(id string) campaign.TriggerResponse {
	return campaign.TriggerResponse{RequestID: campaign.RequestID(id), Status: campaign.StatusInProgress,
		Info: fmt.Sprintf(campaign.InfoTriggerInProgress, testMapping)}
}

func notStopped() campaign.TriggerResponse {
	return campaign.TriggerResponse{Status: campaign.StatusFailed, Info: fmt.Sprintf(campaign.InfoTriggerNotStopped, testMapping)}
}

func notPublished() campaign.TriggerResponse {
	return campaign.TriggerResponse{Status: campaign.StatusFailed, Info: fmt.Sprintf(campaign.InfoTriggerNotPublished, testMapping)}
}

var (
	inProgress = campaign.StatusResponse{Status: campaign.StatusInProgress, Info: fmt.Sprintf(campaign.InfoStatusInProgress, testMapping)}
	fetchFail  = campaign.StatusResponse{Status: campaign.StatusFailed, Info: fmt.Sprintf(campaign.InfoStatusFetchFailed, testMapping)}
	abortedSt  = campaign.StatusResponse{Status: campaign.StatusAborted, Info: fmt.Sprintf(campaign.InfoStatusAborted, testMapping)}
)

func succeeded(n int64) campaign.StatusResponse {
	return campaign.StatusResponse{Status: campaign.StatusSuccess, NumRecords: n, Info: fmt.Sprintf(campaign.InfoStatusSuccess, testMapping)}
}

func uploadFail(batch string) campaign.StatusResponse {
	return campaign.StatusResponse{Status: campaign.StatusFailed, BatchID: batch, Info: fmt.Sprintf(campaign.InfoStatusUploadFail, testMapping)}
}

// --- errors, built as the campaign client builds them -------------------

// errGateway is the client's error for an Adobe I/O gateway error answer
// {"error_code": code, "message": msg} (httpError).
func errGateway(op string, status int, code, msg string) *campaign.APIError {
	return &campaign.APIError{Operation: op, StatusCode: status, ErrorCode: code, Message: msg}
}

// err401 is a 401 that the client returns after one fresh token.
func err401(op string) error {
	return errGateway(op, http.StatusUnauthorized, "401013", "Oauth token is not valid")
}

func err403(op, code string) error {
	msg := map[string]string{"403003": "Api Key is invalid", "403010": "Oauth token is missing"}[code]
	return errGateway(op, http.StatusForbidden, code, msg)
}

func err429(op string, retryAfter time.Duration) error {
	e := errGateway(op, http.StatusTooManyRequests, "429050", "Too many requests")
	e.RetryAfter = retryAfter
	return e
}

func err503(op string, retryAfter time.Duration) error {
	e := errGateway(op, http.StatusServiceUnavailable, "503000", "Service unavailable")
	e.RetryAfter = retryAfter
	return e
}

// errBadURI is Campaign's own 500 {"code":500,"message":"Oops. …"}: no
// error_code.
func errBadURI(op string) error {
	return &campaign.APIError{Operation: op, StatusCode: http.StatusInternalServerError, Message: campaign.MessageBadURI}
}

func errNotFound(op string) error {
	return &campaign.APIError{Operation: op, StatusCode: http.StatusNotFound, Message: "Not Found"}
}

func errBadRequest(op string) error {
	return &campaign.APIError{Operation: op, StatusCode: http.StatusBadRequest, Message: "requestId is required"}
}

// errNetwork is a request that got no answer.
func errNetwork(op string) error {
	return &campaign.APIError{Operation: op, Message: "request failed", Err: errors.New("read tcp: connection reset by peer")}
}

func errMalformed(op string) error {
	return &campaign.APIError{Operation: op, StatusCode: http.StatusOK, Err: fmt.Errorf("%w: no status", campaign.ErrMalformed)}
}

// errAbandoned is the client's error for a call whose context ended. The
// client also marks it abandoned (not retryable), which cannot be set from
// outside the package: retry stops on the context all the same.
func errAbandoned(ctx context.Context, op string) error {
	return &campaign.APIError{Operation: op, Message: "request abandoned", Err: ctx.Err()}
}

// --- Journal -------------------------------------------------------------

// fakeJournal records the triggered events and the records it stores; it
// can be told to lose the triggered event's publication, or to fail every
// Progress. Its writes outlive the context's cancellation, as the real
// one's must.
type fakeJournal struct {
	log *seqLog
	// triggeredErr is the result of the triggered event's publication.
	triggeredErr error
	// triggeredSlow: the publication outlasts the first wait with a time
	// limit (ErrPublishing), then ends as triggeredErr says.
	triggeredSlow bool
	// progressErr fails every Progress.
	progressErr error
	// onProgress runs after a Progress was stored.
	onProgress func(ingest.Record)

	mu        sync.Mutex
	triggered []ingest.Event
	progress  []ingest.Record
}

func (j *fakeJournal) Triggered(_ context.Context, ev ingest.Event) func(time.Duration) error {
	j.mu.Lock()
	j.triggered = append(j.triggered, ev)
	j.mu.Unlock()
	j.log.add("triggered %s attempt=%d", ev.RequestID, ev.Attempt)
	slow, ended := j.triggeredSlow, false
	return func(within time.Duration) error {
		if ended {
			j.log.add("triggered waited twice")
		}
		if slow && within > 0 {
			slow = false
			j.log.add("triggered slow")
			return ingest.ErrPublishing
		}
		ended = true
		if j.triggeredErr != nil {
			j.log.add("triggered lost")
			return j.triggeredErr
		}
		j.log.add("triggered stored")
		return nil
	}
}

func (j *fakeJournal) Progress(_ context.Context, rec ingest.Record) error {
	line := fmt.Sprintf("progress %s %s polls=%d", rec.Phase, rec.RequestID, rec.Polls)
	if j.progressErr != nil {
		j.log.add("%s failed", line)
		return j.progressErr
	}
	j.mu.Lock()
	j.progress = append(j.progress, rec)
	j.mu.Unlock()
	j.log.add("%s", line)
	if j.onProgress != nil {
		j.onProgress(rec)
	}
	return nil
}

func (j *fakeJournal) records() []ingest.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]ingest.Record(nil), j.progress...)
}

func (j *fakeJournal) events() []ingest.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]ingest.Event(nil), j.triggered...)
}

// --- Observer ------------------------------------------------------------

type fakeObserver struct {
	mu    sync.Mutex
	polls []string
}

func (o *fakeObserver) ObservePoll(status string, known bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.polls = append(o.polls, fmt.Sprintf("%s known=%v", status, known))
}

func (o *fakeObserver) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.polls...)
}

// --- Records ---------------------------------------------------------------

// fakeRecords keeps records by organization and command id; recoverable
// holds what each command's events tell (the Recover answer), by the same
// key. Calls are logged as "load acme/cmd-1", "load latest acme/cmd-1",
// "recover acme/cmd-1", "claim acme/cmd-1".
type fakeRecords struct {
	records     map[string]ingest.Record
	recoverable map[string]ingest.Record
	// claimRace: another message claims the id between Load and Claim.
	claimRace                     bool
	loadErr, recoverErr, claimErr error

	calls   []string
	since   time.Time
	claimed []ingest.Record
}

func key(org, id string) string { return org + "/" + id }

func (f *fakeRecords) Load(_ context.Context, org, commandID string) (*ingest.Record, error) {
	return f.load("load "+key(org, commandID), org, commandID)
}

func (f *fakeRecords) LoadLatest(_ context.Context, org, commandID string) (*ingest.Record, error) {
	return f.load("load latest "+key(org, commandID), org, commandID)
}

func (f *fakeRecords) load(call, org, commandID string) (*ingest.Record, error) {
	f.calls = append(f.calls, call)
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	if rec, ok := f.records[key(org, commandID)]; ok {
		return &rec, nil
	}
	return nil, nil
}

func (f *fakeRecords) Recover(_ context.Context, cmd ingest.Command, since time.Time) (*ingest.Record, error) {
	f.calls = append(f.calls, "recover "+key(cmd.Organization, cmd.ID))
	f.since = since
	if f.recoverErr != nil {
		return nil, f.recoverErr
	}
	if rec, ok := f.recoverable[key(cmd.Organization, cmd.ID)]; ok {
		return &rec, nil
	}
	return nil, nil
}

func (f *fakeRecords) Claim(_ context.Context, rec ingest.Record) (bool, error) {
	f.calls = append(f.calls, "claim "+key(rec.Organization, rec.CommandID))
	if f.claimErr != nil {
		return false, f.claimErr
	}
	if _, ok := f.records[key(rec.Organization, rec.CommandID)]; ok || f.claimRace {
		return false, nil
	}
	if f.records == nil {
		f.records = map[string]ingest.Record{}
	}
	f.records[key(rec.Organization, rec.CommandID)] = rec
	f.claimed = append(f.claimed, rec)
	return true, nil
}

// --- harness -----------------------------------------------------------------

// world is a runner's surroundings: the fakes and the configuration.
type world struct {
	log     *seqLog
	api     *fakeAPI
	journal *fakeJournal
	obs     *fakeObserver
	cfg     ingest.Config
}

// newWorld returns fakes with nothing scripted and a configuration whose
// waits are about a millisecond: 3 attempts per operation within a
// delivery, a hand-back delay of 15s (returned, never waited for), and a
// job deadline of 2s that only a runaway job meets.
func newWorld(t *testing.T) *world {
	t.Helper()
	l := &seqLog{}
	obs := &fakeObserver{}
	return &world{
		log:     l,
		api:     &fakeAPI{t: t, log: l, statuses: map[string][]any{}},
		journal: &fakeJournal{log: l},
		obs:     obs,
		cfg: ingest.Config{
			Schedule:       ingest.Schedule{Initial: time.Millisecond, Max: time.Millisecond},
			JobTimeout:     2 * time.Second,
			RetryAttempts:  3,
			RetryInitial:   time.Millisecond,
			RetryMax:       time.Millisecond,
			RedeliverDelay: 15 * time.Second,
			Observer:       obs,
			Now:            fakeNow,
		},
	}
}

// script sets the API's answers.
func (w *world) script(triggers []any, statuses map[string][]any) {
	w.api.triggers = triggers
	for id, s := range statuses {
		w.api.statuses[id] = s
	}
}

// run runs job with a runner of w.cfg and checks that every API call was
// for the command's organization and mapping.
func (w *world) run(t *testing.T, job ingest.Job) ingest.Result {
	t.Helper()
	return w.runCtx(t, context.Background(), job)
}

func (w *world) runCtx(t *testing.T, ctx context.Context, job ingest.Job) ingest.Result {
	t.Helper()
	res := ingest.NewRunner(w.api, w.cfg).Run(ctx, w.journal, job)
	for _, c := range w.api.allCalls() {
		if c.Org != job.Command.Organization || c.Mapping != job.Command.MappingID {
			t.Errorf("API call %+v is not for %s/%s", c, job.Command.Organization, job.Command.MappingID)
		}
	}
	return res
}

// newJob is the first delivery of command cmd-1 of acme/XDM44, published now.
func newJob() ingest.Job {
	return ingest.Job{
		Command:   ingest.Command{ID: testCmdID, Organization: testOrg, MappingID: testMapping, CorrelationID: "corr-1"},
		Published: time.Now(),
		Delivery:  1,
	}
}

// redelivery is delivery n of cmd-1 resuming from rec (nil: none).
func redelivery(n int, rec *ingest.Record) ingest.Job {
	job := newJob()
	job.Delivery, job.Record = n, rec
	return job
}

// recordOf is cmd-1's record in phase p for request id.
func recordOf(p ingest.Phase, requestID string, attempt, polls int) *ingest.Record {
	return &ingest.Record{
		CommandID: testCmdID, CorrelationID: "corr-1", Organization: testOrg, MappingID: testMapping,
		Phase: p, RequestID: requestID, Attempt: attempt, Polls: polls, TriggeredAt: ingest.Time(t0),
	}
}

// outcome is what a test says of a terminal event.
type outcome struct {
	Type       ingest.EventType
	Reason     ingest.Reason
	RequestID  string
	Status     string
	ErrorCode  string
	BatchID    string
	NumRecords int64
	Attempt    int
	Polls      int
}

func outcomeOf(ev *ingest.Event) outcome {
	return outcome{
		Type: ev.Type, Reason: ev.Reason, RequestID: ev.RequestID, Status: ev.Status, ErrorCode: ev.ErrorCode,
		BatchID: ev.BatchID, NumRecords: ev.NumRecords, Attempt: ev.Attempt, Polls: ev.Polls,
	}
}

// wantOutcome checks that res ends the command with want, and that the
// final record says so.
func wantOutcome(t *testing.T, res ingest.Result, want outcome) {
	t.Helper()
	if res.Event == nil {
		t.Fatalf("no terminal event; result %+v", res)
	}
	if got := outcomeOf(res.Event); got != want {
		t.Errorf("event\n got  %+v\n want %+v", got, want)
	}
	ev := res.Event
	if ev.CommandID != testCmdID || ev.Organization != testOrg || ev.MappingID != testMapping || ev.CorrelationID != "corr-1" {
		t.Errorf("event names %s %s/%s corr %q", ev.CommandID, ev.Organization, ev.MappingID, ev.CorrelationID)
	}
	if !time.Time(ev.FinishedAt).Equal(t0) {
		t.Errorf("finishedAt %v, want the clock's %v", time.Time(ev.FinishedAt), t0)
	}
	if res.Retry != 0 || res.Interrupted || res.Err != nil {
		t.Errorf("a terminal result also hands back: retry %v interrupted %v err %v", res.Retry, res.Interrupted, res.Err)
	}
	rec := res.Record
	if rec.Phase != ingest.PhaseDone || rec.Outcome != ev.Type || rec.Reason != ev.Reason || rec.RequestID != ev.RequestID {
		t.Errorf("final record %+v does not match the event", rec)
	}
}

// wantHandBack checks that res hands the command back after retry, with
// no event.
func wantHandBack(t *testing.T, res ingest.Result, retry time.Duration) {
	t.Helper()
	if res.Event != nil {
		t.Fatalf("event %s/%s, want a hand-back", res.Event.Type, res.Event.Reason)
	}
	if res.Retry != retry || res.Err == nil || res.Interrupted {
		t.Errorf("hand-back retry %v err %v interrupted %v; want retry %v with an error", res.Retry, res.Err, res.Interrupted, retry)
	}
	if res.Record.Phase == ingest.PhaseDone {
		t.Errorf("record of a hand-back is done: %+v", res.Record)
	}
}

// wantLog checks the sequence of API and journal calls.
func wantLog(t *testing.T, w *world, want ...string) {
	t.Helper()
	if got := w.log.get(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls\n got  %q\n want %q", got, want)
	}
}

// rep repeats s n times.
func rep(n int, s ...string) []string {
	var out []string
	for range n {
		out = append(out, s...)
	}
	return out
}

// seq concatenates lines and groups of lines.
func seq(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("seq: %T", p))
		}
	}
	return out
}

// jobCase is one job of a table: its configuration, delivery, scripted API
// answers and journal faults, and what it must end with.
type jobCase struct {
	name string
	// cfg adjusts newWorld's configuration.
	cfg func(*ingest.Config)
	// job is the delivery; zero: newJob().
	job      ingest.Job
	triggers []any
	statuses map[string][]any
	// triggeredErr loses the triggered event's publication; progressErr
	// fails every Progress.
	triggeredErr, progressErr error
	// triggeredSlow: the publication outlasts TriggeredPatience.
	triggeredSlow bool

	// want is the terminal event, for a job that ends.
	want outcome
	// wantRetry is the hand-back delay, for a job handed back.
	wantRetry time.Duration
	// wantLog is the sequence of API and journal calls; nil: not checked.
	wantLog []string
}

// runCase runs tt in a new world and checks its log.
func runCase(t *testing.T, tt jobCase) (*world, ingest.Result) {
	t.Helper()
	w := newWorld(t)
	if tt.cfg != nil {
		tt.cfg(&w.cfg)
	}
	w.script(tt.triggers, tt.statuses)
	w.journal.triggeredErr, w.journal.progressErr, w.journal.triggeredSlow = tt.triggeredErr, tt.progressErr, tt.triggeredSlow
	job := tt.job
	if job.Command.ID == "" {
		job = newJob()
	}
	if job.Published.IsZero() {
		job.Published = time.Now() // now: when the case runs, not when its table was built
	}
	res := w.run(t, job)
	if tt.wantLog != nil {
		wantLog(t, w, tt.wantLog...)
	}
	return w, res
}

func last(job ingest.Job) ingest.Job {
	job.LastDelivery = true
	return job
}

func resubmit(n int) func(*ingest.Config) {
	return func(c *ingest.Config) { c.ResubmitAborted = n }
}

func policy(p ingest.BusyPolicy) func(*ingest.Config) {
	return func(c *ingest.Config) { c.BusyPolicy = p }
}
