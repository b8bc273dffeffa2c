package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// The fair-share scenario's organizations: acme floods, globex comes after.
const (
	floodOrg      = "acme"
	floodShare    = 20 // acme's maxInFlight
	lateOrg       = "globex"
	fairInFlight  = 100 // INGEST_MAX_IN_FLIGHT
	floodDuration = 30 * time.Second
)

// fairSharePhase measures what the organizations' shares are for: with
// acme's backlog of -fair-backlog commands of 30 s ingestions queued in
// front of it, how long one globex command waits for its POST. Per run,
// on a fresh server (fsync always): the worker runs with
// INGEST_MAX_IN_FLIGHT=100 and an organizations file giving acme
// maxInFlight 20 (globex: no share of its own), each organization on its
// own credential; acme's commands (one mapping each) are published and
// acknowledged, then one globex command. The wait is from the bench's clock
// just before globex's publish to the simulator's call-log time of
// globex's POST. A second variant ("cold") publishes everything before the
// worker starts, so that the worker must read through the whole backlog.
func fairSharePhase(ctx context.Context, e *env, t *table) error {
	orgsFile, err := e.fairShareOrgs()
	if err != nil {
		return err
	}
	for _, cold := range []bool{false, true} {
		load := loadAvg()
		var waits, fromStart, before []float64
		for run := range max(e.o.runs, 1) {
			r, err := fairShareRun(ctx, e, orgsFile, fmt.Sprintf("%d%c", run, "wc"[b2i(cold)]), cold)
			if err != nil {
				return err
			}
			fmt.Printf("fair share (cold %v) run %d: globex publish → POST %s (worker start → POST %s), acme POSTs before it %d\n",
				cold, run+1, r.wait.Round(time.Millisecond), r.fromStart.Round(time.Millisecond), r.floodPOSTs)
			waits = append(waits, float64(r.wait.Microseconds())/1000)
			fromStart = append(fromStart, float64(r.fromStart.Microseconds())/1000)
			before = append(before, float64(r.floodPOSTs))
		}
		label := fmt.Sprintf("fair share, fsync always, %d acme cmds of %s queued, then 1 globex; runs: %d", e.o.fairBacklog, floodDuration, len(waits))
		what := "worker running"
		if cold {
			label += ", worker started after"
			what = "worker started after both"
		}
		t.add(label, "globex publish → POST ("+what+")", spread("%.0f ms", waits), "", load)
		if cold {
			t.add(label, "worker start → globex POST", spread("%.0f ms", fromStart), "", "-")
		}
		t.add(label, "acme POSTs before globex's", spread("%.0f", before), fmt.Sprintf("= %d", floodShare), "-")
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fairResult is one fair-share run.
type fairResult struct {
	wait       time.Duration // globex's publish → its POST
	fromStart  time.Duration // the worker's start → globex's POST
	floodPOSTs int           // acme's POSTs before globex's
}

// fairShareOrgs gives each organization a credential of its own in the
// simulator and writes the organizations file (JSON is YAML).
func (e *env) fairShareOrgs() (string, error) {
	type org struct {
		ClientID   string `json:"imsClientId"`
		SecretFile string `json:"imsClientSecretFile"`
		APIKey     string `json:"apiKey"`
		Share      int    `json:"maxInFlight,omitempty"`
	}
	file := struct {
		Organizations map[string]org `json:"organizations"`
	}{Organizations: map[string]org{}}
	var clients []campaignsim.Client
	for _, o := range []struct {
		name  string
		share int
	}{{floodOrg, floodShare}, {lateOrg, 0}} {
		c := campaignsim.Client{ID: o.name + "-client", Secret: o.name + "-secret", APIKey: o.name + "-key", SQLRole: true, Orgs: []string{o.name}}
		clients = append(clients, c)
		secret := filepath.Join(e.tmp, o.name+".secret")
		if err := os.WriteFile(secret, []byte(c.Secret), 0o600); err != nil {
			return "", err
		}
		file.Organizations[o.name] = org{ClientID: c.ID, SecretFile: secret, APIKey: c.APIKey, Share: o.share}
	}
	if err := e.addClients(clients); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.tmp, "orgs.yaml")
	return path, os.WriteFile(path, b, 0o600)
}

// fairShareRun runs the scenario once; tag makes its mappings and ids
// unique.
func fairShareRun(ctx context.Context, e *env, orgsFile, tag string, cold bool) (fairResult, error) {
	var r fairResult
	n := e.o.fairBacklog
	ms := make([]campaignsim.Mapping, n+1)
	for i := range n {
		ms[i] = campaignsim.Mapping{Org: floodOrg, ID: fmt.Sprintf("FS%sA%05d", tag, i),
			Script: campaignsim.Script{Records: 1, Duration: campaignsim.Duration(floodDuration)}}
	}
	late := campaignsim.Mapping{Org: lateOrg, ID: "FS" + tag + "G", Script: campaignsim.Script{Records: 1}}
	ms[n] = late
	if err := e.putMappings(ms); err != nil {
		return r, err
	}
	ns, err := e.natsServer("always")
	if err != nil {
		return r, err
	}
	defer ns.stop()
	cfg := e.workerConfig(ns.url, fairInFlight)
	cfg.IMS.ClientID, cfg.IMS.ClientSecret = "", "" // every organization on its own credential
	cfg.OrgsFile = orgsFile
	var w *runningWorker
	var started time.Time
	startW := func() error {
		started = time.Now()
		w, err = startWorker(ctx, cfg)
		return err
	}
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	if !cold {
		if err := startW(); err != nil {
			return r, err
		}
	}
	nc, js, err := connect(ns.url)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	if cold {
		// The worker creates the streams; without it, create them first.
		if err := startW(); err != nil {
			return r, err
		}
		w.stop()
		w = nil
	}
	if err := publishOrg(ctx, js, floodOrg, n, "fs"+tag, func(i int) string { return ms[i].ID }); err != nil {
		return r, err
	}
	published := time.Now()
	if _, err := js.PublishMsg(ctx, commandMsg(lateOrg, "fs"+tag+"-late", late.ID)); err != nil {
		return r, err
	}
	if cold {
		if err := startW(); err != nil {
			return r, err
		}
	}
	post, err := e.waitPOST(ctx, lateOrg, late.ID)
	if err != nil {
		return r, err
	}
	r.wait, r.fromStart = post.Time.Sub(published), post.Time.Sub(started)
	acme, err := e.callsOf(url.Values{"op": {campaign.OpTrigger}, "org": {floodOrg}})
	if err != nil {
		return r, err
	}
	for _, c := range acme {
		if c.Time.Before(post.Time) && strings.HasPrefix(c.Mapping, "FS"+tag+"A") {
			r.floodPOSTs++
		}
	}
	return r, nil
}

// waitPOST waits for the first POST of org's mapping in the call log.
func (e *env) waitPOST(ctx context.Context, org, mapping string) (campaignsim.Call, error) {
	deadline := time.Now().Add(e.o.timeout)
	q := url.Values{"op": {campaign.OpTrigger}, "org": {org}, "mapping": {mapping}}
	for {
		cs, err := e.callsOf(q)
		if err != nil {
			return campaignsim.Call{}, err
		}
		if len(cs) > 0 {
			return cs[0], nil
		}
		if time.Now().After(deadline) {
			return campaignsim.Call{}, fmt.Errorf("no POST of %s/%s within %s", org, mapping, e.o.timeout)
		}
		select {
		case <-ctx.Done():
			return campaignsim.Call{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
