package main

import (
	"bufio"
	"context"
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
func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// memoryPhase runs the worker with memJobs jobs waiting on one-hour
// ingestions (one mapping each, as a mapping runs one request at a time)
// and reports the heap and RSS growth per job.
func memoryPhase(ctx context.Context, e *env, t *table) error {
	n := e.o.memJobs
	ms := make([]campaignsim.Mapping, n)
	for i := range ms {
		ms[i] = campaignsim.Mapping{Org: benchOrg, ID: fmt.Sprintf("LONG%05d", i),
			Script: campaignsim.Script{Duration: campaignsim.Duration(time.Hour)}}
	}
	if err := e.putMappings(ms); err != nil {
		return err
	}
	if err := e.resetCalls(); err != nil {
		return err
	}
	ns, err := e.natsServer("lazy")
	if err != nil {
		return err
	}
	defer ns.stop()
	url := ns.url
	nc, js, err := connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := startWorker(ctx, e.workerConfig(url, n))
	if err != nil {
		return err
	}
	defer w.stop()
	time.Sleep(2 * time.Second) // the consumer is pulling, nothing in flight
	before := sampleMem()

	var triggered atomic.Int64
	all := make(chan struct{})
	sub, err := nc.Subscribe(layout.EventPrefix+benchOrg+".*."+string(ingest.EventTriggered), func(*nats.Msg) {
		if triggered.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := publishAll(ctx, js, n, "mem", func(i int) string { return ms[i].ID }); err != nil {
		return err
	}
	select {
	case <-all:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.o.timeout):
		return fmt.Errorf("only %d of %d jobs triggered", triggered.Load(), n)
	}
	// The first status check runs alongside the triggered event; let every
	// job make it and reach its first wait.
	if err := e.waitCalls(ctx, "status", n); err != nil {
		return err
	}
	time.Sleep(time.Second)
	after := sampleMem()
	if e.o.memProfile != "" {
		if err := writeHeapProfile(e.o.memProfile); err != nil {
			return err
		}
	}
	load := loadAvg()
	label := fmt.Sprintf("memory, %d jobs waiting on 1h ingestions", n)
	perJob := func(a, b uint64) string {
		return fmt.Sprintf("%.1f KiB", (float64(a)-float64(b))/float64(n)/1024)
	}
	t.add(label, "heap in use / job", perJob(after.heapInuse, before.heapInuse), "≤ 16 KiB", load)
	t.add(label, "stacks in use / job", perJob(after.stackInuse, before.stackInuse), "", load)
	t.add(label, "RSS / job", perJob(after.rss, before.rss), "≤ 16 KiB", load)
	t.add(label, "goroutines / job", fmt.Sprintf("%.2f", float64(after.goroutines-before.goroutines)/float64(n)), "", load)
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
