package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TriggerKind classifies a [TriggerResponse]. The zero value is
// TriggerUnknown.
type TriggerKind int

// The kinds of trigger answers.
const (
	TriggerUnknown      TriggerKind = iota // a status the client does not know (kept in Status)
	TriggerAccepted                        // Success: the request was submitted; RequestID is set
	TriggerBusy                            // In Progress: a request of this mapping is running; RequestID is that request
	TriggerNotStopped                      // Failed: the mapping runs on its schedule ("… is not stopped")
	TriggerNotPublished                    // Failed: the mapping is not published ("… is not published")
	TriggerFailed                          // Failed, any other info
)

var triggerKindNames = [...]string{
	TriggerUnknown:      "unknown",
	TriggerAccepted:     "accepted",
	TriggerBusy:         "busy",
	TriggerNotStopped:   "not_stopped",
	TriggerNotPublished: "not_published",
	TriggerFailed:       "failed",
}

// String returns "accepted", "busy", "not_stopped", "not_published",
// "failed" or "unknown".
func (k TriggerKind) String() string {
	if k < 0 || int(k) >= len(triggerKindNames) {
		return "TriggerKind(" + strconv.Itoa(int(k)) + ")"
	}
	return triggerKindNames[k]
}

// Kind classifies the answer by its status and, for Failed, by the end of
// its info text (the mapping id is user-chosen, so only the documented
// endings are matched).
func (r TriggerResponse) Kind() TriggerKind {
	switch r.Status {
	case StatusSuccess:
		return TriggerAccepted
	case StatusInProgress:
		return TriggerBusy
	case StatusFailed:
		info := strings.ToLower(strings.TrimSpace(r.Info))
		switch {
		case strings.HasSuffix(info, " is not stopped"):
			return TriggerNotStopped
		case strings.HasSuffix(info, " is not published"):
			return TriggerNotPublished
		}
		return TriggerFailed
	}
	return TriggerUnknown
}

// ErrorCode returns the first ACP-nnnnnn code in Info, or "".
func (r TriggerResponse) ErrorCode() string { return ErrorCode(r.Info) }

// ErrorCode returns the first ACP-nnnnnn code in Info, or "" (for example
// "ACP-880056" for a fetch failure).
func (r StatusResponse) ErrorCode() string { return ErrorCode(r.Info) }

func (r TriggerResponse) apiStatus() Status { return r.Status }
func (r StatusResponse) apiStatus() Status  { return r.Status }

// triggerWire and statusWire are the lenient shapes the client decodes:
// numbers may come quoted, nulls are empty.
type triggerWire struct {
	RequestID RequestID   `json:"requestId"`
	Info      looseString `json:"info"`
	Status    *string     `json:"status"`
}

type statusWire struct {
	BatchID    looseString `json:"batchId"`
	Info       looseString `json:"info"`
	NumRecords looseInt    `json:"numRecords"`
	RequestID  RequestID   `json:"requestId"`
	Status     *string     `json:"status"`
}

// Bounds of the values the client takes from an answer's body, so that
// no hostile or broken answer puts an unbounded text into a result, an
// event or a log line.
const (
	// MaxIDLen bounds requestId and batchId, in bytes: an answer with a
	// longer one is malformed (an id cut short would name another request).
	MaxIDLen = 128
	// MaxStatusLen bounds status, in bytes: an answer with a longer one is
	// malformed.
	MaxStatusLen = 64
	// MaxInfoLen bounds info, in bytes: a longer text is cut to MaxInfoLen
	// bytes at a rune boundary (the documented texts are far shorter).
	MaxInfoLen = 4096
)

// DecodeTrigger decodes the body of a trigger answer. The body must be a
// JSON object with a non-empty string "status"; an unknown status is kept as
// it is. A Success or In Progress answer must carry a requestId (a JSON
// number or string). Values are bounded (see [MaxIDLen], [MaxStatusLen],
// [MaxInfoLen]). Errors wrap ErrMalformed.
func DecodeTrigger(body []byte) (TriggerResponse, error) {
	var w triggerWire
	if err := decodeObject(body, &w); err != nil {
		return TriggerResponse{}, err
	}
	if err := checkBounds(w.Status, w.RequestID, ""); err != nil {
		return TriggerResponse{}, err
	}
	r := TriggerResponse{RequestID: w.RequestID, Info: truncate(string(w.Info), MaxInfoLen)}
	if w.Status == nil || *w.Status == "" {
		return TriggerResponse{}, fmt.Errorf("%w: no status", ErrMalformed)
	}
	r.Status = Status(*w.Status)
	if (r.Status == StatusSuccess || r.Status == StatusInProgress) && r.RequestID == "" {
		return TriggerResponse{}, fmt.Errorf("%w: status %q without requestId", ErrMalformed, r.Status)
	}
	return r, nil
}

