package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// Store keeps job records in a KV bucket, one per command id.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a Store on kv.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Load returns the record of a command id, or nil when there is none.
func (s *Store) Load(ctx context.Context, commandID string) (*ingest.Record, error) {
	e, err := s.kv.Get(ctx, ingest.RecordKey(commandID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load job %q: %w", commandID, err)
	}
	var rec ingest.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("decode job %q: %w", commandID, err)
	}
	return &rec, nil
}

// Save stores rec.
func (s *Store) Save(ctx context.Context, rec ingest.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode job %q: %w", rec.CommandID, err)
	}
	if _, err := s.kv.Put(ctx, ingest.RecordKey(rec.CommandID), b); err != nil {
		return fmt.Errorf("save job %q: %w", rec.CommandID, err)
	}
	return nil
}

// Claim creates rec if the command id has no record yet. It reports false
// when another message already holds the id.
func (s *Store) Claim(ctx context.Context, rec ingest.Record) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode job %q: %w", rec.CommandID, err)
	}
	_, err = s.kv.Create(ctx, ingest.RecordKey(rec.CommandID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim job %q: %w", rec.CommandID, err)
	}
	return true, nil
}
