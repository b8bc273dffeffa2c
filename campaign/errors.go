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
