package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	env := func(subject string) Envelope { return testEnvelope(subject, "", "INGEST_COMMANDS-7") }
	tests := []struct {
		name    string
		env     Envelope
		body    string
		want    Command // compared on ID, Organization, MappingID, CorrelationID, Timeout
		reason  Reason  // "" when valid
		details string  // a part of the rejection's detail
	}{
		{name: "empty body: everything from the subject, id from the stream sequence",
			env: env("ingest.commands.acme.XDM44"), body: "",
			want: Command{ID: "INGEST_COMMANDS-7", Organization: "acme", MappingID: "XDM44"}},
		{name: "whitespace body is empty",
			env: env("ingest.commands.acme.XDM44"), body: " \n",
			want: Command{ID: "INGEST_COMMANDS-7", Organization: "acme", MappingID: "XDM44"}},
		{name: "Nats-Msg-Id names the command when the body does not",
			env: testEnvelope("ingest.commands.acme.XDM44", "etl-1", "S-1"), body: "{}",
			want: Command{ID: "etl-1", Organization: "acme", MappingID: "XDM44"}},
		{name: "the body's id wins over Nats-Msg-Id",
			env: testEnvelope("ingest.commands.acme.XDM44", "etl-1", ""), body: `{"id":"etl-2"}`,
			want: Command{ID: "etl-2", Organization: "acme", MappingID: "XDM44"}},
		{name: "full body of the contract",
			env:  env("ingest.commands.acme.XDM44"),
			body: `{"id":"etl-2026-12-01-profiles","organization":"acme","mappingId":"XDM44","correlationId":"etl-run-42","timeout":"2h"}`,
			want: Command{ID: "etl-2026-12-01-profiles", Organization: "acme", MappingID: "XDM44", CorrelationID: "etl-run-42", Timeout: Duration(2 * time.Hour)}},
		{name: "unknown fields are ignored",
			env: env("ingest.commands.acme-stage.Test_Doc-1"), body: `{"priority":"high","nested":{"a":[1,2]}}`,
			want: Command{ID: "INGEST_COMMANDS-7", Organization: "acme-stage", MappingID: "Test_Doc-1"}},
		{name: "not JSON", env: env("ingest.commands.acme.XDM44"), body: `{"id":`,
			reason: ReasonInvalidCommand, details: "not a JSON command object"},
		{name: "a JSON array is not a command", env: env("ingest.commands.acme.XDM44"), body: `[1]`,
			reason: ReasonInvalidCommand},
		{name: "timeout that is not a duration", env: env("ingest.commands.acme.XDM44"), body: `{"timeout":"soon"}`,
			reason: ReasonInvalidCommand},
		{name: "timeout as a number", env: env("ingest.commands.acme.XDM44"), body: `{"timeout":3600}`,
			reason: ReasonInvalidCommand},
		{name: "negative timeout", env: env("ingest.commands.acme.XDM44"), body: `{"timeout":"-1s"}`,
			reason: ReasonInvalidCommand, details: "negative"},
		{name: "body larger than 64 KiB", env: env("ingest.commands.acme.XDM44"),
			body:   `{"correlationId":"` + strings.Repeat("x", MaxCommandBytes) + `"}`,
			reason: ReasonInvalidCommand, details: "more than 65536"},
		{name: "body names another organization", env: env("ingest.commands.acme.XDM44"), body: `{"organization":"globex"}`,
			reason: ReasonSubjectMismatch, details: "globex"},
		{name: "body names another mapping", env: env("ingest.commands.acme.XDM44"), body: `{"mappingId":"XDM95"}`,
			reason: ReasonSubjectMismatch, details: "XDM95"},
		{name: "Nats-Msg-Id scoped to another organization, with the body's id", env: testEnvelope("ingest.commands.globex.XDM44", "acme:shared-1", ""),
			body: `{"id":"shared-1"}`, reason: ReasonSubjectMismatch, details: `scoped to organization "acme"`},
		{name: "Nats-Msg-Id scoped to another organization, alone", env: testEnvelope("ingest.commands.globex.XDM44", "acme:shared-1", ""),
			body: "", reason: ReasonSubjectMismatch, details: `scoped to organization "acme"`},
		{name: "Nats-Msg-Id scoped to the subject's organization", env: testEnvelope("ingest.commands.acme.XDM44", "acme:shared-1", ""),
			body: `{"id":"shared-1"}`, want: Command{ID: "shared-1", Organization: "acme", MappingID: "XDM44"}},
		{name: "body repeating the subject is fine", env: env("ingest.commands.acme.XDM44"), body: `{"organization":"acme","mappingId":"XDM44"}`,
			want: Command{ID: "INGEST_COMMANDS-7", Organization: "acme", MappingID: "XDM44"}},
		{name: "upper-case organization", env: env("ingest.commands.Acme.XDM44"),
			reason: ReasonInvalidCommand, details: "organization"},
		{name: "organization starting with a dash", env: env("ingest.commands.-acme.XDM44"),
			reason: ReasonInvalidCommand},
		{name: "organization of 64 characters", env: env("ingest.commands." + strings.Repeat("a", 64) + ".XDM44"),
			reason: ReasonInvalidCommand},
		{name: "organization of 63 characters", env: env("ingest.commands." + strings.Repeat("a", 63) + ".XDM44"),
			want: Command{ID: "INGEST_COMMANDS-7", Organization: strings.Repeat("a", 63), MappingID: "XDM44"}},
		{name: "mapping id of 129 characters", env: env("ingest.commands.acme." + strings.Repeat("M", 129)),
			reason: ReasonInvalidCommand, details: "mapping id"},
		{name: "mapping id starting with a dash", env: env("ingest.commands.acme.-XDM"),
			reason: ReasonInvalidCommand},
		{name: "too few subject tokens", env: env("ingest.commands.acme"),
			reason: ReasonInvalidCommand, details: "is not ingest.commands.<organization>.<mappingId>"},
		{name: "too many subject tokens", env: env("ingest.commands.acme.XDM44.extra"),
			reason: ReasonInvalidCommand},
		{name: "another subject", env: env("other.commands.acme.XDM44"),
			reason: ReasonInvalidCommand},
		{name: "id with a control character", env: env("ingest.commands.acme.XDM44"), body: `{"id":"a\u0000b"}`,
			reason: ReasonInvalidCommand, details: "not printable"},
		{name: "id of 257 bytes", env: env("ingest.commands.acme.XDM44"), body: `{"id":"` + strings.Repeat("i", 257) + `"}`,
			reason: ReasonInvalidCommand},
		{name: "invalid UTF-8 id", env: env("ingest.commands.acme.XDM44"), body: "{\"id\":\"a\xffb\"}",
			reason: ReasonInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.env, []byte(tt.body))
			var rej *RejectError
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ParseCommand: %v", err)
				}
				got.Trace = Trace{}
				if got != tt.want {
					t.Errorf("command = %+v, want %+v", got, tt.want)
				}
				return
			}
			if !errors.As(err, &rej) {
				t.Fatalf("error = %v, want a rejection %s", err, tt.reason)
			}
			if rej.Reason != tt.reason || !strings.Contains(rej.Detail, tt.details) {
				t.Errorf("rejection = %s %q, want %s containing %q", rej.Reason, rej.Detail, tt.reason, tt.details)
			}
			if got.ID == "" {
				t.Errorf("a rejected command still needs an id for its event")
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	pub := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		timeout Duration
		max     time.Duration
		want    time.Duration
	}{
		{timeout: 0, max: 6 * time.Hour, want: 6 * time.Hour},
		{timeout: Duration(2 * time.Hour), max: 6 * time.Hour, want: 2 * time.Hour},
		{timeout: Duration(9 * time.Hour), max: 6 * time.Hour, want: 6 * time.Hour},
	}
	for _, tt := range tests {
		if got := (Command{Timeout: tt.timeout}).Deadline(pub, tt.max); got.Sub(pub) != tt.want {
			t.Errorf("timeout %s max %s: deadline after %s, want %s", time.Duration(tt.timeout), tt.max, got.Sub(pub), tt.want)
		}
	}
}

