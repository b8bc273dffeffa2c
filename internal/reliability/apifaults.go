package reliability

import (
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// injectFaults makes a few percent of the API's calls fail in every way
// the simulator knows.
func injectFaults(sim *campaignsim.Server) {
	for _, f := range []campaignsim.Fault{
		{Op: campaign.OpStatus, Kind: campaignsim.FaultError, Code: 503, Rate: 0.03},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultDrop, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultMalformed, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Rate: 0.01},
		{Op: campaign.OpStatus, Kind: campaignsim.FaultLatency, Latency: 2500 * time.Millisecond, Rate: 0.005},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultError, Code: 502, Rate: 0.02},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultDrop, Rate: 0.02, AfterProcessing: true},
		{Op: campaign.OpTrigger, Kind: campaignsim.FaultThrottle, RetryAfter: time.Second, Rate: 0.01},
	} {
		sim.InjectFault(f)
	}
}
