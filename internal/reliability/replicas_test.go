package reliability_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/reliability"
)

// TestReplicasKilledAndRestarted runs three worker processes on the shared
// consumer and SIGKILLs a random one every two seconds (a bounded number of
// times), starting a new one each time. Every command ends in exactly one
// terminal event with exactly one ingestion request, and the requests a
// killed process was polling are resumed by others within AckWait plus one
// poll interval.
//
// A kill that lands between a POST and the write of its request id makes
// the redelivery POST again; the API answers "In Progress" with the same
// request, which the redelivery adopts (DESIGN.md, guarantee 2). That is a
// second POST call but not a second ingestion: the mappings run longer than
// AckWait so that the request is still running when the command comes back.
func TestReplicasKilledAndRestarted(t *testing.T) {
	t.Parallel()
	ns, err := reliability.StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	cmds := reliability.Commands("replica", size(200, 1000))
	script := campaignsim.Script{Records: 15, Duration: campaignsim.Duration(8 * time.Second)}
	r := newRig(t, ns.URL(), reliability.Mappings(cmds, script))
	live := []*reliability.Worker{r.start(), r.start(), r.start()}
	r.publish(cmds)

	type kill struct {
		w  *reliability.Worker
		at time.Time
	}
	var kills []kill
	for range size(4, 8) {
		time.Sleep(2 * time.Second)
		i := rand.IntN(len(live))
		kills = append(kills, kill{live[i], live[i].Kill()})
		live[i] = r.start()
	}

	rep, evs := r.finish(cmds, 2*time.Minute)
	var all []time.Duration
	for _, k := range kills {
		all = append(all, r.checkResumes(k.w, k.at, evs, ackWait+pollMax+slack, true)...)
	}
	if len(all) == 0 {
		t.Error("no kill hit a polling job: the test proved nothing")
	}
	slices.Sort(all)
	t.Logf("%d commands, %d POST calls, %d kills, %d requests resumed, resume times %v .. %v",
		rep.Commands, rep.POSTs, len(kills), len(all), all[0], all[len(all)-1])
}

// TestGracefulHandOver stops a worker with SIGTERM while its jobs poll: it
// hands them back at once (Nak), and another process checks each of them
// well before AckWait would have expired, without a second POST.
func TestGracefulHandOver(t *testing.T) {
	t.Parallel()
	ns, err := reliability.StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	const leaseWait = 15 * time.Second // long, so that a hand-over by expiry cannot pass
	cmds := reliability.Commands("term", size(40, 400))
	script := campaignsim.Script{Records: 15, Duration: campaignsim.Duration(5 * time.Second)}
	r := newRig(t, ns.URL(), reliability.Mappings(cmds, script), "INGEST_ACK_WAIT="+leaseWait.String())
	workers := []*reliability.Worker{r.start(), r.start()}
	r.publish(cmds)
	r.polling(cmds, 30*time.Second)

	victim := busiest(r.api.Calls(), workers)
	stopped := victim.Term()
	if err := victim.Wait(leaseWait); err != nil {
		t.Errorf("SIGTERM: worker %d ended with %v", victim.ID, err)
	}

	_, evs := r.finish(cmds, time.Minute)
	r.postsPerCommand(cmds)
	resumes := r.checkResumes(victim, stopped, evs, leaseWait/5, false)
	if len(resumes) > 0 {
		t.Logf("worker %d handed over %d requests; next check by the other after %v .. %v (AckWait %s)",
			victim.ID, len(resumes), resumes[0], resumes[len(resumes)-1], leaseWait)
	}
}

// busiest returns the worker that polled the most requests lately.
func busiest(calls []reliability.Call, ws []*reliability.Worker) *reliability.Worker {
	since := time.Now().Add(-time.Second)
	reqs := map[int]map[string]bool{}
	for _, c := range calls {
		if c.Op == campaign.OpStatus && c.Time.After(since) {
			if reqs[c.Proc] == nil {
				reqs[c.Proc] = map[string]bool{}
			}
			reqs[c.Proc][c.RequestID] = true
		}
	}
	best := ws[0]
	for _, w := range ws {
		if len(reqs[w.ID]) > len(reqs[best.ID]) {
			best = w
		}
	}
	return best
}
