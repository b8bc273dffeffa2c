package main

import "runtime/metrics"

// allocs is the heap allocations and GC cycles of the bench's process (the
// worker or the floor, and the bench's own publishing and counting), per
// job: far steadier than CPU time, and what GC time follows.
type allocs struct {
	bytes, objects, gcs float64
}

var allocSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:bytes"},
	{Name: "/gc/heap/allocs:objects"},
	{Name: "/gc/cycles/total:gc-cycles"},
}

func readAllocs() allocs {
	s := make([]metrics.Sample, len(allocSamples))
	copy(s, allocSamples)
	metrics.Read(s)
	return allocs{float64(s[0].Value.Uint64()), float64(s[1].Value.Uint64()), float64(s[2].Value.Uint64())}
}

// perJob is the allocations since a, per job.
func (a allocs) perJob(n int) allocs {
	now := readAllocs()
	f := float64(n)
	return allocs{(now.bytes - a.bytes) / f, (now.objects - a.objects) / f, (now.gcs - a.gcs) / f}
}
