// The classification of the client's errors: what a caller should do
// about each.

package campaign

import (
	"errors"
	"net/http"
	"strconv"
)

// Retryable reports whether err is worth retrying later: HTTP 429 and 5xx
// answers (API or token endpoint), network errors and timeouts, and answers
// that could not be decoded (ErrMalformed, oversized bodies included). It is
// false when the caller's own context ended.
func Retryable(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.abandoned, errors.Is(e.Err, ErrInvalidArgument), errors.Is(e.Err, ErrRedirect):
		return false
	case errors.Is(e.Err, ErrMalformed):
		return true
	case e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500:
		return true
	}
	return e.Err != nil && e.StatusCode == 0
}

// Unauthorized reports whether err says that the credential was not
// accepted: an API 401 (401013), an API 403 with 403010/403020 (token missing
// or invalid), or a 4xx from the token endpoint other than 429. The client
// has already fetched one fresh token and retried once when it returns such
// an error.
func Unauthorized(err error) bool {
	if err == nil {
		return false // before e escapes: no allocation on the common path
	}
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.Operation == OpToken {
		return e.tokenRejected()
	}
	return e.StatusCode == http.StatusUnauthorized ||
		(e.StatusCode == http.StatusForbidden && (e.ErrorCode == "403010" || e.ErrorCode == "403020"))
}

// Permanent reports whether retrying err cannot help: API answers 400, 403
// (every error code), 404 and the other 3xx/4xx except 401 and 429; token
// endpoint 4xx except 429; refused redirects; unusable arguments.
func Permanent(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.abandoned:
		return false
	case errors.Is(e.Err, ErrInvalidArgument), errors.Is(e.Err, ErrRedirect):
		return true
	case e.Operation == OpToken:
		return e.tokenRejected()
	case errors.Is(e.Err, ErrMalformed):
		return false
	}
	return e.StatusCode >= 300 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusUnauthorized && e.StatusCode != http.StatusTooManyRequests
}

// Class is what a caller should do about an error of the client. [Classify]
// returns it; the zero value is ClassUnknown.
//
// The classes agree with the predicates: [Retryable] is true exactly for
// ClassTransient, ClassThrottled and ClassServerError; [Unauthorized] exactly
// for ClassUnauthorized; [Permanent] for ClassForbidden, ClassPermanent and
// every ClassUnauthorized error except an API 401 (see [Unauthorized]).
type Class int

// The classes of errors.
const (
	// ClassUnknown: err is nil, is not an *APIError, or is an *APIError
	// that none of the rules below covers. The caller decides.
	ClassUnknown Class = iota
	// ClassTransient: retry later with backoff. API 502, 503, 504 and
	// other 5xx except 500; every failure of the token request other than a
	// refusal (5xx, network error, timeout, undecodable answer, a failing
	// TokenSource); network errors and timeouts; undecodable or oversized
	// answers (ErrMalformed).
	ClassTransient
	// ClassThrottled: HTTP 429 from the API or the token endpoint; retry
	// after [RetryAfterOf] when it says, else with backoff.
	ClassThrottled
	// ClassServerError: an API HTTP 500, Campaign's "Oops. Something went
	// wrong. Check your URI and try again." (a bad URI or an unknown
	// tenant). Retry it a few times within one attempt, then give up: it
	// rarely heals. Never set for the token endpoint, whose 500 is
	// ClassTransient.
	ClassServerError
	// ClassUnauthorized: the credential was refused. API 401 (401013) and
	// API 403 403010/403020, after the client fetched one fresh token and
	// retried once; token endpoint 4xx other than 429 (invalid_client,
	// unsupported_grant_type, …). Final.
	ClassUnauthorized
	// ClassForbidden: an API 403 other than 403010/403020: the API key is
	// missing or invalid (403000, 403003), the tenant is not in the
	// credential's product profiles (403023), or the user lacks the SQL
	// function execution role (no error_code). Final.
	ClassForbidden
	// ClassPermanent: retrying cannot help. Other API 3xx and 4xx (400, 404,
	// 409, …), refused redirects (ErrRedirect), unusable arguments
	// (ErrInvalidArgument). Final.
	ClassPermanent
	// ClassAbandoned: the caller's context ended (or its deadline could not
	// be met) before the call got an answer. Neither the API's fault nor
	// final: decide by the caller's own state.
	ClassAbandoned
)

var classNames = [...]string{
	ClassUnknown:      "unknown",
	ClassTransient:    "transient",
	ClassThrottled:    "throttled",
	ClassServerError:  "server_error",
	ClassUnauthorized: "unauthorized",
	ClassForbidden:    "forbidden",
	ClassPermanent:    "permanent",
	ClassAbandoned:    "abandoned",
}

// String returns the class's name: "transient", "throttled",
// "server_error", "unauthorized", "forbidden", "permanent", "abandoned" or
// "unknown". It is fit for a metric label.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

// Classify returns the class of err, which may wrap an *APIError. See
// [Class] for the rules.
func Classify(err error) Class {
	var e *APIError
	switch {
	case !errors.As(err, &e):
		return ClassUnknown
	case e.abandoned:
		return ClassAbandoned
	case errors.Is(e.Err, ErrInvalidArgument), errors.Is(e.Err, ErrRedirect):
		return ClassPermanent
	case e.Operation == OpToken:
		return e.tokenClass()
	case errors.Is(e.Err, ErrMalformed):
		return ClassTransient
	}
	return e.apiClass()
}

// tokenClass is the class of a failed token request.
func (e *APIError) tokenClass() Class {
	switch {
	case e.tokenRejected():
		return ClassUnauthorized
	case e.StatusCode == http.StatusTooManyRequests:
		return ClassThrottled
	case e.StatusCode >= 500 || e.Err != nil:
		return ClassTransient
	}
	return ClassUnknown
}

// apiClass is the class of an API answer, or of a call that got none.
func (e *APIError) apiClass() Class {
	code := e.StatusCode
	switch {
	case code == 0 && e.Err != nil:
		return ClassTransient
	case code == http.StatusUnauthorized,
		code == http.StatusForbidden && (e.ErrorCode == "403010" || e.ErrorCode == "403020"):
		return ClassUnauthorized
	case code == http.StatusForbidden:
		return ClassForbidden
	case code == http.StatusTooManyRequests:
		return ClassThrottled
	case code == http.StatusInternalServerError:
		return ClassServerError
	case code > 500:
		return ClassTransient
	case code >= 300 && code < 500:
		return ClassPermanent
	}
	return ClassUnknown
}

// Forbidden reports whether err is an API 403 other than 403010/403020 (an
// API key missing or invalid, a tenant outside the credential's product
// profiles, a user without the SQL function execution role): the class
// ClassForbidden. Such errors are also [Permanent].
func Forbidden(err error) bool { return Classify(err) == ClassForbidden }

// FinalAfterRetries reports whether err is an API HTTP 500, Campaign's
// "Oops. Something went wrong. Check your URI and try again.": the class
// ClassServerError. It is [Retryable], but only a few times within one
// attempt; after that the error is final. A 500 of the token endpoint is
// not: it is ClassTransient.
func FinalAfterRetries(err error) bool { return Classify(err) == ClassServerError }
