package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// ErrInvalidCommand is wrapped by PublishCommand for a command that the
// worker would reject.
var ErrInvalidCommand = errors.New("invalid command")

// CommandMsg builds the NATS message of cmd: its subject, its JSON body, and
// Nats-Msg-Id set to "<organization>:<id>" (ingest.ScopedMsgID) so that
// JetStream drops a republish, and no other organization's id can collide
// with it in the stream's duplicate window.
func CommandMsg(cmd ingest.Command) (*nats.Msg, error) {
	if !ingest.ValidOrganization(cmd.Organization) || !ingest.ValidMappingID(cmd.MappingID) {
		return nil, fmt.Errorf("%w: organization %q or mapping id %q is not a valid token", ErrInvalidCommand, cmd.Organization, cmd.MappingID)
	}
	if cmd.ID == "" {
		return nil, fmt.Errorf("%w: an id is required", ErrInvalidCommand)
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	msg := nats.NewMsg(layout.CommandSubject(cmd.Organization, cmd.MappingID))
	msg.Data = body
	msg.Header[layout.HeaderMsgID] = []string{ingest.ScopedMsgID(cmd.Organization, cmd.ID)}
	msg.Header[layout.HeaderContentType] = []string{contentTypeJSON}
	setTrace(msg.Header, cmd.Trace)
	return msg, nil
}

// PublishCommand publishes cmd and waits for JetStream's acknowledgement.
// The acknowledgement's Duplicate field tells a republish.
func PublishCommand(ctx context.Context, js jetstream.JetStream, cmd ingest.Command) (*jetstream.PubAck, error) {
	msg, err := CommandMsg(cmd)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish command %q: %w", cmd.ID, err)
	}
	return ack, nil
}
