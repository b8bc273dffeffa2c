package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/internal/pause"
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
//
// upTo, when not 0, is the sequence of the last event on the mapping's
// subjects as the events stream's leader has it: a read that ends before it
// (its consumer was placed on a replica that lags, or got no answer and
// read nothing) is made again, twice at most, then fails
// (ErrEventsBehind).
func RecoverFromEvents(ctx context.Context, js jetstream.JetStream, cmd ingest.Command, since time.Time, upTo uint64) (*ingest.Record, error) {
	keep := func(ev ingest.Event) bool { return ev.CommandID == cmd.ID && ev.Organization == cmd.Organization }
	for attempt := 1; ; attempt++ {
		events, r, err := readEvents(ctx, js, MappingEvents(cmd.Organization, cmd.MappingID), since.Add(-time.Second), maxRecoverEvents, keep)
		if err != nil {
			return nil, fmt.Errorf("read events of %s/%q: %w", cmd.Organization, cmd.ID, err)
		}
		if r.last >= upTo || r.limited {
			return ingest.RecordFromEvents(cmd, events), nil
		}
		if attempt == 3 {
			return nil, fmt.Errorf("read events of %s/%q: %w: read to %d, the leader has %d", cmd.Organization, cmd.ID, ErrEventsBehind, r.last, upTo)
		}
		if err := pause.For(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// ErrEventsBehind is a read of events that ended before the last event the
// stream's leader has.
var ErrEventsBehind = errors.New("the events read end before the stream's last one")

// eventsRead is how a read of events ended: the stream sequence of the
// last message read (0: none), and whether it stopped at its limit.
type eventsRead struct {
	last    uint64
	limited bool
}

// ReadEvents reads the events on subjects matching filter stored since
// start, at most limit of them, and returns those keep accepts, oldest
// first. It reads what is stored when it starts and does not wait for more.
func ReadEvents(ctx context.Context, js jetstream.JetStream, filter string, start time.Time, limit int, keep func(ingest.Event) bool) ([]ingest.Event, error) {
	events, _, err := readEvents(ctx, js, filter, start, limit, keep)
	return events, err
}

func readEvents(ctx context.Context, js jetstream.JetStream, filter string, start time.Time, limit int, keep func(ingest.Event) bool) ([]ingest.Event, eventsRead, error) {
	var r eventsRead
	cons, err := js.OrderedConsumer(ctx, EventStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, r, err
	}
	var events []ingest.Event
	for read := 0; read < limit; {
		batch, err := cons.FetchNoWait(min(256, limit-read))
		if err != nil {
			return nil, r, err
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			var ev ingest.Event
			if json.Unmarshal(m.Data(), &ev) == nil && keep(ev) {
				events = append(events, ev)
			}
			if meta, err := m.Metadata(); err == nil {
				pending, r.last = meta.NumPending, meta.Sequence.Stream
			}
		}
		if err := batch.Error(); err != nil {
			return nil, r, err
		}
		read += n
		if n == 0 || pending == 0 {
			return events, r, nil
		}
	}
	r.limited = true
	return events, r, nil
}
