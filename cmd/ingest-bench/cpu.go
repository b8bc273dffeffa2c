package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time used so far by process pid (0: self).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// procPath is the path of file in /proc of process pid (0: self).
func procPath(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return fmt.Sprintf("/proc/%d/%s", pid, file)
}

// procSyscalls is the read and write system calls made so far by process
// pid (0: self), from /proc/<pid>/io (syscr + syscw); 0 when unreadable.
func procSyscalls(pid int) int64 {
	b, err := os.ReadFile(procPath(pid, "io"))
	if err != nil {
		return 0
	}
	var n int64
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if k == "syscr" || k == "syscw" {
			c, _ := strconv.ParseInt(v, 10, 64)
			n += c
		}
	}
	return n
}

// The processes a cpuMeter measures, in its order.
const (
	procBench = iota // this process: the worker, or the floor
	procNATS         // the nats child
	procSim          // the simulator child
)

// cpuMeter measures the CPU used by this process, the nats child and the
// simulator child over an interval.
type cpuMeter struct {
	pids     [3]int
	start    [3]time.Duration
	syscalls [3]int64
}

func startCPU(natsPID, simPID int) *cpuMeter {
	m := &cpuMeter{pids: [3]int{procBench: 0, procNATS: natsPID, procSim: simPID}}
	for i, p := range m.pids {
		m.start[i] = procCPU(p)
		m.syscalls[i] = procSyscalls(p)
	}
	return m
}

// perJob returns the CPU per job of each process since start, in µs; NaN
// for an external server.
func (m *cpuMeter) perJob(n int) [3]float64 {
	return m.each(func(i, p int) float64 { return float64((procCPU(p) - m.start[i]).Microseconds()) / float64(n) })
}

// syscallsPerJob returns the read and write system calls per job of each
// process since start; NaN for an external server. Fewer calls per job
// mean more messages and requests coalesced per call.
func (m *cpuMeter) syscallsPerJob(n int) [3]float64 {
	return m.each(func(i, p int) float64 { return float64(procSyscalls(p)-m.syscalls[i]) / float64(n) })
}

// each returns f of each measured process (its index and pid), NaN for an
// external server.
func (m *cpuMeter) each(f func(i, pid int) float64) [3]float64 {
	var out [3]float64
	for i, p := range m.pids {
		if i == procNATS && p == 0 {
			out[i] = math.NaN()
			continue
		}
		out[i] = f(i, p)
	}
	return out
}
