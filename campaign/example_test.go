package campaign_test

import (
	"context"
	"log"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

func Example() {
	c, err := campaign.New(campaign.Config{
		IMS: campaign.IMSConfig{
			ClientID:     "0123456789abcdef",
			ClientSecret: "p8e-…",
			Scopes:       []string{"openid", "AdobeID", "read_organizations", "additional_info.projectedProductContext", "campaign_sdk"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	tr, err := c.Trigger(ctx, "acme", "XDM44")
	switch {
	case campaign.Retryable(err):
		d, _ := campaign.RetryAfterOf(err) // 0 when the answer did not say
		log.Printf("try again in %v (or later): %v", max(d, 5*time.Second), err)
		return
	case err != nil:
		log.Printf("give up: %v", err)
		return
	}
	switch tr.Kind() {
	case campaign.TriggerAccepted, campaign.TriggerBusy:
		st, err := c.Status(ctx, "acme", "XDM44", string(tr.RequestID))
		if err == nil && st.Status.Terminal() {
			log.Printf("%s: %d records, error code %q", st.Status, st.NumRecords, st.ErrorCode())
		}
	default:
		log.Printf("not triggered (%v): %s", tr.Kind(), tr.Info)
	}
}
