// Package campaignsim is a faithful simulator of Adobe Campaign Standard's
// XDM data ingestion API and of the Adobe IMS token endpoint in front of it.
//
// A Server is an http.Handler with in-memory state: OAuth clients and their
// tokens, XDM mappings with a scripted outcome, ingestion requests, injected
// faults and a call log. It answers the documented requests with the
// documented bodies, byte for byte, and fails loudly (404 JSON and an error
// log line) on anything else. It is safe for concurrent use.
//
// Routes:
//
//	POST /{org}/campaign/dataIngestion/xdmIngestion/{mappingId}/ingest   trigger an ingestion
//	GET  /{org}/campaign/dataIngestion/xdmIngestion/{mappingId}/ingest   status (?requestId= or a JSON body)
//	POST /ims/token/v3                                                   IMS client-credentials token
//	/_sim/…                                                              admin API (see README.md)
package campaignsim

import (
	"cmp"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/internal/pause"
)

// Demo credential: the client New creates when Options.Clients is empty. It
// has the SQL function execution role and may use any organization; its API
// key is its client id.
const (
	DemoClientID     = "campaign-sim-demo"
	DemoClientSecret = "campaign-sim-secret"
)

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Clients are the OAuth server-to-server credentials the server knows.
	// If empty: one demo client (DemoClientID/DemoClientSecret, APIKey =
	// DemoClientID, SQLRole true, any org).
	Clients []Client
	// TokenTTL is the lifetime of issued tokens; default 24h (expires_in 86399).
	TokenTTL time.Duration
	// FirstRequestID is the first ingestion request id; default 3520. Request
	// ids are increasing numbers across the whole server.
	FirstRequestID int64
	// FailedHTTPStatus is the HTTP code of business "Failed" answers on POST
	// and GET; default 200.
	FailedHTTPStatus int
	// CallLogLimit bounds the call log; default 1_000_000 entries. Beyond
	// it the oldest entries are dropped.
	CallLogLimit int
	// RequestLimit bounds the ingestion requests kept for GET; default
	// 1_000_000. Beyond it the oldest are forgotten (GET answers 404).
	RequestLimit int
	// Now is the clock; default time.Now. Tests pass a fake clock to drive
	// Script.Duration and token expiry.
	Now func() time.Time
	// Logger receives the server's logs; default discards. Unknown routes
	// are logged at Error, admin changes at Info, every API call at Debug.
	Logger *slog.Logger
}

