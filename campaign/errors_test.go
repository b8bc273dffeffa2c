package campaign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestClassification(t *testing.T) {
	malformed := fmt.Errorf("%w: no status", ErrMalformed)
	network := errors.New("dial tcp: connection refused")
	tests := []struct {
		name                               string
		err                                error
		retryable, unauthorized, permanent bool
	}{
		{"nil", nil, false, false, false},
		{"not an APIError", errors.New("boom"), false, false, false},
		{"400", &APIError{Operation: OpTrigger, StatusCode: 400}, false, false, true},
		{"401013", &APIError{Operation: OpTrigger, StatusCode: 401, ErrorCode: "401013"}, false, true, false},
		{"403000", &APIError{Operation: OpTrigger, StatusCode: 403, ErrorCode: "403000"}, false, false, true},
		{"403003", &APIError{Operation: OpTrigger, StatusCode: 403, ErrorCode: "403003"}, false, false, true},
		{"403010", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403010"}, false, true, true},
		{"403020", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403020"}, false, true, true},
		{"403023", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403023"}, false, false, true},
		{"403 without code", &APIError{Operation: OpStatus, StatusCode: 403}, false, false, true},
		{"404", &APIError{Operation: OpStatus, StatusCode: 404}, false, false, true},
		{"409", &APIError{Operation: OpStatus, StatusCode: 409}, false, false, true},
		{"429", &APIError{Operation: OpStatus, StatusCode: 429, ErrorCode: "429050", RetryAfter: time.Second}, true, false, false},
		{"500", &APIError{Operation: OpStatus, StatusCode: 500}, true, false, false},
		{"502", &APIError{Operation: OpStatus, StatusCode: 502}, true, false, false},
		{"503", &APIError{Operation: OpStatus, StatusCode: 503, ErrorCode: "503000"}, true, false, false},
		{"504", &APIError{Operation: OpStatus, StatusCode: 504}, true, false, false},
		{"network", &APIError{Operation: OpTrigger, Err: network}, true, false, false},
		{"timeout", &APIError{Operation: OpTrigger, Err: context.DeadlineExceeded}, true, false, false},
		{"caller gave up", &APIError{Operation: OpTrigger, Err: context.Canceled, abandoned: true}, false, false, false},
		{"malformed 200", &APIError{Operation: OpTrigger, StatusCode: 200, Err: malformed}, true, false, false},
		{"redirect refused", &APIError{Operation: OpTrigger, Err: fmt.Errorf("%w: to x", ErrRedirect)}, false, false, true},
		{"invalid argument", &APIError{Operation: OpTrigger, Err: fmt.Errorf("%w: id", ErrInvalidArgument)}, false, false, true},
		{"token 400", &APIError{Operation: OpToken, StatusCode: 400, ErrorCode: "invalid_client"}, false, true, true},
		{"token 401", &APIError{Operation: OpToken, StatusCode: 401, ErrorCode: "invalid_client"}, false, true, true},
		{"token 429", &APIError{Operation: OpToken, StatusCode: 429}, true, false, false},
		{"token 503", &APIError{Operation: OpToken, StatusCode: 503}, true, false, false},
		{"token network", &APIError{Operation: OpToken, Err: network}, true, false, false},
		{"token malformed", &APIError{Operation: OpToken, Err: malformed}, true, false, false},
		{"wrapped 503", fmt.Errorf("job: %w", &APIError{Operation: OpStatus, StatusCode: 503}), true, false, false},
		{"wrapped 403003", fmt.Errorf("job: %w", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403003"}), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.err); got != tt.retryable {
				t.Errorf("Retryable = %v", got)
			}
			if got := Unauthorized(tt.err); got != tt.unauthorized {
				t.Errorf("Unauthorized = %v", got)
			}
			if got := Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent = %v", got)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"86400", 24 * time.Hour},
		{"86401", 24 * time.Hour},
		{"18446744073709551616", 24 * time.Hour},
		{"Tue, 01 Dec 2026 02:01:30 GMT", 90 * time.Second},
		{"Tuesday, 01-Dec-26 02:00:10 GMT", 10 * time.Second},
		{"Tue Dec  1 02:00:05 2026", 5 * time.Second},
		{"Tue, 01 Dec 2026 01:59:00 GMT", 0},
		{"Wed, 01 Dec 2027 02:00:00 GMT", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := parseRetryAfter(tt.value, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		err  *APIError
		want string
	}{
		{&APIError{Operation: OpTrigger, StatusCode: http.StatusForbidden, ErrorCode: "403003", Message: "Api Key is invalid"},
			"campaign trigger: http 403 403003: Api Key is invalid"},
		{&APIError{Operation: OpStatus, StatusCode: 429, ErrorCode: "429050", Message: "Too many requests", RetryAfter: 2 * time.Second},
			"campaign status: http 429 429050: Too many requests (retry after 2s)"},
		{&APIError{Operation: OpToken, Message: "request failed", Err: errors.New("dial tcp: refused")},
			"campaign token: request failed: dial tcp: refused"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
