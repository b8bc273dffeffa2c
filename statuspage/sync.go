package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// Retry backoff of the JetStream readers: from a second to 30 s.
const (
	retryInitial = time.Second
	retryMax     = 30 * time.Second
)

// expireEvery is how often jobs whose record and events have expired are
// dropped.
const expireEvery = time.Minute

// retry runs read until ctx ends, again after each error with backoff
// (reset after a read that lasted a minute).
func (p *Page) retry(ctx context.Context, what string, read func(context.Context) error) {
	delay := retryInitial
	for {
		start := time.Now()
		err := read(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = retryInitial
		}
		level := slog.LevelWarn
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			level = slog.LevelInfo // the worker creates them at its start
		}
		p.log.Log(ctx, level, "status page: cannot read JetStream yet; retrying", "what", what, "err", err, "retryIn", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, retryMax)
	}
}

// watchRecords feeds the index from the job bucket: every record, then
// every write, until ctx ends or the watch fails.
func (p *Page) watchRecords(ctx context.Context) error {
	kv, err := p.js.KeyValue(ctx, layout.DefaultBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", layout.DefaultBucket, err)
	}
	p.kv.Store(&kv)
	if st, err := kv.Status(ctx); err == nil {
		p.recordTTL.Store(int64(st.TTL()))
	}
	var w jetstream.KeyWatcher
	if p.cfg.Org != "" {
		w, err = kv.Watch(ctx, layout.OrganizationKeys(p.cfg.Org))
	} else {
		w, err = kv.WatchAll(ctx)
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", layout.DefaultBucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watcher of " + layout.DefaultBucket + " closed")
			}
			if e == nil {
				p.ix.setLoaded(true, false)
				continue
			}
			p.applyEntry(e)
		}
	}
}

func (p *Page) applyEntry(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		if org, id, ok := splitRecordKey(e.Key()); ok {
			p.ix.DeleteRecord(org, id)
		}
		return
	}
	rec, err := layout.DecodeRecord(e.Value())
	if err != nil {
		p.log.Debug("status page: skipping a record that does not decode", "key", ingest.Bounded(e.Key(), 256), "err", err)
		return
	}
	if org, _, ok := splitRecordKey(e.Key()); !ok || org != rec.Organization {
		return // not a record of the worker's layout
	}
	p.ix.PutRecord(rec, e.Created())
}

// readEvents feeds the index from the event stream, from its first event
// (or after the last one read), until ctx ends or the consumer fails.
func (p *Page) readEvents(ctx context.Context) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{p.eventFilter()}}
	if seq := p.lastEventSeq.Load(); seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq+1
	}
	if s, err := p.js.Stream(ctx, layout.EventStream); err == nil {
		p.eventsMaxAge.Store(int64(s.CachedInfo().Config.MaxAge))
	}
	cons, err := p.js.OrderedConsumer(ctx, layout.EventStream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", layout.EventStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", layout.EventStream, err)
	}
	defer it.Stop()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		p.ix.setLoaded(false, true)
	}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("read %s: %w", layout.EventStream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		p.lastEventSeq.Store(meta.Sequence.Stream)
		var ev ingest.Event
		if json.Unmarshal(m.Data(), &ev) == nil && ev.CommandID != "" {
			p.ix.PutEvent(ev, meta.Timestamp)
		}
		if meta.NumPending == 0 {
			p.ix.setLoaded(false, true)
		}
	}
}

// eventFilter is the subjects of the events read: one organization's when
// the page is fixed to one.
func (p *Page) eventFilter() string {
	if p.cfg.Org != "" {
		return layout.MappingEvents(p.cfg.Org, "")
	}
	return layout.EventSubjects
}

// expire drops, every expireEvery, the jobs whose record and events have
// both expired: those last written longer ago than the longer of the
// bucket's TTL and the stream's max age (none when either keeps forever).
func (p *Page) expire(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ttl, age := time.Duration(p.recordTTL.Load()), time.Duration(p.eventsMaxAge.Load())
		if ttl <= 0 || age <= 0 {
			continue
		}
		if n := p.ix.Expire(time.Now().Add(-max(ttl, age))); n > 0 {
			p.log.Debug("status page: expired jobs dropped", "jobs", n)
		}
	}
}
