package campaignsim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

// Operation names an API operation: campaign.OpTrigger, campaign.OpStatus
// or campaign.OpToken.
type Operation string

// FaultKind is what an injected fault does to a call.
type FaultKind string

// Fault kinds.
const (
	FaultLatency      FaultKind = "latency"      // wait Fault.Latency, then answer normally
	FaultError        FaultKind = "error"        // HTTP Fault.Code (default 503) with the gateway's body
	FaultThrottle     FaultKind = "throttle"     // 429 with Retry-After and error_code 429050 (or Fault.ErrorCode)
	FaultDrop         FaultKind = "drop"         // close the connection without answering
	FaultMalformed    FaultKind = "malformed"    // 200 with a body that is not valid JSON
	FaultOversized    FaultKind = "oversized"    // 200 with a valid JSON body of 2 MiB
	FaultUnauthorized FaultKind = "unauthorized" // 401 401013 even with a valid token (token op: 401 invalid_client)
)

func (k FaultKind) valid() bool {
	switch k {
	case FaultLatency, FaultError, FaultThrottle, FaultDrop, FaultMalformed, FaultOversized, FaultUnauthorized:
		return true
	}
	return false
}

// Fault is an injected failure. It applies to the calls of operation Op (all
// operations if empty) that match the optional Org and Mapping filters: to
// every such call, or with probability Rate, and only for the next Count
// times it fires if Count > 0. Several latency faults add up; of the other
// kinds, the first one that fires (in injection order) wins.
type Fault struct {
	ID   int       `json:"id,omitempty"` // set by InjectFault
	Op   Operation `json:"op,omitempty"`
	Kind FaultKind `json:"kind"`
	// Code is the HTTP status of an "error" fault; default 503. On the API,
	// 500 answers Campaign's {"code":500,"message":"Oops. …"}, others the
	// gateway's {"error_code":"<Code>000","message":"…"}. On the token
	// endpoint, every code answers an OAuth error body
	// {"error":"…","error_description":"<status text>"} whose error is
	// temporarily_unavailable for 503, server_error for other 5xx,
	// invalid_request for 4xx.
	Code int `json:"code,omitempty"`
	// ErrorCode overrides the error_code of "error" and "throttle" faults
	// (for example 429001 or 429002; default 429050), or the OAuth error of
	// an "error" fault on the token endpoint.
	ErrorCode string `json:"errorCode,omitempty"`
	// RetryAfter is the Retry-After of a "throttle" fault, sent as whole
	// seconds (rounded up, at least 1).
	RetryAfter time.Duration `json:"-"`
	// Latency is the delay of a "latency" fault.
	Latency time.Duration `json:"-"`
	// Count limits the fault to the next Count calls it fires on; 0 = no
	// limit. Faults lists what remains.
	Count int `json:"count,omitempty"`
	// Rate is the probability that the fault fires on a matching call, in
	// (0,1]; 0 = every call.
	Rate float64 `json:"rate,omitempty"`
	// Org and Mapping restrict the fault to one organization and mapping
	// (token calls have neither, so a filtered fault never hits them).
	Org     string `json:"organization,omitempty"`
	Mapping string `json:"mappingId,omitempty"`
	// AfterProcessing applies the fault after the call took effect: the
	// ingestion is submitted (or the poll counted, or the token issued) and
	// then the answer is lost or spoiled. By default the fault replaces the
	// call, which changes nothing. Latency faults ignore it.
	AfterProcessing bool `json:"afterProcessing,omitempty"`
}

type faultJSON struct {
	faultAlias
	RetryAfter Duration `json:"retryAfter,omitempty"`
	Latency    Duration `json:"latency,omitempty"`
}

type faultAlias Fault

// MarshalJSON writes RetryAfter and Latency as duration strings ("2s").
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{faultAlias(f), Duration(f.RetryAfter), Duration(f.Latency)})
}

