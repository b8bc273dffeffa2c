package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
)

// memSample is the process's memory after a GC.
type memSample struct {
	heapInuse  uint64
	stackInuse uint64
	rss        uint64
	goroutines int
}

// sampleMem collects garbage three times first: each GC also halves the
// stacks of goroutines that use less than a quarter of theirs, as a
// long-running worker's periodic GCs do.
// gcs is how many collections run before a sample.
const gcs = 3

func sampleMem() memSample {
	for range gcs {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heapInuse: ms.HeapInuse, stackInuse: ms.StackInuse, rss: vmRSS(), goroutines: runtime.NumGoroutine()}
}

// vmRSS is VmRSS of /proc/self/status in bytes.
func vmRSS() uint64 { return procStatus("VmRSS:") }

// procStatus is the field of /proc/self/status (in kB there) in bytes; 0
// when it cannot be read.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// memoryPhase runs the worker with memJobs jobs waiting on one-hour
// ingestions (one mapping each, as a mapping runs one request at a time)
// and reports the heap and RSS growth per job: at the peak of the burst
// (every command published at once, until each job has made its first
// status check) and settled (after a GC). Then the same for the floor, on
// a fresh server: a goroutine per job that sleeps between status checks,
// with the worker's HTTP connection limit.
func memoryPhase(ctx context.Context, e *env, t *table) error {
	n := e.o.memJobs
	label := fmt.Sprintf("memory, %d jobs waiting on 1h ingestions", n)
	load := loadAvg()
	wm, err := memoryRun(ctx, e, "LONG", func(url string) (func() error, error) {
		w, err := startWorker(ctx, e.workerConfig(url, n))
		if err != nil {
			return nil, err
		}
		return func() error { _ = w.stop(); return nil }, nil
	}, func() error {
		if e.o.memProfile == "" {
			return nil
		}
		return writeHeapProfile(e.o.memProfile)
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	perJob := func(a, b uint64) string {
		return fmt.Sprintf("%.1f KiB", (float64(a)-float64(b))/float64(n)/1024)
	}
	t.add(label, "heap in use / job", perJob(wm.after.heapInuse, wm.before.heapInuse), "≤ 16 KiB", load)
	t.add(label, "stacks in use / job", perJob(wm.after.stackInuse, wm.before.stackInuse), "", load)
	t.add(label, "RSS / job", perJob(wm.after.rss, wm.before.rss), "≤ 16 KiB", load)
	t.add(label, "goroutines / job", fmt.Sprintf("%.2f", float64(wm.after.goroutines-wm.before.goroutines)/float64(n)), "", load)
	fload := loadAvg()
	fm, err := memoryRun(ctx, e, "LONGF", func(url string) (func() error, error) {
		return startFloor(ctx, e, url, longFloor(n))
	}, func() error { return nil })
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	t.add(label, "burst peak RSS / job: worker, floor", perJob(wm.peak, wm.before.rss)+", "+perJob(fm.peak, fm.before.rss), "worker < floor", fload)
	t.add(label, "settled RSS / job: worker, floor", perJob(wm.after.rss, wm.before.rss)+", "+perJob(fm.after.rss, fm.before.rss), "", fload)
	return nil
}

// memoryTimes is a memory run's samples: before the burst, its peak RSS
// (VmHWM), and settled.
type memoryTimes struct {
	before, after memSample
	peak          uint64
}

// memoryRun starts a fresh server (lazy fsync), runs start on it (the
// worker or the floor), publishes e.o.memJobs commands at once on mappings
// prefix<i> of one-hour ingestions, and samples the process's memory once
// every job has made its first status check; atPeak runs then. An error of
// stop is the run's.
func memoryRun(ctx context.Context, e *env, prefix string, start func(url string) (stop func() error, err error), atPeak func() error) (mt memoryTimes, err error) {
	n := e.o.memJobs
	ms := make([]campaignsim.Mapping, n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("%s%05d", prefix, i),
			Script: campaignsim.Script{Duration: campaignsim.Duration(time.Hour)}}
	}
	if err := e.putMappings(ms); err != nil {
		return memoryTimes{}, err
	}
	if err := e.resetCalls(); err != nil {
		return memoryTimes{}, err
	}
	ns, err := e.natsServer("lazy")
	if err != nil {
		return memoryTimes{}, err
	}
	defer ns.stop()
	nc, js, err := connect(ns.url)
	if err != nil {
		return memoryTimes{}, err
	}
	defer nc.Close()
	stop, err := start(ns.url)
	if err != nil {
		return memoryTimes{}, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	time.Sleep(2 * time.Second) // the consumer is pulling, nothing in flight
	mt.before = sampleMem()

	var triggered atomic.Int64
	all := make(chan struct{})
	sub, err := nc.Subscribe(layout.EventPrefix+benchOrg+".*."+string(ingest.EventTriggered), func(*nats.Msg) {
		if triggered.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		return memoryTimes{}, err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return memoryTimes{}, err
	}
	if err := nc.Flush(); err != nil {
		return memoryTimes{}, err
	}
	if err := resetPeak(); err != nil {
		return memoryTimes{}, err
	}
	if err := publishAll(ctx, js, n, strings.ToLower(prefix), func(i int) string { return ms[i].ID }); err != nil {
		return memoryTimes{}, err
	}
	select {
	case <-all:
	case <-ctx.Done():
		return memoryTimes{}, ctx.Err()
	case <-time.After(e.o.timeout):
		return memoryTimes{}, fmt.Errorf("only %d of %d jobs triggered", triggered.Load(), n)
	}
	// The first status check runs alongside the triggered event; let every
	// job make it and reach its first wait. Counted by mapping: the
	// first jobs may make their second check before the last make their
	// first.
	if err := e.waitChecked(ctx, n); err != nil {
		return memoryTimes{}, err
	}
	mt.peak = procStatus("VmHWM:")
	time.Sleep(time.Second)
	mt.after = sampleMem()
	if err := atPeak(); err != nil {
		return memoryTimes{}, err
	}
	return mt, nil
}

// resetPeak resets the process's peak RSS (VmHWM) to its current RSS.
func resetPeak() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}
