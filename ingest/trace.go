package ingest

import "regexp"

var traceParentRE = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// Trace is a W3C trace context carried from a command to its events and log
// lines. The zero value is "no trace".
type Trace struct {
	Parent string
	State  string
}

// ParseTrace returns the trace context of a command's headers. A malformed
// traceparent (or an all-zero trace or span id) is dropped, as the W3C
// specification asks, and takes its tracestate with it.
func ParseTrace(parent, state string) Trace {
	if !traceParentRE.MatchString(parent) || parent[:2] == "ff" ||
		parent[3:35] == "00000000000000000000000000000000" || parent[36:52] == "0000000000000000" {
		return Trace{}
	}
	if len(state) > 512 {
		state = ""
	}
	return Trace{Parent: parent, State: state}
}

// TraceID returns the trace id part of the traceparent, or "".
func (t Trace) TraceID() string {
	if t.Parent == "" {
		return ""
	}
	return t.Parent[3:35]
}
