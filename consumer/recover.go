package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/publisher"
)

// maxRecoverEvents bounds the events read to recover one command.
const maxRecoverEvents = 10_000

// recoverFromEvents rebuilds the state of a redelivered command that has no
// record from its events on INGEST_EVENTS: those of its mapping published
// since the command was (its triggered event holds its request id, a
// terminal event says it is done). This closes the window between a POST
// and the first state write: the triggered event is published as soon as
// the POST answers.
func (c *Consumer) recoverFromEvents(ctx context.Context, cmd ingest.Command, since time.Time) (*ingest.Record, error) {
	cons, err := c.bound.JetStream.OrderedConsumer(ctx, publisher.EventStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ingest.EventSubjectPrefix + cmd.Organization + "." + cmd.MappingID + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   ptr(since.Add(-time.Second)),
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %q: %w", cmd.ID, err)
	}
	var events []ingest.Event
	for read := 0; read < maxRecoverEvents; {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("read events of %q: %w", cmd.ID, err)
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			var ev ingest.Event
			if json.Unmarshal(m.Data(), &ev) == nil && ev.CommandID == cmd.ID {
				events = append(events, ev)
			}
			if meta, err := m.Metadata(); err == nil {
				pending = meta.NumPending
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read events of %q: %w", cmd.ID, err)
		}
		read += n
		if n == 0 || pending == 0 {
			break
		}
	}
	return ingest.RecordFromEvents(cmd, events), nil
}

func ptr[T any](v T) *T { return &v }
