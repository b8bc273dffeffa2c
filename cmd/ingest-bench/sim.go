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
	resp, err := e.hc.Post(e.simURL+"/_sim/mappings", "application/json", bytes.NewReader(b))
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
	resp, err := e.hc.Get(e.simURL + "/_sim/calls?" + q.Encode())
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

// waitCalls waits until the call log holds n calls of op.
func (e *env) waitCalls(ctx context.Context, op string, n int) error {
	deadline := time.Now().Add(e.o.timeout)
	for {
		cs, err := e.calls(op)
		if err != nil {
			return err
		}
		if len(cs) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d %s calls of %d", len(cs), op, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// addClients adds OAuth clients to the simulator.
func (e *env) addClients(cs []campaignsim.Client) error {
	b, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	resp, err := e.hc.Post(e.simURL+"/_sim/clients", "application/json", bytes.NewReader(b))
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
	req, _ := http.NewRequest(http.MethodDelete, e.simURL+"/_sim/calls", nil)
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
	resp, err := e.hc.PostForm(e.simURL+"/ims/token/v3", form)
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
