package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"

	"github.com/acme/campaign-ingest/worker"
)

// configVar is one INGEST_* variable as envconfig describes it from the
// struct tags of worker.Config: the data `ingest-worker -h` shows.
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

// configVars returns the variables of worker.Config, nested structs (NATS,
// IMS) included, in declaration order.
func configVars() ([]configVar, error) {
	var b strings.Builder
	if err := envconfig.Usagef("ingest", &worker.Config{}, &b, varsFormat); err != nil {
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
