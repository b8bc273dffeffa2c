package campaign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// classCase is one row of the classification specification: an error, its
// Class, and what the predicates say of it.
type classCase struct {
	name                               string
	err                                error
	class                              Class
	retryable, unauthorized, permanent bool
}

// classCases is the specification of Classify and of the predicates: one
// row per kind of failure the client reports.
func classCases() []classCase {
	malformed := fmt.Errorf("%w: no status", ErrMalformed)
	network := errors.New("dial tcp: connection refused")
	const (
		T = true
		F = false
	)
	return []classCase{
		{"nil", nil, ClassUnknown, F, F, F},
		{"not an APIError", errors.New("boom"), ClassUnknown, F, F, F},
		{"APIError without status or cause", &APIError{Operation: OpTrigger}, ClassUnknown, F, F, F},

		// API answers.
		{"400", &APIError{Operation: OpTrigger, StatusCode: 400}, ClassPermanent, F, F, T},
		{"401013", &APIError{Operation: OpTrigger, StatusCode: 401, ErrorCode: "401013"}, ClassUnauthorized, F, T, F},
		{"403000 api key missing", &APIError{Operation: OpTrigger, StatusCode: 403, ErrorCode: "403000"}, ClassForbidden, F, F, T},
		{"403003 api key invalid", &APIError{Operation: OpTrigger, StatusCode: 403, ErrorCode: "403003"}, ClassForbidden, F, F, T},
		{"403010 token missing", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403010"}, ClassUnauthorized, F, T, T},
		{"403020 token of another key", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403020"}, ClassUnauthorized, F, T, T},
		{"403023 profile not valid", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403023"}, ClassForbidden, F, F, T},
		{"403 without code (SQL role)", &APIError{Operation: OpTrigger, StatusCode: 403}, ClassForbidden, F, F, T},
		{"404", &APIError{Operation: OpStatus, StatusCode: 404}, ClassPermanent, F, F, T},
		{"409", &APIError{Operation: OpStatus, StatusCode: 409}, ClassPermanent, F, F, T},
		{"302 not followed", &APIError{Operation: OpStatus, StatusCode: 302}, ClassPermanent, F, F, T},
		{"429", &APIError{Operation: OpStatus, StatusCode: 429, ErrorCode: "429050", RetryAfter: time.Second}, ClassThrottled, T, F, F},
		{"429 without Retry-After", &APIError{Operation: OpTrigger, StatusCode: 429, ErrorCode: "429001"}, ClassThrottled, T, F, F},
		{"500 Oops check your URI", &APIError{Operation: OpTrigger, StatusCode: 500, Message: MessageBadURI}, ClassServerError, T, F, F},
		{"500 on status", &APIError{Operation: OpStatus, StatusCode: 500}, ClassServerError, T, F, F},
		{"501", &APIError{Operation: OpStatus, StatusCode: 501}, ClassTransient, T, F, F},
		{"502", &APIError{Operation: OpStatus, StatusCode: 502}, ClassTransient, T, F, F},
		{"503", &APIError{Operation: OpStatus, StatusCode: 503, ErrorCode: "503000"}, ClassTransient, T, F, F},
		{"504", &APIError{Operation: OpStatus, StatusCode: 504}, ClassTransient, T, F, F},

		// Calls without an (acceptable) answer.
		{"network", &APIError{Operation: OpTrigger, Err: network}, ClassTransient, T, F, F},
		{"timeout", &APIError{Operation: OpTrigger, Err: context.DeadlineExceeded}, ClassTransient, T, F, F},
		{"caller gave up", &APIError{Operation: OpTrigger, Err: context.Canceled, abandoned: true}, ClassAbandoned, F, F, F},
		{"malformed 200", &APIError{Operation: OpTrigger, StatusCode: 200, Err: malformed}, ClassTransient, T, F, F},
		{"redirect refused", &APIError{Operation: OpTrigger, Err: fmt.Errorf("%w: to x", ErrRedirect)}, ClassPermanent, F, F, T},
		{"invalid argument", &APIError{Operation: OpTrigger, Err: fmt.Errorf("%w: id", ErrInvalidArgument)}, ClassPermanent, F, F, T},

		// The token request.
		{"token 400 invalid_client", &APIError{Operation: OpToken, StatusCode: 400, ErrorCode: "invalid_client"}, ClassUnauthorized, F, T, T},
		{"token 401 invalid_client", &APIError{Operation: OpToken, StatusCode: 401, ErrorCode: "invalid_client"}, ClassUnauthorized, F, T, T},
		{"token 400 unsupported_grant_type", &APIError{Operation: OpToken, StatusCode: 400, ErrorCode: "unsupported_grant_type"}, ClassUnauthorized, F, T, T},
		{"token 404 wrong URL", &APIError{Operation: OpToken, StatusCode: 404}, ClassUnauthorized, F, T, T},
		{"token 200 with an OAuth error", &APIError{Operation: OpToken, StatusCode: 200, ErrorCode: "invalid_client"}, ClassUnauthorized, F, T, T},
		{"token 429", &APIError{Operation: OpToken, StatusCode: 429}, ClassThrottled, T, F, F},
		{"token 500", &APIError{Operation: OpToken, StatusCode: 500}, ClassTransient, T, F, F},
		{"token 500 server_error", &APIError{Operation: OpToken, StatusCode: 500, ErrorCode: "server_error"}, ClassTransient, T, F, F},
		{"token 500 Oops", &APIError{Operation: OpToken, StatusCode: 500, Message: MessageBadURI}, ClassTransient, T, F, F},
		{"token 503", &APIError{Operation: OpToken, StatusCode: 503}, ClassTransient, T, F, F},
		{"token network", &APIError{Operation: OpToken, Err: network}, ClassTransient, T, F, F},
		{"token malformed", &APIError{Operation: OpToken, Err: malformed}, ClassTransient, T, F, F},
		{"token source failed", &APIError{Operation: OpToken, Message: "token source failed", Err: network}, ClassTransient, T, F, F},
		{"token redirect refused", &APIError{Operation: OpToken, Err: fmt.Errorf("%w: to x", ErrRedirect)}, ClassPermanent, F, F, T},
		{"token caller gave up", &APIError{Operation: OpToken, Err: context.Canceled, abandoned: true}, ClassAbandoned, F, F, F},

		// Wrapped errors.
		{"wrapped 503", fmt.Errorf("job: %w", &APIError{Operation: OpStatus, StatusCode: 503}), ClassTransient, T, F, F},
		{"wrapped 403003", fmt.Errorf("job: %w", &APIError{Operation: OpStatus, StatusCode: 403, ErrorCode: "403003"}), ClassForbidden, F, F, T},
		{"wrapped 500", fmt.Errorf("job: %w", &APIError{Operation: OpTrigger, StatusCode: 500}), ClassServerError, T, F, F},
		{"joined token 500", errors.Join(errors.New("x"), &APIError{Operation: OpToken, StatusCode: 500}), ClassTransient, T, F, F},
	}
}

func TestClassification(t *testing.T) {
	for _, tt := range classCases() {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.class {
				t.Errorf("Classify = %v, want %v", got, tt.class)
			}
			if got := Retryable(tt.err); got != tt.retryable {
				t.Errorf("Retryable = %v", got)
			}
			if got := Unauthorized(tt.err); got != tt.unauthorized {
				t.Errorf("Unauthorized = %v", got)
			}
			if got := Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent = %v", got)
			}
			if got, want := Forbidden(tt.err), tt.class == ClassForbidden; got != want {
				t.Errorf("Forbidden = %v, want %v", got, want)
			}
			if got, want := FinalAfterRetries(tt.err), tt.class == ClassServerError; got != want {
				t.Errorf("FinalAfterRetries = %v, want %v", got, want)
			}
		})
	}
}

