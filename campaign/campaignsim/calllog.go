package campaignsim

import (
	"sync"
	"time"
	"unicode/utf8"
)

// Call is one call the server answered (or dropped), as the call log keeps it.
type Call struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`                   // as sent (escaped)
	Op        Operation `json:"op"`                     // "" for an unknown route
	Org       string    `json:"organization,omitempty"` // from the path
	Mapping   string    `json:"mappingId,omitempty"`    // from the path, unescaped
	RequestID string    `json:"requestId,omitempty"`    // answered by a trigger, asked by a status call
	// Client is the id of the OAuth client whose bearer token the call
	// carried (the token authenticated it, unless the answer says it was
	// expired or revoked), "" without a token the server issued; for a
	// token call, the client_id it asked for, known or not.
	Client string `json:"client,omitempty"`
	// APIKey is the X-Api-Key the call carried ("" for token calls).
	APIKey     string `json:"apiKey,omitempty"`
	HTTPStatus int    `json:"httpStatus"` // 0 when the connection was dropped
	// Status is the API status in the answer, "" for errors. For a fault
	// with AfterProcessing it is the status the call would have answered.
	Status string `json:"status,omitempty"`
	// ErrorCode is the gateway's error_code, the ACP-nnnnnn code of a failed
	// ingestion, or the IMS error of a token call.
	ErrorCode string    `json:"errorCode,omitempty"`
	Fault     FaultKind `json:"fault,omitempty"` // the injected fault that hit the call
}

// maxCallField bounds the texts a call log entry takes from a request's
// headers, form or query (Client, APIKey, RequestID), in bytes: the log
// never keeps a 30 KB header.
const maxCallField = 128

// bounded returns c with the texts taken from the request cut to
// maxCallField bytes, at a rune boundary where the text is valid UTF-8.
func (c Call) bounded() Call {
	c.Client, c.APIKey, c.RequestID = cut(c.Client), cut(c.APIKey), cut(c.RequestID)
	return c
}

// cut cuts s to at most maxCallField bytes.
func cut(s string) string {
	if len(s) <= maxCallField {
		return s
	}
	s = s[:maxCallField]
	for i := 0; i < utf8.UTFMax && len(s) > 0 && !utf8.ValidString(s); i++ {
		s = s[:len(s)-1]
	}
	return s
}

// callLog is a bounded log: beyond limit entries the oldest are overwritten.
type callLog struct {
	mu    sync.Mutex
	limit int
	buf   []Call
	head  int // index of the oldest entry once buf is full
}

func (l *callLog) add(c Call) {
	c = c.bounded()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) < l.limit {
		l.buf = append(l.buf, c)
		return
	}
	l.buf[l.head] = c
	l.head = (l.head + 1) % l.limit
}

// Calls returns a copy of the call log, oldest first.
func (s *Server) Calls() []Call {
	l := &s.calls
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Call, 0, len(l.buf))
	out = append(out, l.buf[l.head:]...)
	return append(out, l.buf[:l.head]...)
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	l := &s.calls
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf, l.head = nil, 0
}
