package reliability

import (
	"context"
	"fmt"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/publisher"
	"github.com/nats-io/nats.go/jetstream"
)

// Org is the organization of the harness's commands.
const Org = "acme"

// Commands returns n commands, each on its own mapping (M00000, M00001, …)
// so that they can all run at once: the API allows one running request per
// mapping.
func Commands(prefix string, n int) []ingest.Command {
	cmds := make([]ingest.Command, n)
	for i := range cmds {
		cmds[i] = ingest.Command{
			ID: fmt.Sprintf("%s-%05d", prefix, i), Organization: Org, MappingID: fmt.Sprintf("M%05d", i),
		}
	}
	return cmds
}

// Mappings returns the mapping of every command, all with script.
func Mappings(cmds []ingest.Command, script campaignsim.Script) []campaignsim.Mapping {
	ms := make([]campaignsim.Mapping, len(cmds))
	for i, c := range cmds {
		ms[i] = campaignsim.Mapping{Org: c.Organization, ID: c.MappingID, Script: script}
	}
	return ms
}

// Publish publishes cmds (with Nats-Msg-Id = id) and waits for every
// acknowledgement.
func Publish(ctx context.Context, js jetstream.JetStream, cmds []ingest.Command) error {
	const window = 256
	var acks []jetstream.PubAckFuture
	wait := func() error {
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				return fmt.Errorf("publish %s: %w", a.Msg().Header.Get(jetstream.MsgIDHeader), err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		acks = acks[:0]
		return nil
	}
	for _, c := range cmds {
		msg, err := publisher.CommandMsg(c)
		if err != nil {
			return err
		}
		a, err := js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s: %w", c.ID, err)
		}
		if acks = append(acks, a); len(acks) == window {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
