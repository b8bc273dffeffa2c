package campaignsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

// step is one call of a scripted scenario and what it must answer.
type step struct {
	advance    time.Duration // moved on the fake clock before the call
	call       string        // "post" or "get"
	requestID  string        // of the GET
	wantStatus campaign.Status
	wantID     campaign.RequestID // of the answer
}

func runSteps(t *testing.T, e *env, mapping string, steps []step) {
	t.Helper()
	for i, st := range steps {
		e.clock.Advance(st.advance)
		var gotStatus campaign.Status
		var gotID campaign.RequestID
		switch st.call {
		case "post":
			r := e.trigger("acme", mapping)
			var resp campaign.TriggerResponse
			decode(t, r, &resp)
			gotStatus, gotID = resp.Status, resp.RequestID
		case "get":
			r := e.status("acme", mapping, st.requestID)
			var resp campaign.StatusResponse
			decode(t, r, &resp)
			gotStatus, gotID = resp.Status, resp.RequestID
		}
		if gotStatus != st.wantStatus || gotID != st.wantID {
			t.Errorf("step %d (%s after +%v): %q %q, want %q %q", i, st.call, st.advance, gotStatus, gotID, st.wantStatus, st.wantID)
		}
	}
}

func decode(t *testing.T, r response, v any) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.code, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

const (
	success    = campaign.StatusSuccess
	inProgress = campaign.StatusInProgress
	failed     = campaign.StatusFailed
	aborted    = campaign.StatusAborted
)

func TestScripts(t *testing.T) {
	tests := []struct {
		name   string
		script Script
		steps  []step
	}{
		{"by_duration", Script{Records: 15, Duration: Duration(5 * time.Second)}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{advance: 4 * time.Second, call: "post", wantStatus: inProgress, wantID: "3520"},
			{advance: time.Second - time.Nanosecond, call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{advance: time.Nanosecond, call: "get", requestID: "3520", wantStatus: success, wantID: "3520"},
			{call: "post", wantStatus: success, wantID: "3521"},
			{call: "get", requestID: "3520", wantStatus: success, wantID: "3520"},
		}},
		{"duration_frees_the_mapping_without_a_poll", Script{Duration: Duration(time.Second)}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{advance: time.Second, call: "post", wantStatus: success, wantID: "3521"},
		}},
		{"by_polls", Script{Outcome: OutcomeFetchFailure, Polls: 3}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{advance: time.Hour, call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{call: "post", wantStatus: inProgress, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: failed, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: failed, wantID: "3520"},
			{call: "post", wantStatus: success, wantID: "3521"},
		}},
		{"polls_before_duration", Script{Polls: 2, Duration: Duration(time.Minute)}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: success, wantID: "3520"},
		}},
		{"duration_before_polls", Script{Polls: 100, Duration: Duration(time.Minute)}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{advance: time.Minute, call: "get", requestID: "3520", wantStatus: success, wantID: "3520"},
		}},
		{"at_once", Script{Outcome: OutcomeAborted}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{call: "post", wantStatus: success, wantID: "3521"},
			{call: "get", requestID: "3520", wantStatus: aborted, wantID: "3520"},
			{call: "get", requestID: "3521", wantStatus: aborted, wantID: "3521"},
		}},
		{"aborted_then_success", Script{Outcome: OutcomeAbortedThenSuccess, Records: 9, Polls: 1}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{call: "get", requestID: "3520", wantStatus: aborted, wantID: "3520"},
			{call: "post", wantStatus: success, wantID: "3521"},
			{call: "get", requestID: "3521", wantStatus: success, wantID: "3521"},
			{call: "post", wantStatus: success, wantID: "3522"},
			{call: "get", requestID: "3522", wantStatus: success, wantID: "3522"},
		}},
		{"never", Script{Outcome: OutcomeNever, Polls: 1, Duration: Duration(time.Second)}, []step{
			{call: "post", wantStatus: success, wantID: "3520"},
			{advance: 23 * time.Hour, call: "get", requestID: "3520", wantStatus: inProgress, wantID: "3520"},
			{call: "post", wantStatus: inProgress, wantID: "3520"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{}, Mapping{Org: "acme", ID: "XDM44", Script: tt.script})
			runSteps(t, e, "XDM44", tt.steps)
		})
	}
}

func TestRequestIDsAcrossMappings(t *testing.T) {
	e := newEnv(t, Options{FirstRequestID: 100}, testMappings()...)
	for i, m := range []string{"XDM44", "XDMFETCH", "XDM44"} {
		var resp campaign.TriggerResponse
		decode(t, e.trigger("acme", m), &resp)
		if want := []campaign.RequestID{"100", "101", "102"}[i]; resp.RequestID != want {
			t.Errorf("POST %d (%s): requestId %q, want %q", i, m, resp.RequestID, want)
		}
	}
}

func TestUploadFailureDefaultBatchID(t *testing.T) {
	e := newEnv(t, Options{}, Mapping{Org: "acme", ID: "XDM44", Script: Script{Outcome: OutcomeUploadFailure}})
	e.trigger("acme", "XDM44")
	var resp campaign.StatusResponse
	decode(t, e.status("acme", "XDM44", "3520"), &resp)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(resp.BatchID) {
		t.Errorf("batchId %q: want 32 lowercase hex characters", resp.BatchID)
	}
	if resp.Status != failed || resp.ErrorCode() != campaign.CodeUploadFailed {
		t.Errorf("answer %+v: want Failed with %s", resp, campaign.CodeUploadFailed)
	}
}

