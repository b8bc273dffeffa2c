// Command ingest-chaos is the worker's chaos/soak run: it builds
// ingest-worker, starts NATS (one server or a three-node cluster, fsync on
// every write) and the Campaign simulator on loopback, runs several worker
// processes, publishes commands, kills and restarts workers, stops NATS
// servers and injects API faults for a while, then waits for every command
// to end and prints what it proved:
//
//	go run ./cmd/ingest-chaos -commands 10000 -duration 2m -workers 3 -kill-every 5s -faults
//
// It exits 1 if a command was lost, ended twice or was triggered twice.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/acme/campaign-ingest/internal/reliability"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-chaos:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg reliability.ChaosConfig
	fs.IntVar(&cfg.Commands, "commands", 1000, "commands to publish (evenly over -duration)")
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to publish, kill and inject faults")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Minute, "how long to wait for the last commands afterwards")
	fs.IntVar(&cfg.Workers, "workers", 3, "worker processes")
	fs.DurationVar(&cfg.KillEvery, "kill-every", 5*time.Second, "stop a random worker this often (every third with SIGTERM, else SIGKILL) and start a new one; 0 = never")
	fs.BoolVar(&cfg.Faults, "faults", false, "inject API faults (5xx, drops, malformed, 429, latency, lost POST answers) at a few percent of calls")
	fs.BoolVar(&cfg.Cluster, "cluster", false, "three-node JetStream cluster with R3 streams and bucket")
	fs.DurationVar(&cfg.NATSEvery, "nats-every", 0, "stop NATS for 2s this often (the server, or the leaders of the command stream, the job bucket and the event stream in turn); 0 = never")
	fs.DurationVar(&cfg.EventFaultEvery, "event-faults-every", 0, "make publishing to INGEST_EVENTS fail for 2s this often (its MaxMsgSize set below any event's size, then restored; on a -cluster the replicas apply it late and briefly); 0 = never")
	fs.DurationVar(&cfg.IngestionTime, "ingestion-time", 5*time.Second, "how long each ingestion runs in the simulator")
	fs.StringVar(&cfg.Dir, "dir", "", "working directory (NATS storage, worker logs, the call log calls.jsonl, stops.txt); default a temporary one")
	fs.BoolVar(&cfg.KeepDir, "keep", false, "keep the temporary directory (worker logs, call log) at the end")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logf = func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(stdout, "ingest-chaos %s\n\n", strings.Join(args, " "))
	rep, err := reliability.Chaos(ctx, cfg)
	rep.WriteTable(stdout)
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("guarantees broken")
	}
	return nil
}
