package main

import (
	"strings"
	"testing"

	"github.com/acme/campaign-ingest/internal/testenv"
)

// TestMissing: what ingestctl says when the server, a stream or the bucket
// is missing, and its exit code.
func TestMissing(t *testing.T) {
	t.Parallel()
	bare := testenv.NATS(t).ClientURL() // JetStream without the worker's streams
	tests := []struct {
		name     string
		url      string
		args     []string
		wantCode int
		want     []string // in stderr
	}{
		{name: "events without the events stream", url: bare, args: []string{"events"}, wantCode: exitNATS,
			want: []string{"no stream INGEST_EVENTS on nats://127.0.0.1:", "is the worker running? start it with INGEST_SIMULATE=true go run ./cmd/ingest-worker"}},
		{name: "trigger without the command stream", url: bare, args: []string{"trigger", "--org", "acme", "--mapping", "XDM44"}, wantCode: exitNATS,
			want: []string{"no stream INGEST_COMMANDS", "go run ./cmd/ingest-worker"}},
		{name: "jobs without the bucket", url: bare, args: []string{"jobs"}, wantCode: exitNATS,
			want: []string{"no bucket INGEST_JOBS", "go run ./cmd/ingest-worker"}},
		{name: "no server", url: "nats://127.0.0.1:1", args: []string{"events"}, wantCode: exitNATS,
			want: []string{"connect to nats at nats://127.0.0.1:1", "is the worker running?", "--server / NATS_URL / INGEST_NATS_URL"}},
		{name: "no server, given with -s", args: []string{"jobs", "-s", "nats://127.0.0.1:1"}, wantCode: exitNATS,
			want: []string{"connect to nats at nats://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := ctlAt(t, tt.url, nil, tt.args...)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tt.wantCode, res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", res.stderr, w)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

// TestUsage: command lines that are wrong before any connection, and help.
func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "Usage: ingestctl <command>"},
		{name: "unknown command", args: []string{"purge"}, wantCode: exitUsage, wantStderr: `unknown command "purge"`},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "  7  no terminal event within --wait-timeout"},
		{name: "subcommand help", args: []string{"trigger", "-h"}, wantCode: exitOK, wantStdout: "-wait-timeout duration"},
		{name: "unknown flag", args: []string{"events", "--bogus"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -bogus"},
		{name: "stray argument", args: []string{"jobs", "extra"}, wantCode: exitUsage, wantStderr: `unexpected argument "extra"`},
		{name: "trigger without org", args: []string{"trigger", "--mapping", "XDM44"}, wantCode: exitUsage, wantStderr: "--org and --mapping are required"},
		{name: "invalid organization", args: []string{"trigger", "--org", "ACME", "--mapping", "XDM44"}, wantCode: exitUsage, wantStderr: `--org "ACME" is not a valid organization`},
		{name: "invalid mapping", args: []string{"trigger", "--org", "acme", "--mapping", "a.b"}, wantCode: exitUsage, wantStderr: `--mapping "a.b" is not a valid mapping id`},
		{name: "id the worker would reject", args: []string{"trigger", "--org", "acme", "--mapping", "M", "--id", "tab\there"}, wantCode: exitUsage, wantStderr: "the worker would reject this command: invalid_command: id holds a character that is not printable"},
		{name: "negative timeout", args: []string{"trigger", "--org", "acme", "--mapping", "M", "--timeout", "-1s"}, wantCode: exitUsage, wantStderr: "--timeout -1s is negative"},
		{name: "zero wait timeout", args: []string{"trigger", "--org", "acme", "--mapping", "M", "--wait", "--wait-timeout", "0s"}, wantCode: exitUsage, wantStderr: "--wait-timeout must be positive"},
		{name: "unknown event type", args: []string{"events", "--type", "done"}, wantCode: exitUsage, wantStderr: `unknown event type "done"`},
		{name: "negative since", args: []string{"events", "--since", "-1h"}, wantCode: exitUsage, wantStderr: "--since -1h0m0s is negative"},
		{name: "unknown job state", args: []string{"jobs", "--state", "failed"}, wantCode: exitUsage, wantStderr: `--state "failed": want running or done`},
		{name: "zero limit", args: []string{"jobs", "--limit", "0"}, wantCode: exitUsage, wantStderr: "--limit must be at least 1"},
		{name: "invalid job organization", args: []string{"jobs", "--org", "a.b"}, wantCode: exitUsage, wantStderr: `--org "a.b" is not a valid organization`},
		{name: "unknown output format", args: []string{"events", "-o", "yaml"}, wantCode: exitUsage, wantStderr: `invalid value "yaml" for flag -o: want text or json`},
		{name: "unknown nats context", args: []string{"events", "--context", "nope"}, wantCode: exitUsage, wantStderr: `nats context "nope": no configuration directory`},
		{name: "exit codes", args: []string{"help"}, wantCode: exitOK, wantStdout: "  8  permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// No server: none of these may connect.
			res := ctlAt(t, "nats://127.0.0.1:1", nil, tt.args...)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tt.wantCode, res.stderr)
			}
			if !strings.Contains(res.stdout, tt.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", res.stdout, tt.wantStdout)
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", res.stderr, tt.wantStderr)
			}
		})
	}
}