func TestFailedHTTPStatus(t *testing.T) {
	e := newEnv(t, Options{FailedHTTPStatus: http.StatusUnprocessableEntity}, testMappings()...)
	tests := []struct {
		name     string
		do       func() response
		wantCode int
	}{
		{"trigger_not_stopped", func() response { return e.trigger("acme", "XDMRUNNING") }, 422},
		{"trigger_not_published", func() response { return e.trigger("acme", "XDMDRAFT") }, 422},
		{"trigger_accepted", func() response { return e.trigger("acme", "XDMFETCH") }, 200},
		{"status_failed", func() response { return e.status("acme", "XDMFETCH", "3520") }, 422},
		{"status_success", func() response { e.trigger("acme", "XDM44"); return e.status("acme", "XDM44", "3521") }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := tt.do(); r.code != tt.wantCode {
				t.Errorf("HTTP %d, want %d; body %s", r.code, tt.wantCode, r.body)
			}
		})
	}
}

func TestRequestLimit(t *testing.T) {
	e := newEnv(t, Options{RequestLimit: 2}, testMappings()...)
	for range 3 {
		e.trigger("acme", "XDM44")
	}
	wantCodes := map[string]int{"3520": 404, "3521": 200, "3522": 200}
	for id, want := range wantCodes {
		if r := e.status("acme", "XDM44", id); r.code != want {
			t.Errorf("GET %s: HTTP %d, want %d", id, r.code, want)
		}
	}
}

// TestOneRunningRequest: concurrent POSTs of one mapping submit exactly one
// request; every other answer is In Progress with its id.
func TestOneRunningRequest(t *testing.T) {
	e := newEnv(t, Options{}, testMappings()...)
	const n = 32
	answers := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i], errs[i] = e.try(http.MethodPost, ingestPath("acme", "XDMNEVER"), e.auth(), "")
		})
	}
	wg.Wait()
	counts := map[campaign.Status]int{}
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatalf("POST %d: %v", i, errs[i])
		}
		var resp campaign.TriggerResponse
		decode(t, r, &resp)
		counts[resp.Status]++
		if resp.RequestID != "3520" {
			t.Errorf("POST %d: requestId %q, want 3520", i, resp.RequestID)
		}
	}
	if counts[success] != 1 || counts[inProgress] != n-1 {
		t.Errorf("answers by status %v, want 1 Success and %d In Progress", counts, n-1)
	}
	// Other mappings are not held up by it.
	var resp campaign.TriggerResponse
	decode(t, e.trigger("acme", "XDM44"), &resp)
	if resp.Status != success || resp.RequestID != "3521" {
		t.Errorf("POST of another mapping: %+v, want Success 3521", resp)
	}
}

func TestDemoMappings(t *testing.T) {
	ms := DemoMappings("acme")
	ids := map[string]bool{}
	for _, m := range ms {
		if err := m.validate(); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
		ids[m.ID] = true
	}
	for _, id := range []string{"XDM44", "XDMSLOW", "XDMFETCH", "XDMUPLOAD", "XDMABORT", "XDMFLAKY", "XDMNEVER", "XDMRUNNING", "XDMDRAFT"} {
		if !ids[id] {
			t.Errorf("DemoMappings lacks %s", id)
		}
	}
	e := newEnv(t, Options{}, ms...)
	runSteps(t, e, "XDMFLAKY", []step{
		{call: "post", wantStatus: success, wantID: "3520"},
		{advance: 2 * time.Second, call: "get", requestID: "3520", wantStatus: aborted, wantID: "3520"},
		{call: "post", wantStatus: success, wantID: "3521"},
		{advance: 2 * time.Second, call: "get", requestID: "3521", wantStatus: success, wantID: "3521"},
	})
}

func TestExpiredTokensForgotten(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Minute}) // holds one token
	for range minTokenSweep - 1 {
		e.issue(DemoClientID)
	}
	e.clock.Advance(time.Minute)
	fresh := e.issue(DemoClientID)
	e.sim.auth.mu.RLock()
	n := len(e.sim.auth.tokens)
	e.sim.auth.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d tokens kept after a sweep, want only the fresh one", n)
	}
	if r := e.do("GET", ingestPath("acme", "X")+"?requestId=1", authHeader(DemoClientID, fresh), ""); r.code != 500 {
		t.Errorf("fresh token after the sweep: HTTP %d %s, want 500 (authorized; unknown org)", r.code, r.body)
	}
}

// TestConcurrentUse drives every part of the server at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Options{CallLogLimit: 100}, DemoMappings("acme")...)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				m := []string{"XDM44", "XDMFETCH", "XDMNEVER", "XDMFLAKY"}[(g+i)%4]
				if _, err := e.try(http.MethodPost, ingestPath("acme", m), e.auth(), ""); err != nil {
					errs <- err
					return
				}
				if _, err := e.try(http.MethodGet, ingestPath("acme", m)+"?requestId=3520", e.auth(), ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			id := e.sim.InjectFault(Fault{Kind: FaultLatency, Latency: time.Microsecond, Rate: 0.5})
			e.sim.PutMapping(Mapping{Org: "acme", ID: "XDM44", Script: Script{Records: int64(i)}})
			e.sim.AddClient(Client{ID: "other", Secret: "s"})
			if _, err := e.sim.IssueToken("other"); err != nil {
				errs <- err
				return
			}
			_, _, _ = e.sim.Calls(), e.sim.Requests(), e.sim.Faults()
			e.sim.RemoveFault(id)
			e.clock.Advance(time.Second)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(e.sim.Calls()); n != 100 {
		t.Errorf("call log holds %d calls, want its limit 100", n)
	}
}