// DecodeStatus decodes the body of a status answer. The body must be a JSON
// object with a non-empty string "status"; an unknown status is kept as it
// is. numRecords may be a JSON number or a numeric string; requestId a JSON
// number or string. Values are bounded (see [MaxIDLen], [MaxStatusLen],
// [MaxInfoLen]). Errors wrap ErrMalformed.
func DecodeStatus(body []byte) (StatusResponse, error) {
	var w statusWire
	if err := decodeObject(body, &w); err != nil {
		return StatusResponse{}, err
	}
	if err := checkBounds(w.Status, w.RequestID, string(w.BatchID)); err != nil {
		return StatusResponse{}, err
	}
	if w.Status == nil || *w.Status == "" {
		return StatusResponse{}, fmt.Errorf("%w: no status", ErrMalformed)
	}
	return StatusResponse{
		BatchID:    string(w.BatchID),
		Info:       truncate(string(w.Info), MaxInfoLen),
		NumRecords: int64(w.NumRecords),
		RequestID:  w.RequestID,
		Status:     Status(*w.Status),
	}, nil
}

// checkBounds refuses a status, a request id or a batch id longer than
// its bound. The error names the field and its length, never its value.
func checkBounds(status *string, requestID RequestID, batchID string) error {
	switch {
	case status != nil && len(*status) > MaxStatusLen:
		return fmt.Errorf("%w: status of %d bytes (at most %d)", ErrMalformed, len(*status), MaxStatusLen)
	case len(requestID) > MaxIDLen:
		return fmt.Errorf("%w: requestId of %d bytes (at most %d)", ErrMalformed, len(requestID), MaxIDLen)
	case len(batchID) > MaxIDLen:
		return fmt.Errorf("%w: batchId of %d bytes (at most %d)", ErrMalformed, len(batchID), MaxIDLen)
	}
	return nil
}

// decodeGatewayError decodes {"error_code":"…","message":"…"} or
// {"code":500,"message":"…"}; ok is false when body is neither.
func decodeGatewayError(body []byte) (GatewayError, bool) {
	var w struct {
		ErrorCode looseString `json:"error_code"`
		Code      looseInt    `json:"code"`
		Message   looseString `json:"message"`
		Msg       looseString `json:"msg"`
	}
	if decodeObject(body, &w) != nil {
		return GatewayError{}, false
	}
	g := GatewayError{ErrorCode: string(w.ErrorCode), Message: string(w.Message)}
	if w.Code > 0 && w.Code <= math.MaxInt32 {
		g.Code = int(w.Code)
	}
	if g.Message == "" {
		g.Message = string(w.Msg)
	}
	return g, g.ErrorCode != "" || g.Code != 0 || g.Message != ""
}

// decodeObject decodes a JSON object into v. Errors wrap ErrMalformed and
// are bounded.
func decodeObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(body, v); err != nil {
		// The text may quote the body (a number literal of any length).
		return fmt.Errorf("%w: %s", ErrMalformed, truncate(printable(err.Error()), maxMessageLen))
	}
	return nil
}

// looseString accepts a JSON string, number, boolean or null.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	if v, ok := simpleString(b); ok {
		*s = looseString(v)
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = looseString(v)
		return nil
	}
	switch string(b) {
	case "null":
		*s = ""
		return nil
	case "true", "false":
		*s = looseString(b)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("not a string or a number")
	}
	*s = looseString(n.String())
	return nil
}

// looseInt accepts an integral JSON number, a string holding one, or null.
type looseInt int64

func (n *looseInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*n = looseInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return errors.New("not an integer")
	}
	*n = looseInt(f)
	return nil
}
