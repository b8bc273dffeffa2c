package main

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/publisher"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connect connects the bench's own client.
func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("ingest-bench"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// commandMsg is command id of org on mapping.
func commandMsg(org, id, mapping string) *nats.Msg {
	msg, err := publisher.CommandMsg(ingest.Command{ID: id, Organization: org, MappingID: mapping})
	if err != nil {
		panic(err) // ids and mappings are the bench's own
	}
	return msg
}

// publishAll publishes n commands of the bench's organization (ids
// prefix-<i>, mapping(i)) as fast as JetStream acknowledges them, with at
// most 1024 in flight.
func publishAll(ctx context.Context, js jetstream.JetStream, n int, prefix string, mapping func(int) string) error {
	return publishOrg(ctx, js, benchOrg, n, prefix, mapping)
}

// publishOrg is publishAll for the commands of org.
func publishOrg(ctx context.Context, js jetstream.JetStream, org string, n int, prefix string, mapping func(int) string) error {
	for i := range n {
		if _, err := js.PublishMsgAsync(commandMsg(org, fmt.Sprintf("%s-%d", prefix, i), mapping(i)), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
