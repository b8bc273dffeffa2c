package reliability_test

import (
	"context"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/internal/reliability"
)

// TestNATSServerRestart stops the only NATS server mid-run and starts it
// again on the same port and store directory (file storage, fsync on every
// write): the workers report not ready while it is gone, reconnect by
// themselves, and every command still ends exactly once.
func TestNATSServerRestart(t *testing.T) {
	t.Parallel()
	ns, err := reliability.StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	cmds := reliability.Commands("restart", size(100, 1000))
	script := campaignsim.Script{Records: 15, Duration: campaignsim.Duration(4 * time.Second)}
	r := newRig(t, ns.URL(), reliability.Mappings(cmds, script))
	w := r.start()
	r.start()
	addr, err := w.HTTPAddr(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(cmds)
	r.polling(cmds, 30*time.Second)

	ns.Stop()
	if err := w.WaitReady(addr, false, 10*time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Second)
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitReady(addr, true, 30*time.Second); err != nil {
		t.Error(err)
	}
	rep, _ := r.finish(cmds, 2*time.Minute)
	t.Logf("%d commands, %d terminal events, %d POST calls after a server restart", rep.Commands, rep.TerminalEvents, rep.POSTs)
}

// TestClusterLeaderLoss runs the workers against a three-node JetStream
// cluster with the streams and the bucket at R3, and shuts down the leader
// of the command stream, then the leader of the job bucket, during the run
// (each comes back after a while). Every command ends exactly once and the
// workers carry on by themselves.
func TestClusterLeaderLoss(t *testing.T) {
	t.Parallel()
	cl, err := reliability.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	if err := cl.WaitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	cmds := reliability.Commands("cluster", size(100, 1000))
	script := campaignsim.Script{Records: 15, Duration: campaignsim.Duration(6 * time.Second)}
	r := newRig(t, cl.URLs(), reliability.Mappings(cmds, script), "INGEST_REPLICAS=3")
	r.start()
	r.start()
	r.publish(cmds)
	r.polling(cmds, time.Minute)

	ctx := context.Background()
	for _, stream := range []string{"INGEST_COMMANDS", "KV_INGEST_JOBS"} {
		leader, err := cl.Leader(ctx, r.js, stream)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stopping %s, leader of %s", leader.Name(), stream)
		leader.Stop()
		time.Sleep(2 * time.Second)
		if err := leader.Start(); err != nil {
			t.Fatal(err)
		}
	}
	rep, _ := r.finish(cmds, 2*time.Minute)
	t.Logf("%d commands, %d terminal events, %d POST calls after losing two leaders", rep.Commands, rep.TerminalEvents, rep.POSTs)
}
