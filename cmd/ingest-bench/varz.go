package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// varz is the part of nats-server's /varz the bench reads: every message
// and byte the server received from and sent to clients (publishes, acks,
// API requests and their replies, deliveries, heartbeats).
type varz struct {
	InMsgs   int64 `json:"in_msgs"`
	OutMsgs  int64 `json:"out_msgs"`
	InBytes  int64 `json:"in_bytes"`
	OutBytes int64 `json:"out_bytes"`
}

var monitorClient = &http.Client{Timeout: 5 * time.Second}

// readVarz reads /varz of the server whose monitoring endpoint is monitor.
func readVarz(monitor string) (varz, error) {
	var v varz
	resp, err := monitorClient.Get(monitor + "/varz")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("/varz: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// traffic is NATS traffic per job: messages and bytes into and out of the
// server.
type traffic struct {
	inMsgs, outMsgs, inBytes, outBytes float64
}

// trafficMeter measures a server's traffic over an interval; the zero
// value (no monitoring endpoint) measures nothing.
type trafficMeter struct {
	monitor string
	start   varz
	ok      bool
}

func startTraffic(monitor string) *trafficMeter {
	m := &trafficMeter{monitor: monitor}
	if monitor != "" {
		v, err := readVarz(monitor)
		m.start, m.ok = v, err == nil
	}
	return m
}

// perJob returns the traffic per job since start, and false when the
// server's /varz could not be read.
func (m *trafficMeter) perJob(n int) (traffic, bool) {
	if !m.ok {
		return traffic{}, false
	}
	v, err := readVarz(m.monitor)
	if err != nil {
		return traffic{}, false
	}
	f := float64(n)
	return traffic{
		inMsgs: float64(v.InMsgs-m.start.InMsgs) / f, outMsgs: float64(v.OutMsgs-m.start.OutMsgs) / f,
		inBytes: float64(v.InBytes-m.start.InBytes) / f, outBytes: float64(v.OutBytes-m.start.OutBytes) / f,
	}, true
}
