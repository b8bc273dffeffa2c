package layout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology names and sizes what the worker needs in JetStream.
type Topology struct {
	// Durable is the consumer's name; default "ingest-worker".
	Durable string
	// Bucket is the job state bucket; default "INGEST_JOBS".
	Bucket string
	// AckWait; default 30s. MaxDeliver; default 10.
	AckWait    time.Duration
	MaxDeliver int
	// MaxAckPending bounds the commands out at once across all replicas;
	// default 10000.
	MaxAckPending int
	// Replicas of the streams, the consumer and the bucket; default 1.
	// Use 3 on a JetStream cluster.
	Replicas int
	// JobTTL is how long a job's state is kept after its last write;
	// default 7 days. EventsMaxAge is the events' retention; default 7 days.
	JobTTL, EventsMaxAge time.Duration
	// Create creates or updates what is missing; when false the worker only
	// checks and explains what is missing.
	Create bool
}

func (t Topology) withDefaults() Topology {
	if t.Durable == "" {
		t.Durable = DefaultDurable
	}
	if t.Bucket == "" {
		t.Bucket = DefaultBucket
	}
	if t.AckWait <= 0 {
		t.AckWait = 30 * time.Second
	}
	if t.MaxDeliver == 0 {
		t.MaxDeliver = 10
	}
	if t.MaxAckPending <= 0 {
		t.MaxAckPending = 10000
	}
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	if t.JobTTL <= 0 {
		t.JobTTL = 7 * 24 * time.Hour
	}
	return t
}

// Handles are what Setup returns: the consumer to pull from, the command
// stream and the job bucket.
type Handles struct {
	JetStream jetstream.JetStream
	Commands  jetstream.Stream
	Consumer  jetstream.Consumer
	Jobs      jetstream.KeyValue
	Topology  Topology
}

// Setup creates (or, with Create false, looks up) the command and event
// streams, the durable consumer and the job bucket.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology) (*Handles, error) {
	t = t.withDefaults()
	if !t.Create {
		return lookup(ctx, js, t)
	}
	commands, err := js.CreateOrUpdateStream(ctx, CommandStreamConfig(t.Replicas))
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", CommandStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, EventStreamConfig(t.EventsMaxAge, t.Replicas)); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", EventStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, CommandStream, consumerConfig(t))
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", t.Durable, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      t.Bucket,
		Description: "Campaign ingestion job state, one entry per organization and command id",
		History:     1,
		TTL:         t.JobTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", t.Bucket, err)
	}
	return &Handles{JetStream: js, Commands: commands, Consumer: cons, Jobs: kv, Topology: t}, nil
}

func consumerConfig(t Topology) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Durable,
		Description:   "Campaign ingestion workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		MaxAckPending: t.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      t.Replicas,
	}
}

func lookup(ctx context.Context, js jetstream.JetStream, t Topology) (*Handles, error) {
	var missing []error
	commands, err := js.Stream(ctx, CommandStream)
	if err != nil {
		missing = append(missing, fmt.Errorf("stream %s: %w", CommandStream, err))
	}
	if _, err := js.Stream(ctx, EventStream); err != nil {
		missing = append(missing, fmt.Errorf("stream %s: %w", EventStream, err))
	}
	cons, err := js.Consumer(ctx, CommandStream, t.Durable)
	if err != nil {
		missing = append(missing, fmt.Errorf("consumer %s on %s: %w", t.Durable, CommandStream, err))
	}
	kv, err := js.KeyValue(ctx, t.Bucket)
	if err != nil {
		missing = append(missing, fmt.Errorf("bucket %s: %w", t.Bucket, err))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w (INGEST_CREATE_STREAMS=false: create them, or let the worker do it with INGEST_CREATE_STREAMS=true)", errors.Join(missing...))
	}
	return &Handles{JetStream: js, Commands: commands, Consumer: cons, Jobs: kv, Topology: t}, nil
}
