package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// putMappings creates mappings in the simulator.
func (e *env) putMappings(ms []campaignsim.Mapping) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	resp, err := e.hc.Post(e.sim.url+"/_sim/mappings", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("put mappings: %s", resp.Status)
	}
	return nil
}

// calls reads the simulator's call log of one operation.
func (e *env) calls(op string) ([]campaignsim.Call, error) {
	return e.callsOf(url.Values{"op": {op}})
}

// callsOf reads the simulator's call log, filtered by q (op, org,
// mapping, requestId).
func (e *env) callsOf(q url.Values) ([]campaignsim.Call, error) {
	resp, err := e.hc.Get(e.sim.url + "/_sim/calls?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cs []campaignsim.Call
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		return nil, fmt.Errorf("call log: %w", err)
	}
	return cs, nil
}

// addClients adds OAuth clients to the simulator.
func (e *env) addClients(cs []campaignsim.Client) error {
	b, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	resp, err := e.hc.Post(e.sim.url+"/_sim/clients", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("add clients: %s", resp.Status)
	}
	return nil
}

func (e *env) resetCalls() error {
	req, _ := http.NewRequest(http.MethodDelete, e.sim.url+"/_sim/calls", nil)
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// token gets one access token from the simulator's IMS endpoint.
func (e *env) token() (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {campaignsim.DemoClientID}, "client_secret": {campaignsim.DemoClientSecret}}
	resp, err := e.hc.PostForm(e.sim.url+"/ims/token/v3", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("token: %s %v", resp.Status, err)
	}
	return t.AccessToken, nil
}

// waitChecked waits until the call log holds a status call of n different
// mappings: every job made its first check (a job that made its second
// counts once). The log is decoded one call at a time, so that polling it
// adds little to the bench process's memory while it is measured.
func (e *env) waitChecked(ctx context.Context, n int) error {
	deadline := time.Now().Add(e.o.timeout)
	seen := make(map[string]bool, n)
	for {
		if err := e.checkedMappings(seen); err != nil {
			return err
		}
		if len(seen) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status calls of %d mappings of %d", len(seen), n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkedMappings adds the mappings of the call log's status calls to seen.
func (e *env) checkedMappings(seen map[string]bool) error {
	resp, err := e.hc.Get(e.sim.url + "/_sim/calls?" + url.Values{"op": {"status"}}.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	d := json.NewDecoder(resp.Body)
	if _, err := d.Token(); err != nil { // the array's [
		return fmt.Errorf("call log: %w", err)
	}
	for d.More() {
		var c struct {
			Mapping string `json:"mappingId"`
		}
		if err := d.Decode(&c); err != nil {
			return fmt.Errorf("call log: %w", err)
		}
		seen[c.Mapping] = true
	}
	return nil
}
