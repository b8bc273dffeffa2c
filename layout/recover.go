package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
)

// maxRecoverEvents bounds the events read to recover one command.
const maxRecoverEvents = 10_000

// RecoverFromEvents rebuilds the state of a redelivered command that has no
// record from its events: those of its organization and mapping published
// since the command was (its triggered event holds its request id, a
// terminal event says it is done). This closes the window between a POST
// and the first state write: the triggered event is stored as soon as the
// POST answers. Only events of cmd's own organization and mapping are read,
// so another tenant's events, even with the same command id, never count.
func RecoverFromEvents(ctx context.Context, js jetstream.JetStream, cmd ingest.Command, since time.Time) (*ingest.Record, error) {
	events, err := ReadEvents(ctx, js, MappingEvents(cmd.Organization, cmd.MappingID), since.Add(-time.Second), maxRecoverEvents,
		func(ev ingest.Event) bool { return ev.CommandID == cmd.ID && ev.Organization == cmd.Organization })
	if err != nil {
		return nil, fmt.Errorf("read events of %s/%q: %w", cmd.Organization, cmd.ID, err)
	}
	return ingest.RecordFromEvents(cmd, events), nil
}

// ReadEvents reads the events on subjects matching filter stored since
// start, at most limit of them, and returns those keep accepts, oldest
// first. It reads what is stored when it starts and does not wait for more.
func ReadEvents(ctx context.Context, js jetstream.JetStream, filter string, start time.Time, limit int, keep func(ingest.Event) bool) ([]ingest.Event, error) {
	cons, err := js.OrderedConsumer(ctx, EventStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, err
	}
	var events []ingest.Event
	for read := 0; read < limit; {
		batch, err := cons.FetchNoWait(min(256, limit-read))
		if err != nil {
			return nil, err
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			var ev ingest.Event
			if json.Unmarshal(m.Data(), &ev) == nil && keep(ev) {
				events = append(events, ev)
			}
			if meta, err := m.Metadata(); err == nil {
				pending = meta.NumPending
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		read += n
		if n == 0 || pending == 0 {
			break
		}
	}
	return events, nil
}
