package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/acme/campaign-ingest/orgs"
)

// checkOrgs validates an organizations file as the worker would at start
// (secret files included) and lists its organizations, never a secret.
func (a *app) checkOrgs(_ context.Context, args []string) error {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(a.stdout, "Usage: ingestctl check-orgs FILE\n\nValidates an organizations file (INGEST_ORGS_FILE) as the worker does at start, secret files included, and lists its organizations without their secrets.")
			return errHelp
		}
		return usageErrorf("check-orgs: want one organizations FILE")
	}
	f, err := orgs.Load(args[0])
	if err != nil {
		return withCode(exitUsage, err)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORGANIZATION\tIMS CLIENT\tAPI KEY\tSCOPES\tMAX IN FLIGHT\tAPI RATE LIMIT")
	for _, o := range f.Organizations {
		share, limit := "worker's", "none"
		if o.MaxInFlight > 0 {
			share = fmt.Sprint(o.MaxInFlight)
		}
		if o.APIRateLimit > 0 {
			limit = fmt.Sprintf("%g/s", o.APIRateLimit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Name, o.IMSClientID, o.Key(), strings.Join(o.IMSScopes, ","), share, limit)
	}
	return tw.Flush()
}
