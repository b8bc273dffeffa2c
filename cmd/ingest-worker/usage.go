package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
)

// configVar is one INGEST_* variable as envconfig describes it from the
// struct tags of the program's config (worker.Config and Development). `ingest-worker -h` and
// docs/configuration.md both show this data, so they cannot differ.
type configVar struct {
	Key, Type, Default, Desc string
}

// ASCII unit and record separators: envconfig prints each variable as four
// fields separated by fieldSep and ended by recordSep. No struct tag holds
// either.
const (
	fieldSep  = "\x1f"
	recordSep = "\x1e"
)

// varsFormat is the envconfig template that prints the variables for
// configVars.
const varsFormat = "{{range .}}{{usage_key .}}\x1f{{usage_type .}}\x1f{{usage_default .}}\x1f{{usage_description .}}\x1e{{end}}"

// configVars returns the variables of config (worker.Config and Development), nested structs (NATS,
// IMS) included, in declaration order.
func configVars() ([]configVar, error) {
	var b strings.Builder
	if err := envconfig.Usagef("ingest", &config{}, &b, varsFormat); err != nil {
		return nil, fmt.Errorf("listing the configuration: %w", err)
	}
	records := strings.Split(strings.TrimSuffix(b.String(), recordSep), recordSep)
	vars := make([]configVar, 0, len(records))
	for _, r := range records {
		f := strings.Split(r, fieldSep)
		if len(f) != 4 {
			return nil, fmt.Errorf("listing the configuration: %q has %d fields, want 4", r, len(f))
		}
		vars = append(vars, configVar{Key: f[0], Type: f[1], Default: f[2], Desc: f[3]})
	}
	return vars, nil
}

// usage writes what `ingest-worker -h` prints: the flags, then every
// configuration variable with its type, default and meaning.
func usage(out io.Writer) {
	fmt.Fprintf(out, "ingest-worker %s: Campaign ingestion commands from NATS JetStream, outcomes as events.\n\n", version)
	fmt.Fprintln(out, "Usage: ingest-worker [-version]\n\nConfiguration, from the environment:")
	vars, err := configVars()
	if err != nil {
		fmt.Fprintln(out, "ingest-worker:", err)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	for _, v := range vars {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Key, v.Type, v.Default, v.Desc)
	}
	_ = tw.Flush()
}

// The markers around the generated table in docs/configuration.md; the
// prose around them is written by hand.
const (
	docBegin = "<!-- BEGIN generated from the configuration structs (what ingest-worker -h prints); do not edit: go test ./cmd/ingest-worker -run TestConfigurationDoc -update -->"
	docEnd   = "<!-- END generated -->"
)

// configurationDoc returns doc, the text of docs/configuration.md, with the
// table between its markers rendered from the configuration structs.
func configurationDoc(doc string) (string, error) {
	vars, err := configVars()
	if err != nil {
		return "", err
	}
	return withTable(doc, markdownTable(vars))
}

// withTable returns doc with the text between docBegin and docEnd replaced
// by table.
func withTable(doc, table string) (string, error) {
	before, rest, ok := strings.Cut(doc, docBegin)
	if !ok {
		return "", fmt.Errorf("no begin marker %q", docBegin)
	}
	_, after, ok := strings.Cut(rest, docEnd)
	if !ok {
		return "", fmt.Errorf("no end marker %q after the begin marker", docEnd)
	}
	return before + docBegin + "\n\n" + table + "\n" + docEnd + after, nil
}

// markdownTable renders vars as a Markdown table with the columns of -h.
func markdownTable(vars []configVar) string {
	var b strings.Builder
	b.WriteString("| variable | type | default | meaning |\n|---|---|---|---|\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", codeCell(v.Key), textCell(v.Type), codeCell(v.Default), textCell(v.Desc))
	}
	return b.String()
}

// codeCell renders s as a code span for a table cell; empty stays empty.
func codeCell(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(oneLine(s), "|", `\|`)
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// textCell renders s as table cell text: words that name a variable, a
// path, a URL scheme or a placeholder (INGEST_X, /metrics, .creds, tls://,
// <org>) become code spans, and the rest is escaped so that Markdown shows
// it as written.
func textCell(s string) string {
	words := strings.Split(oneLine(s), " ")
	for i, w := range words {
		words[i] = cellWord(w)
	}
	return strings.Join(words, " ")
}

// cellWord renders one word of textCell, keeping the punctuation around it
// out of a code span.
func cellWord(w string) string {
	core := strings.TrimLeft(w, "(")
	lead := w[:len(w)-len(core)]
	core = strings.TrimRight(core, "),;:")
	trail := w[len(lead)+len(core):]
	if isCode(core) {
		return escapeText(lead) + codeCell(core) + escapeText(trail)
	}
	return escapeText(w)
}

// isCode reports whether a word reads as code rather than prose: it holds
// an underscore, a URL scheme or a <placeholder>, or it starts with a path
// separator or a dot (not "...").
func isCode(w string) bool {
	switch {
	case strings.Contains(w, "_"), strings.Contains(w, "://"):
		return true
	case strings.Contains(w, "<") && strings.Contains(w, ">"):
		return true
	default:
		return len(w) > 1 && (w[0] == '/' || w[0] == '.') && w[1] != '.'
	}
}

// markdownEscaper escapes what Markdown would otherwise read as table,
// emphasis, link, code or HTML syntax.
var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`",
	"[", `\[`, "]", `\]`, "&", "&amp;", "<", "&lt;",
)

// escapeText escapes s for Markdown text.
func escapeText(s string) string {
	return markdownEscaper.Replace(s)
}

// oneLine joins the lines of s: a table row is one line.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " ")
}