// The classes agree with the older predicates, as Class documents: a
// caller may switch from one to the other without changing behaviour.
func TestClassesAgreeWithPredicates(t *testing.T) {
	for _, tt := range classCases() {
		c := Classify(tt.err)
		retryable := c == ClassTransient || c == ClassThrottled || c == ClassServerError
		permanent := c == ClassForbidden || c == ClassPermanent || (c == ClassUnauthorized && !isAPI401(tt.err))
		if retryable != Retryable(tt.err) || (c == ClassUnauthorized) != Unauthorized(tt.err) || permanent != Permanent(tt.err) {
			t.Errorf("%s: class %v disagrees with Retryable %v, Unauthorized %v, Permanent %v",
				tt.name, c, Retryable(tt.err), Unauthorized(tt.err), Permanent(tt.err))
		}
	}
}

func isAPI401(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Operation != OpToken && e.StatusCode == http.StatusUnauthorized
}

func TestClassString(t *testing.T) {
	tests := []struct {
		c    Class
		want string
	}{
		{ClassUnknown, "unknown"},
		{ClassTransient, "transient"},
		{ClassThrottled, "throttled"},
		{ClassServerError, "server_error"},
		{ClassUnauthorized, "unauthorized"},
		{ClassForbidden, "forbidden"},
		{ClassPermanent, "permanent"},
		{ClassAbandoned, "abandoned"},
		{Class(-1), "Class(-1)"},
		{Class(99), "Class(99)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Class(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
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
