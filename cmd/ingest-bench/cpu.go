package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time used so far by process pid (0: self).
func procCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
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

// cpuMeter measures the CPU used by this process, the nats child and the
// simulator child over an interval.
type cpuMeter struct {
	pids  [3]int
	start [3]time.Duration
}

func startCPU(natsPID, simPID int) *cpuMeter {
	m := &cpuMeter{pids: [3]int{0, natsPID, simPID}}
	for i, p := range m.pids {
		m.start[i] = procCPU(p)
	}
	return m
}

// perJob returns the CPU per job of each process since start, formatted
// "bench / nats / sim" in µs.
func (m *cpuMeter) perJob(n int) string {
	var out []string
	for i, p := range m.pids {
		if i == 1 && p == 0 {
			out = append(out, "-") // external server
			continue
		}
		d := procCPU(p) - m.start[i]
		out = append(out, fmt.Sprintf("%.0f", float64(d.Microseconds())/float64(n)))
	}
	return strings.Join(out, " / ")
}
