package main

import (
	"math"
	"strings"
	"testing"
)

func TestSegmentOrder(t *testing.T) {
	tests := []struct {
		run, n     int
		workerOnly bool
		want       string
	}{
		{run: 0, n: 1, want: "WF"},
		{run: 1, n: 1, want: "FW"},
		{run: 0, n: 2, want: "WFFW"},
		{run: 1, n: 2, want: "FWWF"},
		{run: 2, n: 4, want: "WFFWWFFW"},
		{run: 1, n: 3, workerOnly: true, want: "WWW"},
	}
	for _, tt := range tests {
		var got strings.Builder
		w := func() error { got.WriteString("W"); return nil }
		f := func() error { got.WriteString("F"); return nil }
		for _, step := range segmentOrder(tt.run, tt.n, tt.workerOnly, w, f) {
			step()
		}
		if got.String() != tt.want {
			t.Errorf("segmentOrder(run %d, n %d, workerOnly %v) = %s, want %s", tt.run, tt.n, tt.workerOnly, got.String(), tt.want)
		}
	}
}

// TestMerge: the rate of segments of equal commands is all commands over
// all time (1,000 jobs at 1,000/s and 1,000 at 250/s: 2,000 in 5 s), the
// per-job figures their mean.
func TestMerge(t *testing.T) {
	a := result{rate: 1000}
	a.cpu = [3]float64{100, 50, 20}
	a.traffic.outMsgs = 6
	b := result{rate: 250}
	b.cpu = [3]float64{300, 150, 40}
	b.traffic.outMsgs = 8
	m := merge([]result{a, b})
	if math.Abs(m.rate-400) > 1e-9 {
		t.Errorf("rate = %v, want 400", m.rate)
	}
	if m.cpu != [3]float64{200, 100, 30} {
		t.Errorf("cpu = %v, want [200 100 30]", m.cpu)
	}
	if m.traffic.outMsgs != 7 {
		t.Errorf("outMsgs = %v, want 7", m.traffic.outMsgs)
	}
}
