package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/layout"
)

// throughputMappings returns the mapping of command i and the mappings to
// put in the simulator: the instant mapping every simulator starts with,
// or with -duration one mapping per command (a mapping runs one request at
// a time).
func (e *env) throughputMappings(mode string) (func(int) string, []campaignsim.Mapping) {
	if e.o.duration <= 0 {
		return func(int) string { return "INSTANT" }, nil
	}
	ms := make([]campaignsim.Mapping, e.o.n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("T%s%06d", mode, i),
			Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(e.o.duration)}}
	}
	return func(i int) string { return ms[i].ID }, ms
}

// throughputPhase runs the worker and the floor -runs times, each segment
// of a run on a fresh server of one fsync mode and a fresh simulator, and
// adds the median and range of every figure to t. A warm-up pair of a
// fifth of the commands comes first, not counted: the first jobs of a
// process pay for growing its heap, stacks and connection pools, which
// would fall on whichever side runs first. A run is -segments segments
// of each side, of -n / -segments commands each, in the order
// segmentOrder gives, and each side's figures are of its segments
// together. With -duration only the worker runs: the floor is defined for
// instant ingestions.
func throughputPhase(ctx context.Context, e *env, t *table, mode string, prof *os.File) error {
	load := loadAvg()
	if e.o.duration <= 0 {
		warm := *e
		warm.o.n = max(e.o.n/5, 1)
		mapping, ms := warm.throughputMappings(mode + "warm")
		if err := warm.freshSim(ms); err != nil {
			return err
		}
		if _, err := throughputWorker(ctx, &warm, mode, mapping, nil); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if err := warm.freshSim(ms); err != nil {
			return err
		}
		if _, err := throughputFloor(ctx, &warm, mode, mapping, nil); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var workers, floors []result
	floorProf := prof != nil // the floor's profile, of its first segment
	seg := *e
	seg.o.n = max(e.o.n/max(e.o.segments, 1), 1)
	for run := range max(e.o.runs, 1) {
		mapping, ms := seg.throughputMappings(fmt.Sprintf("%s%d", mode, run))
		var ws, fs []result
		runWorker := func() error {
			if err := seg.freshSim(ms); err != nil {
				return err
			}
			wr, err := throughputWorker(ctx, &seg, mode, mapping, prof)
			prof = nil // the profile is of the first segment
			if err != nil {
				return err
			}
			ws = append(ws, wr)
			return nil
		}
		runFloor := func() error {
			if err := seg.freshSim(ms); err != nil {
				return err
			}
			var fp *os.File
			if floorProf {
				var err error
				if fp, err = os.Create(e.o.cpuProfile + ".floor"); err != nil {
					return err
				}
				floorProf = false
			}
			fr, err := throughputFloor(ctx, &seg, mode, mapping, fp)
			if err != nil {
				return err
			}
			fs = append(fs, fr)
			return nil
		}
		for _, step := range segmentOrder(run, max(e.o.segments, 1), e.o.duration > 0, runWorker, runFloor) {
			if err := step(); err != nil {
				return err
			}
		}
		workers = append(workers, merge(ws))
		fmt.Printf("throughput %s run %d: worker %s\n", mode, run+1, workers[run])
		if len(fs) > 0 {
			floors = append(floors, merge(fs))
			fmt.Printf("throughput %s run %d: floor  %s\n", mode, run+1, floors[run])
			fmt.Printf("throughput %s run %d: worker / floor %.2f (segments: %s)\n", mode, run+1, workers[run].rate/floors[run].rate, segmentRates(ws, fs))
		}
	}
	cmds := fmt.Sprintf("%d cmds", e.o.n)
	if e.o.segments > 1 {
		cmds += fmt.Sprintf(" in %d segments", e.o.segments)
	}
	if e.o.duration > 0 {
		cmds += " of " + e.o.duration.String()
	}
	label := fmt.Sprintf("throughput, fsync %s, %s, %d in flight, runs: %d", mode, cmds, e.o.concurrency, len(workers))
	t.add(label, "worker", spread("%.0f /s", column(workers, result.rateOf)), "≥ 3000 /s", load)
	if len(floors) > 0 {
		t.add(label, "floor (bare loop)", spread("%.0f /s", column(floors, result.rateOf)), "", load)
		ratios := make([]float64, len(floors))
		for i := range floors {
			ratios[i] = workers[i].rate / floors[i].rate
		}
		t.add(label, "worker / floor", spread("%.2f", ratios), "≥ 0.90", loadAvg())
		// On a machine that the processes keep busy, the rates are in the
		// inverse ratio of the CPU each job costs all of them.
		cpuRatios := make([]float64, len(floors))
		for i := range floors {
			cpuRatios[i] = floors[i].cpuAll() / workers[i].cpuAll()
		}
		t.add(label, "floor CPU / worker CPU (all processes)", spread("%.2f", cpuRatios), "≥ 0.90", "-")
	}
	for _, s := range []struct {
		name string
		rs   []result
	}{{"worker", workers}, {"floor", floors}} {
		if len(s.rs) == 0 {
			continue
		}
		t.add(label, s.name+": JetStream writes / job", s.rs[len(s.rs)-1].writes, "", "-")
		t.add(label, s.name+": CPU µs / job (bench / nats / sim)", joinSpreads("%.0f", cpuColumns(s.rs)...), "", "-")
		t.add(label, s.name+": CPU µs / job, all processes", spread("%.0f", column(s.rs, result.cpuAll)), "", "-")
		t.add(label, s.name+": system calls / job (bench / nats / sim)", joinSpreads("%.1f", syscallColumns(s.rs)...), "", "-")
		t.add(label, s.name+": heap allocs / job (objects / KiB / GC cycles)", joinSpreads("%.4g",
			column(s.rs, func(r result) float64 { return r.allocs.objects }),
			column(s.rs, func(r result) float64 { return r.allocs.bytes / 1024 }),
			column(s.rs, func(r result) float64 { return r.allocs.gcs })), "", "-")
		t.add(label, s.name+": NATS msgs / job (in / out)", joinSpreads("%.1f", trafficColumn(s.rs, traffic.msgs)...), "", "-")
		t.add(label, s.name+": NATS bytes / job (in / out)", joinSpreads("%.0f", trafficColumn(s.rs, traffic.bytes)...), "", "-")
	}
	return nil
}

// segmentOrder is the order of a run's segments, n of each side: pairs
// alternating in order (worker then floor, then floor then worker, …; the
// other way round in odd runs), so that a machine that speeds up or slows
// down steadily over a run weighs on both sides alike (with n = 2: W F F
// W), and neither side always inherits the process and machine state the
// other left. workerOnly: the worker's n segments.
func segmentOrder(run, n int, workerOnly bool, worker, floor func() error) []func() error {
	var steps []func() error
	for k := range n {
		if workerOnly {
			steps = append(steps, worker)
			continue
		}
		if (k+run)%2 == 0 {
			steps = append(steps, worker, floor)
		} else {
			steps = append(steps, floor, worker)
		}
	}
	return steps
}

// merge is the figures of segments of equal commands taken together: the
// rate of all their commands over all their time, the mean of the figures
// per job.
func merge(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	var m result
	var secondsPerJob float64
	f := float64(len(rs))
	for _, r := range rs {
		secondsPerJob += 1 / r.rate
		for p := range 3 {
			m.cpu[p] += r.cpu[p] / f
			m.syscalls[p] += r.syscalls[p] / f
		}
		m.traffic.inMsgs += r.traffic.inMsgs / f
		m.traffic.outMsgs += r.traffic.outMsgs / f
		m.traffic.inBytes += r.traffic.inBytes / f
		m.traffic.outBytes += r.traffic.outBytes / f
		m.allocs.objects += r.allocs.objects / f
		m.allocs.bytes += r.allocs.bytes / f
		m.allocs.gcs += r.allocs.gcs / f
	}
	m.rate = f / secondsPerJob
	m.writes = rs[len(rs)-1].writes
	return m
}

// segmentRates lists each segment's worker / floor ratio, in order.
func segmentRates(ws, fs []result) string {
	var out []string
	for i := range min(len(ws), len(fs)) {
		out = append(out, fmt.Sprintf("%.2f", ws[i].rate/fs[i].rate))
	}
	return strings.Join(out, ", ")
}

// result is one throughput run.
type result struct {
	rate float64
	// cpu is the CPU per job of each process (procBench, procNATS,
	// procSim), in µs.
	cpu [3]float64
	// syscalls is the read and write system calls per job of each process.
	syscalls [3]float64
	// traffic is the NATS traffic per job, when the server's /varz was read.
	traffic traffic
	// writes is the synchronous JetStream writes per job, by stream.
	writes string
	// allocs is the bench process's heap allocations per job.
	allocs allocs
}

func (r result) rateOf() float64 { return r.rate }

// cpuAll is the CPU per job of every process (NaN with an external server).
func (r result) cpuAll() float64 { return r.cpu[procBench] + r.cpu[procNATS] + r.cpu[procSim] }

func (r result) String() string {
	return fmt.Sprintf("%.0f /s, CPU µs/job %.0f / %.0f / %.0f, syscalls/job %.1f / %.1f / %.1f, allocs/job %.0f (%.1f KiB, %.4f GCs), NATS msgs/job %.1f / %.1f, bytes/job %.0f / %.0f, writes/job %s",
		r.rate, r.cpu[procBench], r.cpu[procNATS], r.cpu[procSim], r.syscalls[procBench], r.syscalls[procNATS], r.syscalls[procSim], r.allocs.objects, r.allocs.bytes/1024, r.allocs.gcs,
		r.traffic.inMsgs, r.traffic.outMsgs, r.traffic.inBytes, r.traffic.outBytes, r.writes)
}

func (tr traffic) msgs() [2]float64  { return [2]float64{tr.inMsgs, tr.outMsgs} }
func (tr traffic) bytes() [2]float64 { return [2]float64{tr.inBytes, tr.outBytes} }

func cpuColumns(rs []result) [][]float64 {
	var cols [][]float64
	for p := range 3 {
		cols = append(cols, column(rs, func(r result) float64 { return r.cpu[p] }))
	}
	return cols
}

func syscallColumns(rs []result) [][]float64 {
	var cols [][]float64
	for p := range 3 {
		cols = append(cols, column(rs, func(r result) float64 { return r.syscalls[p] }))
	}
	return cols
}

func trafficColumn(rs []result, f func(traffic) [2]float64) [][]float64 {
	var cols [][]float64
	for i := range 2 {
		cols = append(cols, column(rs, func(r result) float64 { return f(r.traffic)[i] }))
	}
	return cols
}

// meters measure one run's CPU and NATS traffic.
type meters struct {
	cpu     *cpuMeter
	traffic *trafficMeter
	allocs  allocs
}

func startMeters(e *env, ns *natsRun) meters {
	return meters{cpu: startCPU(ns.pid, e.sim.c.cmd.Process.Pid), traffic: startTraffic(ns.monitor), allocs: readAllocs()}
}

// result returns the run's figures for n jobs that took from start to end
// (the CPU and traffic are counted until now).
func (m meters) result(n int, start, end time.Time) result {
	r := result{rate: float64(n) / end.Sub(start).Seconds(), cpu: m.cpu.perJob(n), syscalls: m.cpu.syscallsPerJob(n), allocs: m.allocs.perJob(n)}
	var ok bool
	if r.traffic, ok = m.traffic.perJob(n); !ok {
		r.traffic = traffic{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	return r
}

// writesPerJob reads how many messages the streams took per job: the
// event stream, the job state bucket (each put is one message) and the
// command stream.
func writesPerJob(ctx context.Context, js jetstream.JetStream, n int) string {
	var out []string
	for _, s := range []struct{ name, label string }{
		{layout.CommandStream, "commands"}, {layout.EventStream, "events"}, {"KV_INGEST_JOBS", "KV"},
	} {
		st, err := js.Stream(ctx, s.name)
		if err != nil {
			if s.label != "KV" {
				out = append(out, s.label+" ?")
			}
			continue
		}
		out = append(out, fmt.Sprintf("%s %.2f", s.label, float64(st.CachedInfo().State.LastSeq)/float64(n)))
	}
	return strings.Join(out, ", ")
}

// throughputWorker publishes n commands and measures commands/s from the
// first publish to the last terminal event, the worker running in process.
func throughputWorker(ctx context.Context, e *env, mode string, mapping func(int) string, prof *os.File) (result, error) {
	ns, err := e.natsServer(mode)
	if err != nil {
		return result{}, err
	}
	defer ns.stop()
	w, err := startWorker(ctx, e.workerConfig(ns.url, e.o.concurrency))
	if err != nil {
		return result{}, err
	}
	defer w.stop()
	nc, js, err := connect(ns.url)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	tc, err := countTerminal(nc, e.o.n, nil)
	if err != nil {
		return result{}, err
	}
	stopProf, err := startCPUProfile(prof)
	if err != nil {
		return result{}, err
	}
	defer stopProf()
	m := startMeters(e, ns)
	start := time.Now()
	if err := publishAll(ctx, js, e.o.n, "tp", mapping); err != nil {
		return result{}, err
	}
	if err := tc.wait(ctx, e.o.timeout); err != nil {
		return result{}, err
	}
	time.Sleep(200 * time.Millisecond) // the last done records and acks
	r := m.result(e.o.n, start, tc.last)
	r.writes = writesPerJob(ctx, js, e.o.n)
	return r, nil
}
