package worker

import (
	"os"
	"runtime/debug"
	"strconv"
)

// DefaultGCPercent is the garbage collector's target (GOGC) of the
// worker's binaries when the GOGC environment variable is not set: 400
// instead of Go's 100. A worker's live heap is small (a few MiB, plus
// ~5 KiB per waiting job), so at Go's default it collects after every few
// MiB allocated, dozens of times a second under load, and every cycle
// scans every goroutine's stack. At 400 the worker's process spends about
// a fifth less CPU per job (BENCHMARKS.md); in exchange the heap may grow
// to five times the live heap, up to GOMEMLIMIT where one is set (the
// Kubernetes deployment sets it).
const DefaultGCPercent = 400

// TuneGC sets GOGC to DefaultGCPercent unless the GOGC environment variable
// is set, and returns the GOGC in effect ("off" or a percentage) and
// whether it set it. It changes the whole process: the worker's binaries
// call it at start; a program that embeds a worker decides for itself.
func TuneGC() (gogc string, set bool) {
	if v := os.Getenv("GOGC"); v != "" {
		return v, false
	}
	debug.SetGCPercent(DefaultGCPercent)
	return strconv.Itoa(DefaultGCPercent), true
}
