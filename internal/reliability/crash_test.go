package reliability_test

import (
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/reliability"
)

// TestCrashMidPoll kills a worker process (SIGKILL) while its jobs poll and
// starts another: every command is triggered once and ends in exactly one
// terminal event, and the new process resumes each request within AckWait
// plus one poll interval.
func TestCrashMidPoll(t *testing.T) {
	t.Parallel()
	ns, err := reliability.StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	cmds := reliability.Commands("crash", size(20, 200))
	script := campaignsim.Script{Records: 15, Duration: campaignsim.Duration(4 * time.Second)}
	r := newRig(t, ns.URL(), reliability.Mappings(cmds, script))

	first := r.start()
	r.publish(cmds)
	r.polling(cmds, 30*time.Second)
	killed := first.Kill()
	r.start()

	_, evs := r.finish(cmds, time.Minute)
	r.postsPerCommand(cmds)
	resumes := r.checkResumes(first, killed, evs, ackWait+pollMax+slack, false)
	t.Logf("%d requests resumed after the kill; resume times %v .. %v", len(resumes), resumes[0], resumes[len(resumes)-1])
}
