// Package ingest holds the worker's contract types (Command, Event, Record)
// and the job that turns one command into one ingestion: trigger, poll,
// outcome. It knows nothing of NATS or HTTP; it takes small interfaces.
package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Subject prefixes of the contract.
const (
	CommandSubjectPrefix = "ingest.commands."
	EventSubjectPrefix   = "ingest.events."
)

// MaxCommandBytes is the largest accepted command body.
const MaxCommandBytes = 64 << 10

// MaxIDLen bounds the command id and the correlation id.
const MaxIDLen = 256

var (
	orgRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	mappingRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$`)
)

// ValidOrganization reports whether s is a valid organization (tenant) token.
func ValidOrganization(s string) bool { return orgRE.MatchString(s) }

// ValidMappingID reports whether s is a valid XDM mapping id token.
func ValidMappingID(s string) bool { return mappingRE.MatchString(s) }

// Command asks for one ingestion of one XDM mapping. Every body field is
// optional; the subject is authoritative for Organization and MappingID.
type Command struct {
	ID            string   `json:"id,omitempty"`
	Organization  string   `json:"organization,omitempty"`
	MappingID     string   `json:"mappingId,omitempty"`
	CorrelationID string   `json:"correlationId,omitempty"`
	Timeout       Duration `json:"timeout,omitempty"`

	// Trace is the W3C trace context the command arrived with, if any.
	Trace Trace `json:"-"`
}

// Subject is the command's subject: ingest.commands.<org>.<mapping>.
func (c Command) Subject() string {
	return CommandSubjectPrefix + c.Organization + "." + c.MappingID
}

// Envelope is what arrived with a command besides its body.
type Envelope struct {
	Subject string
	// MsgID is the Nats-Msg-Id header.
	MsgID string
	// FallbackID is used when neither the body nor MsgID names the command:
	// "<stream>-<stream sequence>".
	FallbackID string
	Trace      Trace
}

// ParseCommand decodes and validates a command. It returns a *RejectError
// for input that can never succeed; the command it returns then carries
// whatever could be read (for the rejected event).
func ParseCommand(env Envelope, body []byte) (Command, error) {
	cmd := Command{Trace: env.Trace}
	org, mapping, subjErr := parseCommandSubject(env.Subject)
	cmd.Organization, cmd.MappingID = org, mapping
	cmd.ID = firstNonEmpty(env.MsgID, env.FallbackID)
	if len(body) > MaxCommandBytes {
		return cmd, reject(ReasonInvalidCommand, "body is %d bytes, more than %d", len(body), MaxCommandBytes)
	}
	var b Command
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			return cmd, reject(ReasonInvalidCommand, "body is not a JSON command object: %v", err)
		}
	}
	if b.ID != "" {
		cmd.ID = b.ID
	}
	cmd.CorrelationID, cmd.Timeout = b.CorrelationID, b.Timeout
	if subjErr != nil {
		return cmd, subjErr
	}
	if b.Organization != "" && b.Organization != org {
		return cmd, reject(ReasonSubjectMismatch, "body names organization %q, subject %q", b.Organization, org)
	}
	if b.MappingID != "" && b.MappingID != mapping {
		return cmd, reject(ReasonSubjectMismatch, "body names mapping %q, subject %q", b.MappingID, mapping)
	}
	return cmd, cmd.validateIDs()
}

func (c Command) validateIDs() error {
	if err := checkID("id", c.ID); err != nil {
		return err
	}
	if c.CorrelationID != "" {
		if err := checkID("correlationId", c.CorrelationID); err != nil {
			return err
		}
	}
	if c.Timeout < 0 {
		return reject(ReasonInvalidCommand, "timeout %s is negative", time.Duration(c.Timeout))
	}
	return nil
}

func checkID(name, s string) error {
	if s == "" {
		return reject(ReasonInvalidCommand, "%s is empty", name)
	}
	if len(s) > MaxIDLen {
		return reject(ReasonInvalidCommand, "%s is %d bytes, more than %d", name, len(s), MaxIDLen)
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0 {
		return reject(ReasonInvalidCommand, "%s holds a character that is not printable", name)
	}
	return nil
}

func parseCommandSubject(subject string) (org, mapping string, err error) {
	rest, ok := strings.CutPrefix(subject, CommandSubjectPrefix)
	tokens := strings.Split(rest, ".")
	if !ok || len(tokens) != 2 {
		return "", "", reject(ReasonInvalidCommand, "subject %q is not %s<organization>.<mappingId>", subject, CommandSubjectPrefix)
	}
	org, mapping = tokens[0], tokens[1]
	if !ValidOrganization(org) {
		return org, mapping, reject(ReasonInvalidCommand, "organization %q does not match %s", org, orgRE)
	}
	if !ValidMappingID(mapping) {
		return org, mapping, reject(ReasonInvalidCommand, "mapping id %q does not match %s", mapping, mappingRE)
	}
	return org, mapping, nil
}

// Deadline is when a job for c, first published at published, times out:
// the command's timeout capped by max (and max when the command has none).
func (c Command) Deadline(published time.Time, max time.Duration) time.Time {
	d := time.Duration(c.Timeout)
	if d <= 0 || d > max {
		d = max
	}
	return published.Add(d)
}

// RejectError is a command that can never succeed.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Duration is a time.Duration written in JSON as a Go duration string ("2h").
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"2h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}
