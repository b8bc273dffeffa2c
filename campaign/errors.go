package campaign

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrInvalidArgument is wrapped by errors about a call that was not sent
	// because an argument cannot be used (an empty organization, a mapping id
	// of "." or "..", an empty request id). It is permanent.
	ErrInvalidArgument = errors.New("campaign: invalid argument")

	// ErrRedirect is wrapped by errors about a redirect the client refused:
	// one to another scheme or host (credentials are never sent there), or
	// more than maxRedirects in a row. It is permanent.
	ErrRedirect = errors.New("campaign: redirect refused")
)

// maxRetryAfter caps a Retry-After value, so that a hostile or broken header
// cannot park a job for years.
const maxRetryAfter = 24 * time.Hour

// maxMessageLen caps APIError.Message taken from an answer's body, and the
// text of APIError.Err in Error.
const maxMessageLen = 512

// maxCodeLen caps APIError.ErrorCode taken from an answer's body.
const maxCodeLen = 64

// APIError is the error of every failed call of the client, whatever went
// wrong: an HTTP error answer of the API or of the token endpoint, a network
// error or timeout, an answer that could not be decoded, a refused redirect,
// an unusable argument. Use [Classify] (or [Retryable], [Unauthorized],
// [Forbidden], [FinalAfterRetries], [Permanent]) and [RetryAfterOf] to
// decide what to do; errors.Is sees through Err.
//
// No field ever holds the access token, the client secret or the
// Authorization header.
type APIError struct {
	// Operation is OpTrigger, OpStatus or OpToken (the token request that the
	// call needed failed).
	Operation string
	// StatusCode is the HTTP status of the answer; 0 when there was none.
	StatusCode int
	// ErrorCode is the gateway's error_code ("401013", "403003", "429050", …)
	// or, for the token endpoint, the OAuth error ("invalid_client", …): one
	// printable line of at most 64 bytes.
	ErrorCode string
	// Message is the answer's message (or the start of its body): one
	// printable line of at most 512 bytes, secrets redacted.
	Message string
	// RetryAfter is the answer's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying error, if any: a transport error, a timeout, or
	// an error wrapping ErrMalformed, ErrRedirect, ErrInvalidArgument.
	Err error

	// abandoned is set when the caller's context ended (or its deadline
	// could not be met): not worth retrying in that context.
	abandoned bool
}

// Error returns a one-line description, for example
// "campaign trigger: http 403 403003: Api Key is invalid". It is bounded
// (about 1.2 KB at most): the text of Err is cut to 512 bytes, since a
// transport error may quote what a server sent.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("campaign ")
	b.WriteString(e.Operation)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": http %d", e.StatusCode)
	}
	if e.ErrorCode != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrorCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(truncate(printable(e.Err.Error()), maxMessageLen))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *APIError) Unwrap() error { return e.Err }

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

// RetryAfterOf returns the Retry-After of err's answer, if it had one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var e *APIError
	if !errors.As(err, &e) || e.RetryAfter <= 0 {
		return 0, false
	}
	return e.RetryAfter, true
}

// tokenRejected reports whether the token endpoint answered with a 4xx
// other than 429 (or an OAuth error in a 2xx).
func (e *APIError) tokenRejected() bool {
	return e.Operation == OpToken && e.StatusCode != 0 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusTooManyRequests && e.Err == nil
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an HTTP date
// (relative to now). It returns 0 for an absent, invalid or past value and
// caps the result at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	} else if errors.Is(err, strconv.ErrRange) {
		return maxRetryAfter
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	// An HTTP date has whole seconds; round up so the wait is never short.
	return d.Round(time.Second)
}

// snippet makes a printable, single-line text out of an answer's body, for
// an error message. redact shortens it.
func snippet(b []byte) string { return printable(string(b)) }

// printable returns s on one line: line breaks, tabs and invalid UTF-8
// become spaces, other unprintable runes (control and format characters,
// ANSI escapes) are dropped, and the ends are trimmed.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, r == '\n', r == '\r', r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// redactor removes secrets from texts that came from a server.
type redactor []string

// redact replaces every secret of r, and extra, in s, makes it printable
// and cuts it to maxMessageLen bytes. Secrets are replaced before anything
// is cut, so that no part of one survives.
func (r redactor) redact(s string, extra ...string) string {
	for _, list := range [][]string{r, extra} {
		for _, secret := range list {
			if len(secret) >= 4 {
				s = strings.ReplaceAll(s, secret, "[redacted]")
			}
		}
	}
	return truncate(printable(s), maxMessageLen)
}

// code is redact for an error code: at most maxCodeLen bytes.
func (r redactor) code(s string, extra ...string) string {
	return truncate(r.redact(s, extra...), maxCodeLen)
}
