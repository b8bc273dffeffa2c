package campaignsim

import (
	"sync"
	"time"
)

// Call is one call the server answered (or dropped), as the call log keeps it.
type Call struct {
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`                   // as sent (escaped)
	Op         Operation `json:"op"`                     // "" for an unknown route
	Org        string    `json:"organization,omitempty"` // from the path
	Mapping    string    `json:"mappingId,omitempty"`    // from the path, unescaped
	RequestID  string    `json:"requestId,omitempty"`    // answered by a trigger, asked by a status call
	HTTPStatus int       `json:"httpStatus"`             // 0 when the connection was dropped
	// Status is the API status in the answer, "" for errors. For a fault
	// with AfterProcessing it is the status the call would have answered.
	Status string `json:"status,omitempty"`
	// ErrorCode is the gateway's error_code, the ACP-nnnnnn code of a failed
	// ingestion, or the IMS error of a token call.
	ErrorCode string    `json:"errorCode,omitempty"`
	Fault     FaultKind `json:"fault,omitempty"` // the injected fault that hit the call
}

// callLog is a bounded log: beyond limit entries the oldest are overwritten.
type callLog struct {
	mu    sync.Mutex
	limit int
	buf   []Call
	head  int // index of the oldest entry once buf is full
}

func (l *callLog) add(c Call) {
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
