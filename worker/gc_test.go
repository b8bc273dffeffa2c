package worker

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC in the environment the binaries' default is
// set; with it, the environment's choice stays.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		name, env, want string
		set             bool
		percent         int
	}{
		{name: "no GOGC", env: "", want: "400", set: true, percent: DefaultGCPercent},
		{name: "GOGC set", env: "150", want: "150", set: false, percent: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			debug.SetGCPercent(100)
			got, set := TuneGC()
			if got != tc.want || set != tc.set {
				t.Fatalf("TuneGC() = %q, %v; want %q, %v", got, set, tc.want, tc.set)
			}
			if p := debug.SetGCPercent(100); p != tc.percent {
				t.Fatalf("GOGC in effect %d, want %d", p, tc.percent)
			}
		})
	}
}
