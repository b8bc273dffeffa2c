package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/layout"
)

// deniedError is a NATS permission violation: the server refused to let
// the user publish (or subscribe) to subject. The server says so at once,
// asynchronously; a request on a denied subject would otherwise only time
// out.
type deniedError struct {
	// op is "publish to" or "subscribe to".
	op      string
	subject string
	// hint says what to change besides the permissions; may be empty.
	hint string
}

func (e *deniedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "permission denied: %s %q (", e.op, e.subject)
	if p := purpose(e.subject); p != "" {
		b.WriteString(p + "; ")
	}
	b.WriteString("check the user's NATS permissions")
	if e.hint != "" {
		b.WriteString("; " + e.hint)
	}
	b.WriteString(")")
	return b.String()
}

// violationRE finds the operation and subject in the server's
// "Permissions Violation for Publish to "<subject>"" (or "Subscription to").
var violationRE = regexp.MustCompile(`(?i)violation for (publish|subscription) to "([^"]*)"`)

// parseViolation reads a permission violation from an asynchronous NATS
// error; ok is false for any other error.
func parseViolation(err error) (d *deniedError, ok bool) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return nil, false
	}
	m := violationRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &deniedError{op: "access to", subject: "?"}, true
	}
	op := "publish to"
	if strings.EqualFold(m[1], "subscription") {
		op = "subscribe to"
	}
	return &deniedError{op: op, subject: m[2]}, true
}

// Subjects ingestctl uses besides the contract's.
const (
	// apiPrefix is the JetStream API's subject prefix.
	apiPrefix = "$JS.API."
	// jobsStream is the stream behind the job bucket.
	jobsStream = "KV_" + layout.DefaultBucket
	// jobKeyPrefix is the subject prefix of the job bucket's keys.
	jobKeyPrefix = "$KV." + layout.DefaultBucket + "."
	// consumerDelete is the prefix of the consumer deletions that
	// ingestctl can do without (see session.tolerates).
	consumerDelete = apiPrefix + "CONSUMER.DELETE."
)

// purpose says what ingestctl was doing with subject, in words; "" when
// the subject is not one it knows.
func purpose(subject string) string {
	if rest, ok := strings.CutPrefix(subject, layout.CommandPrefix); ok {
		org, _, _ := strings.Cut(rest, ".")
		return "publishing a command for organization " + org
	}
	if rest, ok := strings.CutPrefix(subject, apiPrefix+"CONSUMER.CREATE."); ok {
		stream, rest, _ := strings.Cut(rest, ".")
		_, filter, _ := strings.Cut(rest, ".") // after the consumer name
		switch {
		case filter == "":
			return "creating a consumer on " + stream + " without a filter subject"
		case stream == jobsStream:
			return "reading the job records " + strings.TrimPrefix(filter, jobKeyPrefix)
		default:
			return "reading the events " + filter
		}
	}
	if key, ok := strings.CutPrefix(subject, apiPrefix+"DIRECT.GET."+jobsStream+"."+jobKeyPrefix); ok {
		return "reading the job record " + key
	}
	if strings.HasPrefix(subject, "$JS.FC.") {
		return "answering JetStream flow control"
	}
	if rest, ok := strings.CutPrefix(subject, apiPrefix); ok {
		return "JetStream API " + rest
	}
	return ""
}
