// Package deploy_test checks the operations kit against the worker.
package deploy_test

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/campaign-ingest/metrics"
)

// TestMetricNamesExist: every metric the dashboard and the alert rules use
// (deploy/metricnames.txt, made by deploy/list-metrics.sh) is registered by
// the worker.
func TestMetricNamesExist(t *testing.T) {
	reg := metrics.NewRegistry()
	names := &describer{Registerer: reg, names: map[string]bool{}}
	metrics.New(names, "test")
	// Vectors without children are not gathered: their descriptions are.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names.names[mf.GetName()] = true
	}
	f, err := os.Open("metricnames.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		n++
		if !names.names[name] {
			t.Errorf("%s is used by the dashboard or the rules but the worker does not register it", name)
		}
	}
	if n == 0 {
		t.Error("metricnames.txt is empty")
	}
}

// describer records the names of the metrics registered through it.
type describer struct {
	prometheus.Registerer
	names map[string]bool
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	d.Registerer.MustRegister(cs...)
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for desc := range ch {
			if m := fqNameRE.FindStringSubmatch(desc.String()); m != nil {
				d.names[m[1]] = true
			}
		}
	}
}
