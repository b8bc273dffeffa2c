package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/publisher"
)

// defaultWaitTimeout is the worker's default job deadline (6h) plus time
// for the last poll and the event.
const defaultWaitTimeout = 6*time.Hour + 10*time.Minute

// triggerFlags are `ingestctl trigger`'s flags.
type triggerFlags struct {
	conn        connFlags
	org         string
	mapping     string
	id          string
	correlation string
	timeout     time.Duration
	wait        bool
	waitTimeout time.Duration
	out         output
}

// trigger is `ingestctl trigger`. It publishes on
// ingest.commands.<org>.<mapping>; with --wait it reads
// ingest.events.<org>.<mapping>.* and the command's job record, nothing
// of another organization.
func (a *app) trigger(ctx context.Context, args []string) error {
	var f triggerFlags
	fs := a.newFlagSet("trigger", "--org O --mapping M [--id ID] [--correlation-id C] [--timeout D] [--wait [--wait-timeout D]] [-o json]", &f.conn)
	fs.StringVar(&f.org, "org", "", "organization (tenant) `token` (required)")
	fs.StringVar(&f.mapping, "mapping", "", "XDM mapping `id` (required)")
	fs.StringVar(&f.id, "id", "", "command id (its Nats-Msg-Id is <org>:<id>); default <org>-<mapping>-<UTC time>-<random>")
	fs.StringVar(&f.correlation, "correlation-id", "", "correlation id copied into the events")
	fs.DurationVar(&f.timeout, "timeout", 0, "job deadline from publication, capped by the worker's maximum; 0 = the worker's default (6h)")
	fs.BoolVar(&f.wait, "wait", false, "wait for the terminal event; the exit code tells the outcome")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", defaultWaitTimeout, "with --wait: give up waiting after this long (exit 7)")
	f.out.register(fs, "the publish acknowledgement, or with --wait each event (the event body plus \"subject\")")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	cmd, err := a.command(f)
	if err != nil {
		return err
	}
	s, err := a.connect(ctx, &f.conn)
	if err != nil {
		return err
	}
	defer s.close()
	ctx = s.ctx
	var w *waiter
	if f.wait {
		if w, err = a.prepareWait(ctx, s, cmd); err != nil {
			return err
		}
	}
	ack, err := s.publish(ctx, cmd)
	if err != nil {
		return err
	}
	if err := a.printPublished(f, cmd, ack); err != nil {
		return err
	}
	if w == nil {
		return nil
	}
	if a.afterPublish != nil {
		a.afterPublish()
	}
	w.fromPast = ack.Duplicate || w.prior != nil
	w.lookback = a.now().Add(-defaultDupWindow - time.Minute)
	return w.wait(ctx, f.waitTimeout, f.out.json)
}

// defaultDupWindow is the command stream's duplicate window as the worker
// creates it. ingestctl does not read the stream's configuration: a user
// confined to its organization may not.
var defaultDupWindow = layout.CommandStreamConfig(1).Duplicates

// publish publishes cmd, explaining a missing command stream.
func (s *session) publish(ctx context.Context, cmd ingest.Command) (*jetstream.PubAck, error) {
	ack, err := publisher.PublishCommand(ctx, s.js, cmd)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("no stream %s on %s stores %s: %s", layout.CommandStream, s.url,
			layout.CommandSubject(cmd.Organization, cmd.MappingID), workerHint)
	}
	return ack, err
}

// command builds and checks the command as the worker would.
func (a *app) command(f triggerFlags) (ingest.Command, error) {
	switch {
	case f.org == "" || f.mapping == "":
		return ingest.Command{}, usageErrorf("trigger: --org and --mapping are required")
	case !ingest.ValidOrganization(f.org):
		return ingest.Command{}, usageErrorf("trigger: --org %q is not a valid organization", f.org)
	case !ingest.ValidMappingID(f.mapping):
		return ingest.Command{}, usageErrorf("trigger: --mapping %q is not a valid mapping id", f.mapping)
	case f.timeout < 0:
		return ingest.Command{}, usageErrorf("trigger: --timeout %s is negative", f.timeout)
	case f.wait && f.waitTimeout <= 0:
		return ingest.Command{}, usageErrorf("trigger: --wait-timeout must be positive")
	}
	cmd := ingest.Command{
		ID: f.id, Organization: f.org, MappingID: f.mapping,
		CorrelationID: f.correlation, Timeout: ingest.Duration(f.timeout),
	}
	if cmd.ID == "" {
		cmd.ID = newCommandID(f.org, f.mapping, a.now())
	}
	msg, err := publisher.CommandMsg(cmd)
	if err != nil {
		return cmd, usageErrorf("trigger: %w", err)
	}
	env := layout.Envelope(msg.Subject, msg.Header.Get, layout.CommandStream, 0)
	if _, err := ingest.ParseCommand(env, msg.Data); err != nil {
		return cmd, usageErrorf("trigger: the worker would reject this command: %w", err)
	}
	return cmd, nil
}

// newCommandID is <org>-<mapping>-<UTC time>-<6 random hex digits>.
func newCommandID(org, mapping string, now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s-%s-%s", org, mapping, now.UTC().Format("20060102T150405Z"), hex.EncodeToString(b))
}

// published is the JSON line of a publish without --wait.
type published struct {
	CommandID string `json:"commandId"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

func (a *app) printPublished(f triggerFlags, cmd ingest.Command, ack *jetstream.PubAck) error {
	if f.out.json {
		if f.wait {
			return nil // only events follow
		}
		b, err := json.Marshal(published{CommandID: cmd.ID, Subject: layout.CommandSubject(cmd.Organization, cmd.MappingID), Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	what := fmt.Sprintf("published command %s on %s (%s seq %d)", cmd.ID, layout.CommandSubject(cmd.Organization, cmd.MappingID), ack.Stream, ack.Sequence)
	if ack.Duplicate {
		what = fmt.Sprintf("command %s was already published (%s seq %d): this publish was dropped as a duplicate", cmd.ID, ack.Stream, ack.Sequence)
	}
	_, err := fmt.Fprintln(a.stdout, what)
	return err
}

var errNoAnswer = errors.New("no answer")
