package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// spread writes the figures of several runs as "median [min–max]" with
// format, or the one figure of a single run; "-" when unknown (NaN).
func spread(format string, xs []float64) string {
	xs = slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(xs) == 0 {
		return "-"
	}
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	if len(xs) == 1 {
		return fmt.Sprintf(format, med)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", med, xs[0], xs[len(xs)-1])
}

// column returns f of every run.
func column[T any](runs []T, f func(T) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// joinSpreads joins the spreads of several columns with " / ".
func joinSpreads(format string, cols ...[]float64) string {
	var out []string
	for _, c := range cols {
		out = append(out, spread(format, c))
	}
	return strings.Join(out, " / ")
}