func TestParseTrace(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		parent, state string
		want          Trace
	}{
		{parent: valid, state: "k=v", want: Trace{Parent: valid, State: "k=v"}},
		{parent: "", state: "k=v", want: Trace{}},
		{parent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", want: Trace{}},
		{parent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", want: Trace{}},
		{parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", want: Trace{}},
		{parent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", want: Trace{}},
		{parent: valid + "-extra", want: Trace{}},
	}
	for _, tt := range tests {
		if got := ParseTrace(tt.parent, tt.state); got != tt.want {
			t.Errorf("ParseTrace(%q, %q) = %+v, want %+v", tt.parent, tt.state, got, tt.want)
		}
	}
	if id := ParseTrace(valid, "").TraceID(); id != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q", id)
	}
}

// testEnvelope is the envelope of a command that arrived on subject, split
// as the JetStream layout splits it (the layout package imports this one).
func testEnvelope(subject, msgID, fallback string) Envelope {
	env := Envelope{Subject: subject, MsgID: msgID, FallbackID: fallback}
	rest, ok := strings.CutPrefix(subject, "ingest.commands.")
	org, mapping, ok2 := strings.Cut(rest, ".")
	env.Organization, env.MappingID = org, mapping
	env.BadSubject = !ok || !ok2 || strings.Contains(mapping, ".")
	if env.BadSubject {
		env.Organization, env.MappingID = "", ""
	}
	return env
}

// TestValidTokens: the byte loops accept exactly what the contract's
// patterns accept.
func TestValidTokens(t *testing.T) {
	inputs := []string{"", "a", "acme", "acme-stage", "-acme", "a-", "ACME", "a_b", "a.b", "ä", "a b",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("A", 128), strings.Repeat("A", 129),
		"XDM44", "_x", "x_", "Test_Doc-1", "a\x7f", "a\x00", "9", "0-0"}
	for _, s := range inputs {
		if got, want := ValidOrganization(s), orgRE.MatchString(s); got != want {
			t.Errorf("ValidOrganization(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := ValidMappingID(s), mappingRE.MatchString(s); got != want {
			t.Errorf("ValidMappingID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
