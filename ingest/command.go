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

// MaxCommandBytes is the largest accepted command body.
const MaxCommandBytes = 64 << 10

// MaxIDLen bounds the command id and the correlation id.
const MaxIDLen = 256

var (
	orgRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	mappingRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$`)
)

// ValidOrganization reports whether s is a valid organization (tenant)
// token: it matches orgRE. A byte loop: it runs for every event.
func ValidOrganization(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidMappingID reports whether s is a valid XDM mapping id token: it
// matches mappingRE.
func ValidMappingID(s string) bool {
	if len(s) == 0 || len(s) > 128 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

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

// Envelope is what arrived with a command besides its body.
type Envelope struct {
	// Subject is the command's subject, as it arrived.
	Subject string
	// Organization and MappingID are the subject's tokens (not validated);
	// BadSubject is set when the subject does not have the command form.
	Organization, MappingID string
	BadSubject              bool
	// MsgID is the Nats-Msg-Id header.
	MsgID string
	// FallbackID is used when neither the body nor MsgID names the command:
	// "<stream>-<stream sequence>". It is unique per message.
	FallbackID string
	Trace      Trace
}

// ScopedMsgID is the Nats-Msg-Id a publisher sets for command id in org:
// "<org>:<id>". JetStream's duplicate window spans the whole stream; with
// the organization in it, two organizations' ids never collide there.
func ScopedMsgID(org, id string) string { return org + ":" + id }

// Deduplicates reports whether JetStream's duplicate window already guards
// cmd's id: its Nats-Msg-Id is the id, bare or scoped, or the id is the
// stream's own. Otherwise the id must be claimed before the job triggers.
func (e Envelope) Deduplicates(cmd Command) bool {
	return cmd.ID == e.FallbackID || e.MsgID == cmd.ID || e.MsgID == ScopedMsgID(cmd.Organization, cmd.ID)
}

// ParseCommand decodes and validates a command. It returns a *RejectError
// for input that can never succeed; the command it returns then carries
// whatever could be read, bounded so that it fits in an event's headers:
// an id that is invalid is replaced by the envelope's fallback id, and
// other invalid fields are cut (see Bounded).
func ParseCommand(env Envelope, body []byte) (Command, error) {
	cmd, err := parseCommand(env, body)
	if err != nil {
		cmd = cmd.bounded(env)
	}
	return cmd, err
}

func parseCommand(env Envelope, body []byte) (Command, error) {
	cmd := Command{Trace: env.Trace, Organization: env.Organization, MappingID: env.MappingID}
	cmd.ID = firstNonEmpty(env.MsgID, env.FallbackID)
	if len(body) > MaxCommandBytes {
		return cmd, reject(ReasonInvalidCommand, "body is %d bytes, more than %d", len(body), MaxCommandBytes)
	}
	var b Command
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			return cmd, reject(ReasonInvalidCommand, "body is not a JSON command object: %s", Bounded(err.Error(), 200))
		}
	}
	if b.ID != "" {
		cmd.ID = b.ID
	}
	cmd.CorrelationID, cmd.Timeout = b.CorrelationID, b.Timeout
	if err := checkSubject(env); err != nil {
		return cmd, err
	}
	if b.Organization != "" && b.Organization != cmd.Organization {
		return cmd, reject(ReasonSubjectMismatch, "body names organization %q, subject %q", Bounded(b.Organization, 64), cmd.Organization)
	}
	if b.MappingID != "" && b.MappingID != cmd.MappingID {
		return cmd, reject(ReasonSubjectMismatch, "body names mapping %q, subject %q", Bounded(b.MappingID, 128), cmd.MappingID)
	}
	if err := cmd.validateIDs(); err != nil {
		return cmd, err
	}
	if org, rest, ok := strings.Cut(env.MsgID, ":"); ok && (rest == cmd.ID || env.MsgID == cmd.ID) && org != cmd.Organization && ValidOrganization(org) {
		return cmd, reject(ReasonSubjectMismatch, "Nats-Msg-Id is scoped to organization %q, subject %q", org, cmd.Organization)
	}
	return cmd, nil
}

// bounded returns c with every field that is not valid cut to fit an
// event: an invalid id becomes the fallback id, an invalid correlation id
// is dropped, invalid subject tokens are bounded.
func (c Command) bounded(env Envelope) Command {
	if checkID("id", c.ID) != nil {
		c.ID = env.FallbackID
	}
	if c.CorrelationID != "" && checkID("correlationId", c.CorrelationID) != nil {
		c.CorrelationID = ""
	}
	if !ValidOrganization(c.Organization) {
		c.Organization = Bounded(c.Organization, 64)
	}
	if !ValidMappingID(c.MappingID) {
		c.MappingID = Bounded(c.MappingID, 128)
	}
	return c
}

func checkSubject(env Envelope) error {
	subject := Bounded(env.Subject, 256)
	switch {
	case env.BadSubject:
		return reject(ReasonInvalidCommand, "subject %q is not ingest.commands.<organization>.<mappingId>", subject)
	case !ValidOrganization(env.Organization):
		return reject(ReasonInvalidCommand, "organization %q does not match %s", Bounded(env.Organization, 64), orgRE)
	case !ValidMappingID(env.MappingID):
		return reject(ReasonInvalidCommand, "mapping id %q does not match %s", Bounded(env.MappingID, 128), mappingRE)
	}
	return nil
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