// Server is the simulator. Create it with New; it implements http.Handler.
type Server struct {
	now              func() time.Time
	log              *slog.Logger
	tokenTTL         time.Duration
	failedHTTPStatus int
	mux              *http.ServeMux

	auth   authState
	faults faultSet
	calls  callLog

	mu       sync.Mutex // guards the fields below
	mappings map[mappingKey]*mappingEntry
	orgs     map[string]struct{} // organizations that ever had a mapping
	reqs     requestRing
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	s := &Server{
		now:              opts.Now,
		log:              cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		tokenTTL:         cmp.Or(opts.TokenTTL, 24*time.Hour),
		failedHTTPStatus: cmp.Or(opts.FailedHTTPStatus, http.StatusOK),
		mappings:         make(map[mappingKey]*mappingEntry),
		orgs:             make(map[string]struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.reqs.init(cmp.Or(opts.FirstRequestID, 3520), cmp.Or(opts.RequestLimit, 1_000_000))
	s.calls.limit = cmp.Or(opts.CallLogLimit, 1_000_000)
	s.auth.init()
	clients := opts.Clients
	if len(clients) == 0 {
		clients = []Client{{ID: DemoClientID, Secret: DemoClientSecret, SQLRole: true}}
	}
	for _, c := range clients {
		s.AddClient(c)
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	const ingest = "/{org}/campaign/dataIngestion/xdmIngestion/{mapping}/ingest"
	mux := http.NewServeMux()
	mux.Handle("POST "+ingest, s.api(campaign.OpTrigger, s.trigger))
	mux.Handle("GET "+ingest, s.api(campaign.OpStatus, s.status))
	mux.Handle("POST /ims/token/v3", s.api(campaign.OpToken, s.token))
	s.adminRoutes(mux)
	mux.HandleFunc("/", s.unknownRoute)
	s.mux = mux
}

// ServeHTTP serves the API, the token endpoint and the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// answer is what an API handler decided to send.
type answer struct {
	code int
	body []byte
}

// api wraps the handler of one operation: it applies faults, calls h, writes
// the answer and records the call.
func (s *Server) api(op Operation, h func(*http.Request, *Call) answer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := Call{
			Time:    s.now(),
			Method:  r.Method,
			Path:    r.URL.EscapedPath(),
			Op:      op,
			Org:     r.PathValue("org"),
			Mapping: r.PathValue("mapping"),
		}
		s.identify(r, &c)
		f, latency := s.faults.pick(op, c.Org, c.Mapping)
		if latency > 0 {
			if pause.For(r.Context(), latency) != nil {
				return // the caller went away
			}
			c.Fault = FaultLatency
		}
		var a answer
		switch {
		case f == nil || f.AfterProcessing:
			a = h(r, &c)
		case op == campaign.OpStatus:
			c.RequestID = r.URL.Query().Get("requestId") // for the call log
		}
		if f != nil {
			c.Fault = f.Kind
			s.writeFault(w, r, &c, f)
		} else {
			c.HTTPStatus = a.code
			writeJSON(w, a.code, a.body)
		}
		s.record(r, c)
	})
}

// identify fills c.Client and c.APIKey: for a token call, the client_id
// asked for; for an API call, its X-Api-Key and the client its bearer token
// was issued to, if the server issued it (revoked and expired tokens
// included, until expired ones are swept). Faults do not change them.
func (s *Server) identify(r *http.Request, c *Call) {
	if c.Op == campaign.OpToken {
		c.Client, _ = tokenCredentials(r)
		return
	}
	c.APIKey = r.Header.Get("X-Api-Key")
	bearer, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return
	}
	a := &s.auth
	a.mu.RLock()
	defer a.mu.RUnlock()
	if t, issued := a.tokens[bearer]; issued {
		c.Client = t.client.ID
	}
}

func (s *Server) record(r *http.Request, c Call) {
	c = c.bounded()
	s.calls.add(c)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "call",
		slog.String("op", string(c.Op)), slog.String("method", c.Method), slog.String("path", c.Path),
		slog.Int("http_status", c.HTTPStatus), slog.String("status", c.Status),
		slog.String("request_id", c.RequestID), slog.String("error_code", c.ErrorCode),
		slog.String("client", c.Client), slog.String("api_key", c.APIKey),
		slog.String("fault", string(c.Fault)))
}

var jsonContentType = []string{"application/json"}

// writeJSON writes body with the JSON content type. The header slice is
// shared and never modified.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	w.Write(body)
}

// unknownRoute answers every request that matched no route: 404 with a JSON
// body naming it, and an error log line.
func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	s.log.LogAttrs(r.Context(), slog.LevelError, "campaign-sim: unknown route",
		slog.String("method", r.Method), slog.String("path", path), slog.String("query", r.URL.RawQuery))
	s.calls.add(Call{Time: s.now(), Method: r.Method, Path: path, HTTPStatus: http.StatusNotFound})
	writeJSON(w, http.StatusNotFound, mustJSON(unknownRouteBody{
		Code: http.StatusNotFound, Message: "unknown route", Method: r.Method, Path: path,
	}))
}

type unknownRouteBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Method  string `json:"method"`
	Path    string `json:"path"`
}

// campaignError is the body of Campaign's own errors: {"code":500,"message":"…"}.
func campaignError(code int, msg string) answer {
	return answer{code, mustJSON(campaign.GatewayError{Code: code, Message: msg})}
}
