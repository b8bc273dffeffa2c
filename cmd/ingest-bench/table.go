package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// table collects the figures of a run.
type table struct {
	rows [][5]string
}

func (t *table) add(what, measure, value, target, load string) {
	t.rows = append(t.rows, [5]string{what, measure, value, target, load})
}

func (t *table) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tmeasure\tvalue\ttarget\tload (1/5/15 min)")
	prev := ""
	for _, r := range t.rows {
		what := r[0]
		if what == prev {
			what = ""
		}
		prev = r[0]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", what, r[1], r[2], r[3], r[4])
	}
	tw.Flush()
}
