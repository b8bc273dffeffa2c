package ingest_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// FuzzParseCommand checks command decoding against the contract for any
// subject, Nats-Msg-Id, fallback id and body: it never panics; a command
// that parses has valid tokens taken from the subject (which is
// authoritative), a usable id and no negative timeout; a command that does
// not parse is a *RejectError with a documented reason, and
// subject_mismatch only when the body names another organization or
// mapping. Seeds: below and testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	seeds := []struct {
		subject, msgID, fallback, body string
	}{
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-1", ""},
		{"ingest.commands.acme.XDM44", "etl-1", "INGEST_COMMANDS-2", `{"id":"etl-2","organization":"acme","mappingId":"XDM44","correlationId":"run-42","timeout":"2h"}`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-3", `{"organization":"globex"}`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-4", `{"mappingId":"XDM45"}`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-5", `{"timeout":"-1s"}`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-6", `{"id":"a\u0000b"}`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-7", `[1,2]`},
		{"ingest.commands.acme.XDM44", "", "INGEST_COMMANDS-8", `{"timeout":7200}`},
		{"ingest.commands.ACME.XDM44", "", "INGEST_COMMANDS-9", ""},
		{"ingest.commands.acme.../x", "", "INGEST_COMMANDS-10", ""},
		{"ingest.commands.acme.XDM44.extra", "", "INGEST_COMMANDS-11", ""},
		{"ingest.events.acme.XDM44", "", "INGEST_COMMANDS-12", ""},
		{"ingest.commands.acme.XDM44", strings.Repeat("x", 300), "INGEST_COMMANDS-13", ""},
		{"ingest.commands.acme.XDM44", "", "", `{"Organization":"ACME","MAPPINGID":"xdm44"}`},
	}
	for _, s := range seeds {
		f.Add(s.subject, s.msgID, s.fallback, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, subject, msgID, fallback string, body []byte) {
		env := layout.Envelope(subject, func(string) string { return msgID }, "", 0)
		env.FallbackID = fallback
		cmd, err := ingest.ParseCommand(env, body)
		named := bodyNames(body)
		if err != nil {
			var re *ingest.RejectError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RejectError", err, err)
			}
			if !slices.Contains(ingest.Reasons, re.Reason) {
				t.Fatalf("reason %q is not in ingest.Reasons", re.Reason)
			}
			if re.Reason == ingest.ReasonSubjectMismatch && named.org == cmd.Organization && named.mapping == cmd.MappingID {
				t.Fatalf("subject_mismatch for a body naming %q/%q on %s", named.org, named.mapping, subject)
			}
			return
		}
		if !ingest.ValidOrganization(cmd.Organization) || !ingest.ValidMappingID(cmd.MappingID) {
			t.Fatalf("accepted invalid tokens %q / %q", cmd.Organization, cmd.MappingID)
		}
		if got := layout.CommandSubject(cmd.Organization, cmd.MappingID); got != subject {
			t.Fatalf("accepted command has subject %q, arrived on %q", got, subject)
		}
		if named.org != "" && named.org != cmd.Organization || named.mapping != "" && named.mapping != cmd.MappingID {
			t.Fatalf("accepted a body naming %q/%q on %s", named.org, named.mapping, subject)
		}
		checkID(t, "id", cmd.ID)
		if cmd.CorrelationID != "" {
			checkID(t, "correlationId", cmd.CorrelationID)
		}
		if want := firstNonEmpty(named.id, msgID, fallback); cmd.ID != want {
			t.Fatalf("id %q, want %q (body, then Nats-Msg-Id, then fallback)", cmd.ID, want)
		}
		if cmd.Timeout < 0 {
			t.Fatalf("accepted negative timeout %s", time.Duration(cmd.Timeout))
		}
	})
}

// named is what a body names, read independently of ParseCommand
// (encoding/json matches keys case-insensitively, as ParseCommand does).
type named struct {
	id, org, mapping string
}

func bodyNames(body []byte) named {
	var b struct {
		ID           string `json:"id"`
		Organization string `json:"organization"`
		MappingID    string `json:"mappingId"`
	}
	_ = json.Unmarshal(body, &b) // best effort: only used when ParseCommand accepted the body
	return named{b.ID, b.Organization, b.MappingID}
}

func checkID(t *testing.T, name, s string) {
	t.Helper()
	if s == "" || len(s) > ingest.MaxIDLen {
		t.Fatalf("accepted %s of %d bytes", name, len(s))
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0 {
		t.Fatalf("accepted %s %q with a character that is not printable", name, s)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
