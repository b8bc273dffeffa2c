package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// Job records are read without a KeyValue handle, whose lookup asks for
// the bucket stream's info: a user allowed that could list every
// organization's keys. A record is read with a direct get of its subject
// ($JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS.<org>.<key>) and a
// list with a reader on $KV.INGEST_JOBS.<org>.>, so that a user may be
// confined to its organization's keys.

// errNoRecords is returned by loadRecord when records cannot be read:
// the bucket is missing or the user may not read it.
var errNoRecords = errors.New("job records unavailable")

// loadRecord returns the record of command id in org, nil when there is
// none. It returns an error wrapping errNoRecords when the bucket is
// missing (or does not allow direct gets) or the user may not read the
// record; such a denial does not end the session.
func (s *session) loadRecord(ctx context.Context, org, id string) (*ingest.Record, error) {
	subject := apiPrefix + "DIRECT.GET." + jobsStream + "." + jobKeyPrefix + layout.RecordKey(org, id)
	ctx, done := s.tolerate(ctx, subject)
	defer done()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, subject, nil)
	var d *deniedError
	switch {
	case errors.As(context.Cause(ctx), &d):
		return nil, fmt.Errorf("%w: %w", errNoRecords, d)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: no bucket %s (with direct gets) on %s", errNoRecords, layout.DefaultBucket, s.url)
	case err != nil:
		return nil, fmt.Errorf("load job %s/%q: %w", org, id, err)
	}
	if status := m.Header.Get("Status"); status != "" {
		if status == "404" {
			return nil, nil
		}
		return nil, fmt.Errorf("load job %s/%q: status %s %s", org, id, status, m.Header.Get("Description"))
	}
	if isDeletion(m) {
		return nil, nil
	}
	return layout.DecodeRecord(m.Data)
}

// isDeletion reports whether a job bucket message marks a deleted,
// purged or expired key rather than holding a record.
func isDeletion(m *nats.Msg) bool {
	return m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != ""
}

// jobsFilter is the subject filter of org's records; every record when org
// is empty.
func jobsFilter(org string) string {
	if org == "" {
		return jobKeyPrefix + ">"
	}
	return jobKeyPrefix + layout.OrganizationKeys(org)
}
