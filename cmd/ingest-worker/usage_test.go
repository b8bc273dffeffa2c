package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from worker.Config")

// configurationDocPath is docs/configuration.md from this package's directory.
const configurationDocPath = "../../docs/configuration.md"

// updateCommand rewrites the configuration reference.
const updateCommand = "go test ./cmd/ingest-worker -run TestConfigurationDoc -update"

// TestConfigurationDoc: the table of docs/configuration.md is worker.Config's
// variables exactly as `ingest-worker -h` lists them. With -update it
// rewrites the table and keeps the prose around it.
func TestConfigurationDoc(t *testing.T) {
	b, err := os.ReadFile(configurationDocPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want, err := configurationDoc(doc)
	if err != nil {
		t.Fatalf("docs/configuration.md: %v", err)
	}
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(configurationDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote docs/configuration.md")
		return
	}
	n, got, exp := firstDifference(doc, want)
	t.Errorf("docs/configuration.md differs from worker.Config (what ingest-worker -h prints) at line %d:\n  doc:  %s\n  want: %s\nrun: %s", n, got, exp, updateCommand)
}

// TestUsageListsTheDocumentedVariables: -h prints one line per variable of
// configVars, in order, with its type, default and meaning.
func TestUsageListsTheDocumentedVariables(t *testing.T) {
	vars, err := configVars()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(out.String(), "VARIABLE")
	if !ok {
		t.Fatalf("-h prints no VARIABLE header:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")[1:]
	if len(lines) != len(vars) {
		t.Fatalf("-h lists %d variables, configVars %d", len(lines), len(vars))
	}
	for i, v := range vars {
		fields := strings.Fields(lines[i])
		if fields[0] != v.Key || !strings.Contains(lines[i], v.Type) ||
			!strings.Contains(lines[i], v.Default) || !strings.HasSuffix(lines[i], v.Desc) {
			t.Errorf("-h line %d = %q, want %s %s %s %s", i+1, lines[i], v.Key, v.Type, v.Default, v.Desc)
		}
	}
}

func TestConfigVarsIncludeNestedStructs(t *testing.T) {
	vars, err := configVars()
	if err != nil {
		t.Fatal(err)
	}
	keys := make(map[string]configVar)
	for _, v := range vars {
		keys[v.Key] = v
	}
	for _, k := range []string{"INGEST_NATS_URL", "INGEST_NATS_INBOX_PREFIX", "INGEST_IMS_CLIENT_ID", "INGEST_IMS_SCOPES", "INGEST_DATA_DIR", "INGEST_EVENTS_MAX_AGE"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("configVars has no %s", k)
		}
	}
	if got := keys["INGEST_MAX_IN_FLIGHT"]; got.Type != "Integer" || got.Default != "100" {
		t.Errorf("INGEST_MAX_IN_FLIGHT = %+v, want an Integer defaulting to 100", got)
	}
}

func TestTextCell(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain words, kept", "plain words, kept"},
		{"a | b", `a \| b`},
		{"(or INGEST_NATS_TOKEN_FILE)", "(or `INGEST_NATS_TOKEN_FILE`)"},
		{"/metrics, /healthz, /readyz", "`/metrics`, `/healthz`, `/readyz`"},
		{"base; /<org>/campaign/... is appended", "base; `/<org>/campaign/...` is appended"},
		{"grant <prefix>.> only", "grant `<prefix>.>` only"},
		{"NATS .creds file", "NATS `.creds` file"},
		{"a tls:// URL", "a `tls://` URL"},
		{"x_|y", "`x_\\|y`"},
		{"2*3 [x] a&b <", `2\*3 \[x\] a&amp;b &lt;`},
		{"a < b > c, a / b, wait...", "a &lt; b > c, a / b, wait..."},
		{"two\nlines", "two lines"},
	}
	for _, tt := range tests {
		if got := textCell(tt.in); got != tt.want {
			t.Errorf("textCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCodeCell(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{":8080", "`:8080`"},
		{"a|b", "`a\\|b`"},
		{"a`b", "`` a`b ``"},
	}
	for _, tt := range tests {
		if got := codeCell(tt.in); got != tt.want {
			t.Errorf("codeCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWithTable(t *testing.T) {
	doc := "# Title\n\nprose\n\n" + docBegin + "\nold table\n" + docEnd + "\n\nmore prose\n"
	got, err := withTable(doc, "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nprose\n\n" + docBegin + "\n\n| new |\n\n" + docEnd + "\n\nmore prose\n"
	if got != want {
		t.Errorf("withTable =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"no markers", docBegin + " no end", docEnd + " " + docBegin} {
		if _, err := withTable(bad, "x"); err == nil {
			t.Errorf("withTable(%q) accepted a document without both markers in order", bad)
		}
	}
}

// firstDifference returns the first line (1-based) where got and want
// differ, and that line of each ("(end)" past the last).
func firstDifference(got, want string) (int, string, string) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; ; i++ {
		gl, wl := lineAt(g, i), lineAt(w, i)
		if gl != wl || i >= len(g) || i >= len(w) {
			return i + 1, gl, wl
		}
	}
}

// lineAt returns lines[i], or "(end)" past the last line.
func lineAt(lines []string, i int) string {
	if i >= len(lines) {
		return "(end)"
	}
	return lines[i]
}