// UnmarshalJSON reads RetryAfter and Latency as duration strings ("2s").
// Unknown fields are an error: a misspelt filter must not widen a fault.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	*f = Fault(j.faultAlias)
	f.RetryAfter, f.Latency = time.Duration(j.RetryAfter), time.Duration(j.Latency)
	return nil
}

func (f Fault) validate() error {
	switch {
	case f.Op != "" && f.Op != campaign.OpTrigger && f.Op != campaign.OpStatus && f.Op != campaign.OpToken:
		return fmt.Errorf("fault: unknown op %q", f.Op)
	case !f.Kind.valid():
		return fmt.Errorf("fault: unknown kind %q", f.Kind)
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("fault: rate %v not in [0,1]", f.Rate)
	case f.Count < 0:
		return fmt.Errorf("fault: negative count")
	case f.Kind == FaultError && f.Code != 0 && (f.Code < 400 || f.Code > 599):
		return fmt.Errorf("fault: error code %d is not a 4xx or 5xx", f.Code)
	case f.Kind == FaultLatency && f.Latency <= 0:
		return fmt.Errorf("fault: latency needs a positive latency")
	}
	return nil
}

func (f *Fault) matches(op Operation, org, mapping string) bool {
	return (f.Op == "" || f.Op == op) && (f.Org == "" || f.Org == org) && (f.Mapping == "" || f.Mapping == mapping)
}

// faultSet holds the active faults.
type faultSet struct {
	active atomic.Int32 // len(list), read without the lock on the fast path
	mu     sync.Mutex
	lastID int
	list   []*Fault
}

// InjectFault activates f and returns its id. It panics if f is invalid
// (unknown op or kind, rate outside [0,1], latency fault without latency):
// that is a bug in the test that calls it.
func (s *Server) InjectFault(f Fault) int {
	if err := f.validate(); err != nil {
		panic("campaignsim: " + err.Error())
	}
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.lastID++
	f.ID = fs.lastID
	fs.list = append(fs.list, &f)
	fs.active.Store(int32(len(fs.list)))
	s.log.Info("campaign-sim: fault injected", "id", f.ID, "op", f.Op, "kind", f.Kind, "count", f.Count, "rate", f.Rate)
	return f.ID
}

// RemoveFault deactivates fault id and reports whether it was active.
func (s *Server) RemoveFault(id int) bool {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.list)
	fs.list = slices.DeleteFunc(fs.list, func(f *Fault) bool { return f.ID == id })
	fs.active.Store(int32(len(fs.list)))
	return len(fs.list) < n
}

// ClearFaults deactivates every fault.
func (s *Server) ClearFaults() {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = nil
	fs.active.Store(0)
}

// Faults returns the active faults; Count is what remains of it.
func (s *Server) Faults() []Fault {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, len(fs.list))
	for i, f := range fs.list {
		out[i] = *f
	}
	return out
}

// pick returns the fault (other than latency) to apply to a call, or nil,
// and the total latency to add. It consumes the counts of the faults that
// fire.
func (fs *faultSet) pick(op Operation, org, mapping string) (*Fault, time.Duration) {
	if fs.active.Load() == 0 {
		return nil, 0
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var chosen *Fault
	var latency time.Duration
	spent := false
	for _, f := range fs.list {
		if !f.matches(op, org, mapping) || (f.Kind != FaultLatency && chosen != nil) {
			continue
		}
		if f.Rate > 0 && rand.Float64() >= f.Rate {
			continue
		}
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				f.Count, spent = -1, true // used up: removed below
			}
		}
		if f.Kind == FaultLatency {
			latency += f.Latency
			continue
		}
		c := *f
		chosen = &c
	}
	if spent {
		fs.list = slices.DeleteFunc(fs.list, func(f *Fault) bool { return f.Count < 0 })
		fs.active.Store(int32(len(fs.list)))
	}
	return chosen, latency
}

