package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// Store keeps job records in the job bucket, one per organization and
// command id. It implements ingest.Records.
type Store struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	// leader reads from the bucket stream's leader (LoadLatest); nil
	// without js.
	leader nats.JetStreamContext
	// reads, when set, reads records in batches (StartBatchedReads).
	reads atomic.Pointer[batchReads]
}

// NewStore returns a Store on kv; js reads the events stream to recover a
// record and the bucket's leader (nil: no recovery, and LoadLatest is Load).
func NewStore(kv jetstream.KeyValue, js jetstream.JetStream) *Store {
	s := &Store{kv: kv, js: js}
	if js != nil {
		// Without options JetStream cannot fail.
		s.leader, _ = js.Conn().JetStream()
	}
	return s
}

// bucketStream is the name of the stream behind the bucket.
func (s *Store) bucketStream() string { return "KV_" + s.kv.Bucket() }

// keyPrefix is the subject prefix of the bucket's keys.
func (s *Store) keyPrefix() string { return "$KV." + s.kv.Bucket() + "." }

// Load returns the record of command id in org, or nil when there is none.
// It reads with the next batch once StartBatchedReads succeeded, else with
// a request of its own.
func (s *Store) Load(ctx context.Context, org, commandID string) (*ingest.Record, error) {
	if r := s.reads.Load(); r != nil && ingest.ValidOrganization(org) {
		rec, err := r.load(ctx, r.prefix+RecordKey(org, commandID))
		if err != nil {
			return nil, fmt.Errorf("load job %s/%q: %w", org, commandID, err)
		}
		return rec, nil
	}
	return LoadRecord(ctx, s.kv, org, commandID)
}

// leaderReadTimeout bounds a read from a stream's leader whose context has
// no deadline, as jetstream bounds its own requests.
const leaderReadTimeout = 5 * time.Second

// leaderLast returns the last message of stream on subject (wildcards
// allowed) as the stream's leader has it (a stream message get), or nil
// when there is none. A ctx without a deadline gets one of
// leaderReadTimeout: a request without an answer (a missing grant) would
// wait forever.
func (s *Store) leaderLast(ctx context.Context, stream, subject string) (*nats.RawStreamMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderReadTimeout)
		defer cancel()
	}
	m, err := s.leader.GetLastMsg(stream, subject, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// LoadLatest is Load answered by the leader of the bucket's stream (a
// stream message get, $JS.API.STREAM.MSG.GET.KV_<bucket>), so that it sees
// every write acknowledged before it. Load's direct gets may be answered by
// any replica, and a replica answers them as soon as it is 90 % caught up:
// in a cluster, a record written a moment ago by a worker that then died
// could be missing from the answer, and its redelivery would POST again.
// A ctx without a deadline gets one of 5 s. Without a JetStream connection
// it is Load.
func (s *Store) LoadLatest(ctx context.Context, org, commandID string) (*ingest.Record, error) {
	if s.leader == nil || !ingest.ValidOrganization(org) {
		return LoadRecord(ctx, s.kv, org, commandID)
	}
	m, err := s.leaderLast(ctx, s.bucketStream(), s.keyPrefix()+RecordKey(org, commandID))
	if err != nil {
		return nil, fmt.Errorf("load job %s/%q: %w", org, commandID, err)
	}
	if m == nil || deleted(m.Header) {
		return nil, nil
	}
	return decodeRecordOf(org, commandID, m.Data)
}

// LoadRecord returns the record of command id in org from the job bucket
// kv, or nil when there is none.
func LoadRecord(ctx context.Context, kv jetstream.KeyValue, org, commandID string) (*ingest.Record, error) {
	e, err := kv.Get(ctx, RecordKey(org, commandID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load job %s/%q: %w", org, commandID, err)
	}
	return decodeRecordOf(org, commandID, e.Value())
}

// decodeRecordOf decodes the record of command id in org.
func decodeRecordOf(org, commandID string, b []byte) (*ingest.Record, error) {
	rec, err := DecodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("job %s/%q: %w", org, commandID, err)
	}
	return rec, nil
}

// DecodeRecord decodes a job record as stored in the bucket.
func DecodeRecord(b []byte) (*ingest.Record, error) {
	var rec ingest.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode job record: %w", err)
	}
	return &rec, nil
}

// Save stores rec.
func (s *Store) Save(ctx context.Context, rec ingest.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode job %s/%q: %w", rec.Organization, rec.CommandID, err)
	}
	if _, err := s.kv.Put(ctx, RecordKey(rec.Organization, rec.CommandID), b); err != nil {
		return fmt.Errorf("save job %s/%q: %w", rec.Organization, rec.CommandID, err)
	}
	return nil
}

// Claim creates rec if its command id has no record yet in its
// organization. It reports false when another message already holds the id.
func (s *Store) Claim(ctx context.Context, rec ingest.Record) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode job %s/%q: %w", rec.Organization, rec.CommandID, err)
	}
	_, err = s.kv.Create(ctx, RecordKey(rec.Organization, rec.CommandID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim job %s/%q: %w", rec.Organization, rec.CommandID, err)
	}
	return true, nil
}

// Recover rebuilds the record of cmd from its events published since
// (see RecoverFromEvents); nil when the Store has no JetStream. The events
// are read through an ordered consumer, which the server may place on any
// replica of the events stream (it prefers replicas that are current in the
// cluster's metadata, not in the stream), and which reads nothing when its
// requests get no answer. So the last event on the mapping's subjects is
// first asked of the stream's leader (a stream message get,
// $JS.API.STREAM.MSG.GET.INGEST_EVENTS), and the read must reach it.
func (s *Store) Recover(ctx context.Context, cmd ingest.Command, since time.Time) (*ingest.Record, error) {
	if s.js == nil {
		return nil, nil
	}
	var upTo uint64
	if s.leader != nil {
		m, err := s.leaderLast(ctx, EventStream, MappingEvents(cmd.Organization, cmd.MappingID))
		if err != nil {
			return nil, fmt.Errorf("last event of %s/%s: %w", cmd.Organization, cmd.MappingID, err)
		}
		if m != nil && !m.Time.Before(since.Add(-time.Second)) {
			upTo = m.Sequence
		}
	}
	return RecoverFromEvents(ctx, s.js, cmd, since, upTo)
}
