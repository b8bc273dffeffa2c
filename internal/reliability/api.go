package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// API is the Campaign simulator served over real HTTP behind a witness.
// Each worker process gets its own base URL (URL(proc) = server + "/p<proc>"):
// the witness strips the prefix and logs which process made each call, so
// that resume and hand-over times can be read from the call log.
type API struct {
	Sim *campaignsim.Server
	srv *httptest.Server

	mu    sync.Mutex
	calls []Call
}

// Call is one API call as the witness saw it.
type Call struct {
	Time      time.Time
	Proc      int // the worker process, from the URL prefix; 0 if none
	Op        campaignsim.Operation
	Mapping   string
	RequestID string // asked by a status call, answered by a trigger
	Code      int    // HTTP status; 0 when the connection was dropped
	// Status is the API status of the answer ("In Progress", "Success", …),
	// "" for errors and token calls.
	Status string
}

// StartAPI serves a simulator with mappings on a free loopback port.
func StartAPI(mappings ...campaignsim.Mapping) *API {
	a := &API{Sim: campaignsim.New(campaignsim.Options{})}
	for _, m := range mappings {
		a.Sim.PutMapping(m)
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

// URL is the base URL for worker process proc (INGEST_CAMPAIGN_URL; the
// token endpoint is URL(proc)+"/ims/token/v3").
func (a *API) URL(proc int) string { return fmt.Sprintf("%s/p%d", a.srv.URL, proc) }

// Close stops the server.
func (a *API) Close() { a.srv.Close() }

// Calls returns the witness's log, oldest first.
func (a *API) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	proc := 0
	if rest, ok := strings.CutPrefix(r.URL.Path, "/p"); ok {
		num, path, _ := strings.Cut(rest, "/")
		if n, err := strconv.Atoi(num); err == nil {
			proc = n
			r.URL.Path = "/" + path
			r.URL.RawPath = ""
		}
	}
	c := Call{Proc: proc, RequestID: r.URL.Query().Get("requestId")}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/ims/token/v3":
		c.Op = campaign.OpToken
	case len(parts) == 6 && r.Method == http.MethodPost:
		c.Op, c.Mapping = campaign.OpTrigger, parts[4]
	case len(parts) == 6:
		c.Op, c.Mapping = campaign.OpStatus, parts[4]
	}
	rec := &recorder{ResponseWriter: w}
	defer func() {
		// A dropped connection panics with http.ErrAbortHandler: log it too.
		c.Time, c.Code = time.Now(), rec.code
		if c.Op != campaign.OpToken {
			c.Status = jsonString(rec.head.Bytes(), "status")
			if c.Op == campaign.OpTrigger {
				c.RequestID = jsonNumber(rec.head.Bytes(), "requestId")
			}
		}
		a.mu.Lock()
		a.calls = append(a.calls, c)
		a.mu.Unlock()
	}()
	a.Sim.ServeHTTP(rec, r)
}

// recorder keeps the status code and the first bytes of an answer.
type recorder struct {
	http.ResponseWriter
	code int
	head bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if room := 512 - r.head.Len(); room > 0 {
		r.head.Write(b[:min(room, len(b))])
	}
	return r.ResponseWriter.Write(b)
}

// Hijack lets the simulator's drop fault close the connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// jsonString finds "key":"value" in a compact JSON answer.
func jsonString(b []byte, key string) string {
	_, rest, ok := bytes.Cut(b, []byte(`"`+key+`":"`))
	if !ok {
		return ""
	}
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(v)
}

// jsonNumber finds "key":123 (or "key":"123") in a compact JSON answer.
func jsonNumber(b []byte, key string) string {
	_, rest, ok := bytes.Cut(b, []byte(`"`+key+`":`))
	if !ok {
		return ""
	}
	rest = bytes.TrimPrefix(rest, []byte(`"`))
	end := bytes.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	return string(rest[:end])
}
