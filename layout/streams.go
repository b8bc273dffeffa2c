package layout

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultEventsMaxAge is the events' default retention.
const DefaultEventsMaxAge = 7 * 24 * time.Hour

// EventStreamConfig is the events stream: limits retention, file storage,
// maxAge (default 7 days), a one-hour duplicate window.
func EventStreamConfig(maxAge time.Duration, replicas int) jetstream.StreamConfig {
	if maxAge <= 0 {
		maxAge = DefaultEventsMaxAge
	}
	return jetstream.StreamConfig{
		Name:        EventStream,
		Description: "Outcome events of Campaign ingestion commands",
		Subjects:    []string{EventSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      maxAge,
		Duplicates:  time.Hour,
		Replicas:    max(replicas, 1),
	}
}

// CommandStreamConfig is the commands stream: a work queue on file storage
// with a one-hour duplicate window.
func CommandStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        CommandStream,
		Description: "Campaign ingestion commands",
		Subjects:    []string{CommandSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  time.Hour,
		Replicas:    max(replicas, 1),
	}
}
