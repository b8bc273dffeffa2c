package layout

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"

	"github.com/acme/campaign-ingest/ingest"
)

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_=.-]*$`)

// encodedPrefix marks a key token that holds a base64url command id.
const encodedPrefix = "b64."

// RecordKey is the KV key of the record of command id in organization org:
// "<org>.<id>", with the id itself when it is a valid key of at most 200
// bytes without empty tokens, else "b64." and its unpadded base64url form.
// The organization leads, so that a NATS permission on
// $KV.INGEST_JOBS.<org>.> confines a tenant to its own records.
func RecordKey(org, commandID string) string {
	return org + "." + idKey(commandID)
}

// OrganizationKeys is the key filter of one organization's records.
func OrganizationKeys(org string) string { return org + ".>" }

func idKey(id string) string {
	if len(id) <= 200 && plainKeyRE.MatchString(id) && !strings.HasSuffix(id, ".") &&
		!strings.Contains(id, "..") && !strings.HasPrefix(id, encodedPrefix) {
		return id
	}
	return encodedPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// EventMsgID is an event's Nats-Msg-Id and CloudEvents id:
// "<org>:<commandId>:terminal" for every terminal event of a command, so
// that the server keeps exactly one even if two deliveries reached
// different outcomes, and "<org>:<commandId>:triggered:<attempt>" for a
// triggered event. The organization scopes it: two organizations' commands
// with one id never share an event id. An invalid organization is written
// as "_" and its base64url form.
func EventMsgID(ev ingest.Event) string {
	org := ev.Organization
	if !ingest.ValidOrganization(org) {
		// Two invalid organizations must not share ids: "_" and the
		// organization in base64url (bounded by ingest).
		org = "_" + base64.RawURLEncoding.EncodeToString([]byte(org))
	}
	var b strings.Builder
	b.Grow(len(org) + len(ev.CommandID) + 16)
	b.WriteString(org)
	b.WriteByte(':')
	b.WriteString(ev.CommandID)
	if ev.Type.Terminal() {
		b.WriteString(":terminal")
		return b.String()
	}
	b.WriteString(":triggered:")
	b.WriteString(strconv.Itoa(ev.Attempt))
	return b.String()
}
