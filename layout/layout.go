// Package layout owns the worker's JetStream layout: the names and configs
// of the streams, the consumer and the job bucket, the subjects, the header
// names, the keys of job records (scoped by organization), the record store
// and the recovery of a job's state from its events. The consumer, the
// publisher, ingestctl and the status page all read the layout from here.
package layout

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// Default names of the contract.
const (
	CommandStream = "INGEST_COMMANDS"
	EventStream   = "INGEST_EVENTS"
	// DefaultDurable is the shared durable pull consumer's name.
	DefaultDurable = "ingest-worker"
	// DefaultBucket is the job state bucket.
	DefaultBucket = "INGEST_JOBS"
)

// Subject prefixes and wildcards of the contract.
const (
	CommandPrefix   = "ingest.commands."
	EventPrefix     = "ingest.events."
	CommandSubjects = CommandPrefix + ">"
	EventSubjects   = EventPrefix + ">"
)

// Header names.
const (
	HeaderMsgID       = jetstream.MsgIDHeader
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
	// HeaderContentType is the content type, in the lower case of the
	// CloudEvents NATS binding (its datacontenttype). NATS headers are
	// case-sensitive: events also carry HeaderContentTypeMIME.
	HeaderContentType = "content-type"
	// HeaderContentTypeMIME is the content type in MIME's canonical case,
	// as written by earlier versions of the contract.
	HeaderContentTypeMIME = "Content-Type"
	HeaderSpecVersion     = "ce-specversion"
	HeaderID              = "ce-id"
	HeaderSource          = "ce-source"
	HeaderType            = "ce-type"
	HeaderSubject         = "ce-subject"
	HeaderTime            = "ce-time"
)

// CommandSubject is ingest.commands.<org>.<mapping>.
func CommandSubject(org, mapping string) string {
	return CommandPrefix + org + "." + mapping
}

// OrganizationCommands is the filter of one organization's commands,
// ingest.commands.<org>.>.
func OrganizationCommands(org string) string { return CommandPrefix + org + ".>" }

// SplitCommandSubject returns the organization and mapping tokens of a
// command subject; ok is false when subject does not have the form
// ingest.commands.<organization>.<mappingId>. The tokens are not validated.
func SplitCommandSubject(subject string) (org, mapping string, ok bool) {
	rest, found := strings.CutPrefix(subject, CommandPrefix)
	if !found {
		return "", "", false
	}
	org, mapping, found = strings.Cut(rest, ".")
	if !found || strings.Contains(mapping, ".") {
		return "", "", false
	}
	return org, mapping, true
}

// Envelope returns what arrived with a command besides its body, from its
// subject, its headers and its place in the stream.
func Envelope(subject string, header func(string) string, stream string, seq uint64) ingest.Envelope {
	org, mapping, ok := SplitCommandSubject(subject)
	if rest, found := strings.CutPrefix(subject, CommandPrefix); !ok && found {
		// Too many tokens: the first still names the organization, so
		// that the rejection reaches that organization's subscribers.
		if o, _, deeper := strings.Cut(rest, "."); deeper {
			org = o
		}
	}
	return ingest.Envelope{
		Subject:      subject,
		Organization: org,
		MappingID:    mapping,
		BadSubject:   !ok,
		MsgID:        header(HeaderMsgID),
		FallbackID:   stream + "-" + strconv.FormatUint(seq, 10),
		Trace:        ingest.ParseTrace(header(HeaderTraceParent), header(HeaderTraceState)),
	}
}

// EventSubject is ingest.events.<org>.<mapping>.<type>; a token that is
// empty or invalid is written as "_".
func EventSubject(ev ingest.Event) string {
	org, mapping := EventTokens(ev)
	return EventPrefix + org + "." + mapping + "." + string(ev.Type)
}

// EventTokens are the organization and mapping of ev as written in its
// subject and CloudEvents source: "_" for a token that is empty or invalid.
func EventTokens(ev ingest.Event) (org, mapping string) {
	org, mapping = ev.Organization, ev.MappingID
	if !ingest.ValidOrganization(org) {
		org = "_"
	}
	if !ingest.ValidMappingID(mapping) {
		mapping = "_"
	}
	return org, mapping
}

// MappingEvents is the filter of one mapping's events; an empty
// organization or mapping matches every one.
func MappingEvents(org, mapping string) string {
	return EventPrefix + wildcard(org) + "." + wildcard(mapping) + ".*"
}

func wildcard(tok string) string {
	if tok == "" {
		return "*"
	}
	return tok
}
