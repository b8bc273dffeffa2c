package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
)

func usage(out io.Writer) {
	fmt.Fprintf(out, "ingest-worker %s: Campaign ingestion commands from NATS JetStream, outcomes as events.\n\n", version)
	fmt.Fprintln(out, "Usage: ingest-worker [-version]\n\nConfiguration, from the environment:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	_ = envconfig.Usagef("ingest", &config{}, tw, "{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}")
	_ = tw.Flush()
}
