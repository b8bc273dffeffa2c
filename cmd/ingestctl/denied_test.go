package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestDenied: the server's permission violations as ingestctl reports
// them.
func TestDenied(t *testing.T) {
	t.Parallel()
	violation := func(s string) error { return fmt.Errorf("%w: %s", nats.ErrPermissionViolation, s) }
	tests := []struct {
		name string
		err  error
		want string // "" when not a violation
	}{
		{name: "publish of a command", err: violation(`Permissions Violation for Publish to "ingest.commands.globex.XDM44"`),
			want: `permission denied: publish to "ingest.commands.globex.XDM44" (publishing a command for organization globex; check the user's NATS permissions)`},
		{name: "events consumer", err: violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.c1.ingest.events.globex.*.*"`),
			want: `permission denied: publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.c1.ingest.events.globex.*.*" (reading the events ingest.events.globex.*.*; check the user's NATS permissions)`},
		{name: "jobs consumer", err: violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.KV_INGEST_JOBS.c1.$KV.INGEST_JOBS.globex.>"`),
			want: `(reading the job records globex.>; check`},
		{name: "consumer without filter", err: violation(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.INGEST_EVENTS.c1"`),
			want: `(creating a consumer on INGEST_EVENTS without a filter subject; check`},
		{name: "job record", err: violation(`Permissions Violation for Publish to "$JS.API.DIRECT.GET.KV_INGEST_JOBS.$KV.INGEST_JOBS.globex.g-1"`),
			want: `(reading the job record globex.g-1; check`},
		{name: "flow control", err: violation(`Permissions Violation for Publish to "$JS.FC.INGEST_EVENTS.c1.ab12"`),
			want: `(answering JetStream flow control; check`},
		{name: "other API", err: violation(`Permissions Violation for Publish to "$JS.API.STREAM.INFO.INGEST_COMMANDS"`),
			want: `permission denied: publish to "$JS.API.STREAM.INFO.INGEST_COMMANDS" (JetStream API STREAM.INFO.INGEST_COMMANDS; check the user's NATS permissions)`},
		{name: "subscription", err: violation(`Permissions Violation for Subscription to "_INBOX.abc.*"`),
			want: `permission denied: subscribe to "_INBOX.abc.*" (check the user's NATS permissions)`},
		{name: "subscription with a queue", err: violation(`Permissions Violation for Subscription to "foo.>" using queue "q"`),
			want: `permission denied: subscribe to "foo.>" (check`},
		{name: "not a violation", err: errors.New(`Permissions Violation for Publish to "x"`)},
		{name: "another async error", err: nats.ErrSlowConsumer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := parseViolation(tt.err)
			switch {
			case ok != (tt.want != ""):
				t.Fatalf("parseViolation(%v) ok = %v", tt.err, ok)
			case ok && !strings.Contains(d.Error(), tt.want):
				t.Errorf("message\n %s\nwant it to contain\n %s", d.Error(), tt.want)
			}
		})
	}
}
