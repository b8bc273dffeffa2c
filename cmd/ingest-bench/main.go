// Command ingest-bench measures the worker against a real nats-server and the
// Campaign simulator over loopback HTTP: throughput against a bare-loop
// floor (fsync always and lazy), memory per in-flight job, status polls and
// detection lag of the poll schedule, and the latency the worker adds at a
// fixed rate. BENCHMARKS.md records its figures.
//
// The nats-server (natsembed) and the simulator run in child processes (this
// binary re-executed with -role), so that the CPU and heap profiles and the
// memory figures are the worker's own; -nats points at an external server
// instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/acme/campaign-ingest/worker"
)

// options are the command line.
type options struct {
	role         string
	store        string
	lazy         bool
	natsURL      string
	natsMonitor  string
	phases       string
	fsync        string
	latencyFsync string
	n            int
	runs         int
	segments     int
	coalesce     bool
	fairShare    bool
	fairBacklog  int
	concurrency  int
	duration     time.Duration
	memJobs      int
	rate         int
	latencyFor   time.Duration
	cpuProfile   string
	memProfile   string
	timeout      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "", "internal: run as a child (nats or sim)")
	flag.StringVar(&o.store, "store", "", "internal: the nats child's storage")
	flag.BoolVar(&o.lazy, "lazy", false, "internal: the nats child does not fsync every write")
	flag.StringVar(&o.natsURL, "nats", "", "external NATS URL (default: a natsembed child per run, fresh storage)")
	flag.StringVar(&o.natsMonitor, "nats-monitor", "", "monitoring URL of the external server (http://host:8222), for NATS messages and bytes per job")
	flag.StringVar(&o.phases, "phases", "throughput,memory,polls,latency", "phases to run, comma-separated")
	flag.StringVar(&o.fsync, "fsync", "always,lazy", "fsync modes of the throughput phase (always, lazy); ignored with -nats")
	flag.StringVar(&o.latencyFsync, "latency-fsync", "lazy,always", "fsync modes of the latency phase; ignored with -nats")
	flag.IntVar(&o.n, "n", 20000, "commands per throughput run")
	flag.IntVar(&o.runs, "runs", 1, "throughput runs per fsync mode (worker and floor alternately); the table gives the median [min–max]")
	flag.IntVar(&o.segments, "segments", 2, "segments of each side per throughput run, of -n / -segments commands each, in pairs of alternating order (2: worker, floor, floor, worker)")
	flag.BoolVar(&o.coalesce, "coalesce", worker.DefaultConfig().NATS.CoalesceWrites, "the worker's INGEST_NATS_COALESCE_WRITES")
	flag.BoolVar(&o.fairShare, "fairshare", false, "run only the fair-share scenario (-phases fairshare): acme's backlog, then one globex command; -runs times")
	flag.IntVar(&o.fairBacklog, "fair-backlog", 5000, "acme commands (30 s ingestions) queued in front of globex's in the fair-share scenario")
	flag.IntVar(&o.concurrency, "c", 100, "jobs in flight (INGEST_MAX_IN_FLIGHT) of the throughput and latency runs, and the floor's goroutines")
	flag.DurationVar(&o.duration, "duration", 0, "ingestion duration of the throughput runs (0 = instant)")
	flag.IntVar(&o.memJobs, "mem-jobs", 10000, "jobs waiting on long ingestions in the memory phase")
	flag.IntVar(&o.rate, "rate", 500, "commands per second of the latency phase")
	flag.DurationVar(&o.latencyFor, "latency-for", 10*time.Second, "length of the latency phase")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the first worker throughput segment (of the first -fsync mode) to this file, and of the floor's first segment to this file + \".floor\"; the allocations of the segment go to this file + \".allocs\" (and \".allocs0\", its base for pprof -diff_base)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile taken with the memory phase's jobs in flight to this file")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up a run after this long")
	flag.Parse()
	if o.fairShare {
		o.phases = "fairshare"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "nats":
		err = serveNATS(ctx, o.store, o.lazy)
	case "sim":
		err = serveSim(ctx)
	case "":
		// The worker's and the floor's process runs with the worker
		// binary's GC target (the children keep Go's).
		worker.TuneGC()
		err = run(ctx, o)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	phases := map[string]bool{}
	for _, p := range strings.Split(o.phases, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	env, err := newEnv(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()
	t := &table{}
	fmt.Printf("ingest-bench: GOMAXPROCS=%d, GOGC=%d, %s, load %s\n", runtime.GOMAXPROCS(0), gcPercent(), runtime.Version(), loadAvg())

	if phases["polls"] {
		pollsPhase(t)
	}
	if phases["throughput"] {
		modes := strings.Split(o.fsync, ",")
		if o.natsURL != "" {
			modes = []string{"external"}
		}
		for i, mode := range modes {
			var prof *os.File
			if o.cpuProfile != "" && i == 0 {
				if prof, err = os.Create(o.cpuProfile); err != nil {
					return err
				}
			}
			if err := throughputPhase(ctx, env, t, strings.TrimSpace(mode), prof); err != nil {
				return fmt.Errorf("throughput (%s): %w", mode, err)
			}
		}
	}
	if phases["memory"] {
		if err := memoryPhase(ctx, env, t); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	if phases["latency"] {
		modes := strings.Split(o.latencyFsync, ",")
		if o.natsURL != "" {
			modes = []string{"external"}
		}
		for _, mode := range modes {
			if err := latencyPhase(ctx, env, t, strings.TrimSpace(mode)); err != nil {
				return fmt.Errorf("latency (%s): %w", mode, err)
			}
		}
	}
	if phases["fairshare"] {
		if err := fairSharePhase(ctx, env, t); err != nil {
			return fmt.Errorf("fair share: %w", err)
		}
	}
	t.print(os.Stdout)
	return nil
}

// startCPUProfile starts profiling into f (nil: no profile) and returns the
// function that stops it.
func startCPUProfile(f *os.File) (func(), error) {
	if f == nil {
		return func() {}, nil
	}
	heap := func(name string) {
		runtime.GC() // the profile is as of the last GC
		if h, err := os.Create(name); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(h, 0)
			h.Close()
		}
	}
	heap(f.Name() + ".allocs0")
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close(); heap(f.Name() + ".allocs") }, nil
}

// loadAvg is the first three fields of /proc/loadavg (what uptime prints).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// gcPercent is the GOGC in effect (-1: off).
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}
