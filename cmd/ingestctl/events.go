package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// eventFilter selects events by subject (organization, mapping, types) and
// by command id.
type eventFilter struct {
	org, mapping string
	types        []ingest.EventType
	commandID    string
}

// parseTypes reads a comma-separated list of event types; "terminal" is
// every terminal type.
func parseTypes(s string) ([]ingest.EventType, error) {
	var out []ingest.EventType
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "terminal":
			for _, t := range ingest.EventTypes {
				if t.Terminal() {
					out = append(out, t)
				}
			}
		case slices.Contains(ingest.EventTypes, ingest.EventType(f)):
			out = append(out, ingest.EventType(f))
		default:
			return nil, fmt.Errorf("unknown event type %q (want %s or terminal)", f, joinTypes())
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func joinTypes() string {
	s := make([]string, len(ingest.EventTypes))
	for i, t := range ingest.EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func (f eventFilter) validate() error {
	if f.org != "" && !ingest.ValidOrganization(f.org) {
		return usageErrorf("--org %q is not a valid organization", f.org)
	}
	if f.mapping != "" && !ingest.ValidMappingID(f.mapping) {
		return usageErrorf("--mapping %q is not a valid mapping id", f.mapping)
	}
	return nil
}

// subject is the stream filter subject of f: its organization, mapping
// and, when f has exactly one, type. A consumer has one filter subject,
// carried in its API subject, so that a user may be allowed to read its
// organization's events only; several types are picked by match.
func (f eventFilter) subject() string {
	if len(f.types) == 1 {
		return layout.EventPrefix + wildcard(f.org) + "." + wildcard(f.mapping) + "." + string(f.types[0])
	}
	return layout.MappingEvents(f.org, f.mapping)
}

func wildcard(tok string) string {
	if tok == "" {
		return "*"
	}
	return tok
}

// match reports whether an event read on f.subject() is one of f's.
func (f eventFilter) match(r received) bool {
	if len(f.types) > 1 {
		typ := r.subject[strings.LastIndexByte(r.subject, '.')+1:]
		if !slices.Contains(f.types, ingest.EventType(typ)) {
			return false
		}
	}
	return f.commandID == "" || r.CommandID == f.commandID
}

// events is `ingestctl events`. With --org it reads only that
// organization's events.
func (a *app) events(ctx context.Context, args []string) error {
	var (
		conn   connFlags
		f      eventFilter
		types  string
		since  time.Duration
		follow bool
		out    output
	)
	fs := a.newFlagSet("events", "[--org O] [--mapping M] [--type T,...] [--id ID] [--since 1h] [-f] [-o json]", &conn)
	fs.StringVar(&f.org, "org", "", "only this organization (required for a user restricted to one)")
	fs.StringVar(&f.mapping, "mapping", "", "only this mapping id")
	fs.StringVar(&types, "type", "", "only these event types, comma-separated: "+joinTypes()+", or terminal")
	fs.StringVar(&f.commandID, "id", "", "only this command id")
	fs.DurationVar(&since, "since", time.Hour, "start this long ago; 0 reads the whole stream")
	followFlag(fs, &follow, "keep printing new events until interrupted")
	out.register(fs, "each event as one JSON object (the event body plus \"subject\")")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	var err error
	if f.types, err = parseTypes(types); err != nil {
		return usageErrorf("--type: %w", err)
	}
	if err := f.validate(); err != nil {
		return err
	}
	if since < 0 {
		return usageErrorf("--since %s is negative", since)
	}
	s, err := a.connect(ctx, &conn)
	if err != nil {
		return err
	}
	defer s.close()
	if f.org == "" {
		s.setHint(orgHint)
	}
	var from startAt
	if since > 0 {
		from.time = a.now().Add(-since)
	}
	r, err := s.open(s.ctx, layout.EventStream, f.subject(), from)
	if err != nil {
		return err
	}
	return a.printEvents(s, r, f, follow, eventPrinter{a: a, json: out.json})
}

// printEvents prints r's backlog of events matching f, then with follow
// every new one until the session's context ends.
func (a *app) printEvents(s *session, r *reader, f eventFilter, follow bool, out eventPrinter) error {
	for n := uint64(0); follow || n < r.backlog; n++ {
		ev, err := nextEvent(s.ctx, r)
		switch {
		case follow && s.ctx.Err() != nil && s.denied() == nil:
			return nil // interrupted
		case errors.Is(err, errNotEvent):
			fmt.Fprintln(a.stderr, "ingestctl: skipped:", err)
			continue
		case err != nil:
			return err
		}
		if f.match(ev) {
			if err := out.print(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventPrinter writes events to stdout as lines or JSON objects.
type eventPrinter struct {
	a    *app
	json bool
}

func (p eventPrinter) print(r received) error {
	if !p.json {
		_, err := fmt.Fprintln(p.a.stdout, r.line())
		return err
	}
	b, err := r.jsonLine()
	if err != nil {
		fmt.Fprintln(p.a.stderr, "ingestctl: skipped:", err)
		return nil
	}
	_, err = fmt.Fprintf(p.a.stdout, "%s\n", b)
	return err
}
