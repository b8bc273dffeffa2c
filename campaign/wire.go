package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// Status is the API's own word for the state of an ingestion request. A value
// the client does not know is kept as it is: it is neither terminal nor a
// success.
type Status string

// The documented statuses.
const (
	StatusSuccess    Status = "Success"
	StatusInProgress Status = "In Progress"
	StatusFailed     Status = "Failed"
	StatusAborted    Status = "Aborted"
)

// Known reports whether s is one of the documented statuses.
func (s Status) Known() bool {
	switch s {
	case StatusSuccess, StatusInProgress, StatusFailed, StatusAborted:
		return true
	}
	return false
}

// Terminal reports whether an ingestion in status s has ended. Only the
// documented Success, Failed and Aborted are terminal.
func (s Status) Terminal() bool {
	return s == StatusSuccess || s == StatusFailed || s == StatusAborted
}

// Documented texts of the info field. The %s is the mapping id. The trailing
// space after "Mapping Id: X." on success and its absence on "In Progress" are
// the API's own and are kept byte for byte.
const (
	InfoTriggerAccepted     = "Ingestion request submitted successfully for the Mapping ID: %s"
	InfoTriggerInProgress   = "Ingestion request already in progress for the Mapping ID: %s"
	InfoTriggerNotStopped   = "Unable to submit data ingestion request, XDM Mapping ID: %s is not stopped"
	InfoTriggerNotPublished = "Unable to submit data ingestion request, XDM Mapping ID: %s is not published"

	InfoStatusSuccess     = "Mapping Id: %s. "
	InfoStatusFetchFailed = "Mapping Id: %s. ACP-880056 Failed to fetch the record from the database."
	InfoStatusUploadFail  = "Mapping Id: %s. ACP-880096 Sync Job failed to upload. Please check the error in the Platform UI."
	InfoStatusAborted     = "Mapping Id: %s. Ingestion request aborted due to some issue with data ingestion service. Please submit a new request"
	InfoStatusInProgress  = "Mapping Id: %s."

	// MessageBadURI is the message of the gateway's 500 answer for a bad URI
	// or an unknown tenant: {"code":500,"message":MessageBadURI}.
	MessageBadURI = "Oops. Something went wrong. Check your URI and try again."
)

// Documented error codes in info.
const (
	CodeFetchFailed      = "ACP-880056"
	CodeUploadFailed     = "ACP-880096"
	CodeValidationFailed = "ACP-880185"
)

var errorCodeRE = regexp.MustCompile(`ACP-\d{6}`)

// ErrorCode returns the first ACP-nnnnnn code in info, or "".
func ErrorCode(info string) string {
	return errorCodeRE.FindString(info)
}

// RequestID is an ingestion request id. The API sends it as a JSON number in
// every example and as a string elsewhere; both decode to the same opaque
// string. It encodes as a JSON number when it is all digits, like the API.
type RequestID string

// UnmarshalJSON accepts a JSON number, a JSON string or null.
func (r *RequestID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*r = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		if s, ok := simpleString(b); ok {
			*r = RequestID(s)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("requestId: %w", err)
		}
		*r = RequestID(s)
		return nil
	case isDecimal(b):
		*r = RequestID(b)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("requestId: not a number or a string: %w", err)
	}
	*r = RequestID(n.String())
	return nil
}

// MarshalJSON writes ids that are canonical unsigned decimals ("3520", not
// "0012" nor "+1", which are not valid JSON numbers) as a JSON number and
// others as a string.
func (r RequestID) MarshalJSON() ([]byte, error) {
	if r == "" {
		return []byte("null"), nil
	}
	if n, err := strconv.ParseUint(string(r), 10, 64); err == nil && strconv.FormatUint(n, 10) == string(r) {
		return []byte(r), nil
	}
	return json.Marshal(string(r))
}

// TriggerResponse is the body of POST …/xdmIngestion/{mappingId}/ingest.
// Field order follows the documented example.
type TriggerResponse struct {
	RequestID RequestID `json:"requestId,omitempty"`
	Info      string    `json:"info"`
	Status    Status    `json:"status"`
}

// StatusResponse is the body of GET …/xdmIngestion/{mappingId}/ingest?requestId=.
type StatusResponse struct {
	BatchID    string    `json:"batchId"`
	Info       string    `json:"info"`
	NumRecords int64     `json:"numRecords"`
	RequestID  RequestID `json:"requestId"`
	Status     Status    `json:"status"`
}

// GatewayError is the body of an Adobe I/O gateway error:
// {"error_code":"401013","message":"…"}. Campaign's own 500 answer uses
// {"code":500,"message":"…"}; Code holds it.
type GatewayError struct {
	ErrorCode string `json:"error_code,omitempty"`
	Code      int    `json:"code,omitempty"`
	Message   string `json:"message"`
}

// TokenResponse is the body of a successful IMS token request.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// ErrMalformed is wrapped by every error about an answer that could not be
// decoded (not JSON, missing status, too large).
var ErrMalformed = errors.New("campaign: malformed response")

// simpleString returns the text of a JSON string literal without escapes,
// and false for anything else (the caller then decodes it fully). It is the
// decoding hot path: the API's strings have no escapes.
func simpleString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// isDecimal reports whether b is a JSON number made of digits only.
func isDecimal(b []byte) bool {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