// gatewayMessages are the messages of the gateway's error answers.
var gatewayMessages = map[int]string{
	http.StatusTooManyRequests:    "Too many requests",
	http.StatusBadGateway:         "Bad gateway: the backend did not answer",
	http.StatusServiceUnavailable: "Service unavailable",
	http.StatusGatewayTimeout:     "Gateway timeout: the backend did not answer in time",
}

// oversizedPadding fills the info of an oversized answer.
var oversizedPadding = sync.OnceValue(func() []byte { return bytes.Repeat([]byte("x"), 2<<20) })

// writeFault answers a call with fault f and fills c.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, c *Call, f *Fault) {
	switch f.Kind {
	case FaultError:
		code := cmp.Or(f.Code, http.StatusServiceUnavailable)
		body := errBadURI.body
		switch {
		case c.Op == campaign.OpToken:
			c.ErrorCode = cmp.Or(f.ErrorCode, imsErrorFor(code))
			body = mustJSON(imsError{c.ErrorCode, http.StatusText(code)})
		case code != http.StatusInternalServerError:
			c.ErrorCode = cmp.Or(f.ErrorCode, strconv.Itoa(code)+"000")
			msg := cmp.Or(gatewayMessages[code], http.StatusText(code))
			body = mustJSON(campaign.GatewayError{ErrorCode: c.ErrorCode, Message: msg})
		}
		c.HTTPStatus = code
		writeJSON(w, code, body)
	case FaultThrottle:
		secs := max(int64((f.RetryAfter+time.Second-1)/time.Second), 1)
		c.ErrorCode = cmp.Or(f.ErrorCode, "429050")
		c.HTTPStatus = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, http.StatusTooManyRequests, mustJSON(campaign.GatewayError{ErrorCode: c.ErrorCode, Message: gatewayMessages[429]}))
	case FaultUnauthorized:
		c.HTTPStatus = http.StatusUnauthorized
		if c.Op == campaign.OpToken {
			c.ErrorCode = "invalid_client"
			writeJSON(w, http.StatusUnauthorized, errIMSClientID.body)
			return
		}
		c.ErrorCode = errTokenInvalid.errorCode
		writeJSON(w, http.StatusUnauthorized, errTokenInvalid.body)
	case FaultMalformed:
		c.HTTPStatus = http.StatusOK
		writeJSON(w, http.StatusOK, malformedBody(c))
	case FaultOversized:
		c.HTTPStatus = http.StatusOK
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `{"batchId":"","info":"Mapping Id: %s. `, c.Mapping)
		w.Write(oversizedPadding())
		fmt.Fprintf(w, `","numRecords":0,"requestId":%q,"status":"In Progress"}`, c.RequestID)
	case FaultDrop:
		c.HTTPStatus = 0
		s.record(r, *c) // the handler does not return
		drop(w)
	}
}

// imsErrorFor is the OAuth error (RFC 6749) of a token endpoint answering
// code.
func imsErrorFor(code int) string {
	switch {
	case code == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case code >= 500:
		return "server_error"
	}
	return "invalid_request"
}

// malformedBody is a truncated answer of the call's operation.
func malformedBody(c *Call) []byte {
	switch c.Op {
	case campaign.OpToken:
		return []byte(`{"access_token":"eyJhbGciOiJSUzI1NiIsIng1dSI6Imltc19uYTEta2V5LWF0LTEuY2VyIiwia2lk`)
	case campaign.OpTrigger:
		return []byte(`{"requestId": ` + cmp.Or(c.RequestID, "0") + `, "info": "Ingestion request submitted successfully for the Mapping ID: ` + c.Mapping)
	}
	return []byte(`{"batchId":"","info":"Mapping Id: ` + c.Mapping + `.","numRecords":0,"requestId":` + cmp.Or(c.RequestID, "0"))
}

// drop closes the connection without answering. It does not return.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
	panic(http.ErrAbortHandler) // ends the handler; on HTTP/2 it resets the stream
}
