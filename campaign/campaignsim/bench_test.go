package campaignsim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkHandler measures the handler alone: one POST and one GET per
// iteration, spread over 64 mappings, in parallel.
func BenchmarkHandler(b *testing.B) {
	sim := New(Options{})
	const mappings = 64
	for i := range mappings {
		sim.PutMapping(Mapping{Org: "acme", ID: fmt.Sprintf("XDM%d", i), Script: Script{Records: 15}})
	}
	tok, _ := sim.IssueToken(DemoClientID)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := fmt.Sprintf("XDM%d", n.Add(1)%mappings)
			post := httptest.NewRequest(http.MethodPost, ingestPath("acme", m), nil)
			post.Header = authHeader(DemoClientID, tok)
			w := httptest.NewRecorder()
			sim.ServeHTTP(w, post)
			get := httptest.NewRequest(http.MethodGet, ingestPath("acme", m)+"?requestId=3520", nil)
			get.Header = post.Header
			sim.ServeHTTP(httptest.NewRecorder(), get)
		}
	})
}

// BenchmarkHTTP measures status calls over loopback HTTP.
func BenchmarkHTTP(b *testing.B) {
	sim := New(Options{})
	sim.PutMapping(Mapping{Org: "acme", ID: "XDM44", Script: Script{Outcome: OutcomeNever}})
	ts := httptest.NewServer(sim)
	b.Cleanup(ts.Close)
	tok, _ := sim.IssueToken(DemoClientID)
	hdr := authHeader(DemoClientID, tok)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+ingestPath("acme", "XDM44"), nil)
	req.Header = hdr
	resp, err := ts.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	url := ts.URL + ingestPath("acme", "XDM44") + "?requestId=3520"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header = hdr
			resp, err := ts.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
}
