package campaignsim

import (
	"encoding/json"
	"fmt"
	"time"
)

// MappingState is the Campaign-side state of an XDM mapping.
type MappingState string

// Mapping states. The zero value means StateReady.
const (
	StateReady        MappingState = "ready"         // published and stopped: it can be triggered
	StateNotPublished MappingState = "not_published" // POST answers Failed "… is not published"
	StateNotStopped   MappingState = "not_stopped"   // still running on its schedule: POST answers Failed "… is not stopped"
)

func (st MappingState) valid() bool {
	switch st {
	case "", StateReady, StateNotPublished, StateNotStopped:
		return true
	}
	return false
}

// Mapping is an XDM mapping of one organization (Campaign tenant) and the
// script that decides how its ingestion requests end.
type Mapping struct {
	Org    string       `json:"organization"`
	ID     string       `json:"mappingId"`
	State  MappingState `json:"state,omitempty"`
	Script Script       `json:"script"`
}

func (m Mapping) validate() error {
	if m.Org == "" || m.ID == "" {
		return fmt.Errorf("mapping %q/%q: organization and mappingId are required", m.Org, m.ID)
	}
	if !m.State.valid() {
		return fmt.Errorf("mapping %s/%s: unknown state %q", m.Org, m.ID, m.State)
	}
	return m.Script.validate()
}

// Outcome is how a scripted ingestion request ends.
type Outcome string

// Outcomes. The zero value means OutcomeSuccess.
const (
	OutcomeSuccess            Outcome = "success"              // Success with Script.Records records
	OutcomeFetchFailure       Outcome = "fetch_failure"        // Failed, ACP-880056, no batch id
	OutcomeUploadFailure      Outcome = "upload_failure"       // Failed, ACP-880096, with Script.BatchID
	OutcomeAborted            Outcome = "aborted"              // Aborted
	OutcomeAbortedThenSuccess Outcome = "aborted_then_success" // the mapping's first request aborts, later ones succeed
	OutcomeNever              Outcome = "never"                // In Progress forever
)

func (o Outcome) valid() bool {
	switch o {
	case "", OutcomeSuccess, OutcomeFetchFailure, OutcomeUploadFailure, OutcomeAborted, OutcomeAbortedThenSuccess, OutcomeNever:
		return true
	}
	return false
}

// Script decides when and how a mapping's ingestion requests end. With
// Duration 0 and Polls 0 a request is terminal at once (the first GET
// answers the outcome); with both set, whichever comes first ends it.
type Script struct {
	Outcome  Outcome  `json:"outcome,omitempty"`
	Records  int64    `json:"records,omitempty"`  // numRecords on Success
	Duration Duration `json:"duration,omitempty"` // time from POST to the terminal status (JSON "5s")
	Polls    int      `json:"polls,omitempty"`    // or: terminal on the K-th status GET of the request (1 = first GET)
	BatchID  string   `json:"batchId,omitempty"`  // upload_failure's batch id; default a random 32-char lowercase hex
}

func (sc Script) validate() error {
	switch {
	case !sc.Outcome.valid():
		return fmt.Errorf("script: unknown outcome %q", sc.Outcome)
	case sc.Records < 0 || sc.Duration < 0 || sc.Polls < 0:
		return fmt.Errorf("script: records, duration and polls must not be negative")
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string such as "5s" or "1m30s".
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("2s"); a bare number is read as
// seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	switch v := v.(type) {
	case string:
		x, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(x)
	case float64:
		*d = Duration(v * float64(time.Second))
	case nil:
		*d = 0
	default:
		return fmt.Errorf("duration: want a string like \"5s\", got %s", b)
	}
	return nil
}

// DemoMappings returns one mapping per outcome and state for org:
//
//	XDM44      success, 15 records, after 3s
//	XDMSLOW    success, 1200 records, after 2m
//	XDMFETCH   fetch_failure (ACP-880056) after 2s
//	XDMUPLOAD  upload_failure (ACP-880096) after 2s
//	XDMABORT   aborted after 2s
//	XDMFLAKY   aborted_then_success (15 records) after 2s
//	XDMNEVER   never finishes
//	XDMRUNNING not stopped
//	XDMDRAFT   not published
func DemoMappings(org string) []Mapping {
	sec := func(n int) Duration { return Duration(time.Duration(n) * time.Second) }
	return []Mapping{
		{Org: org, ID: "XDM44", Script: Script{Outcome: OutcomeSuccess, Records: 15, Duration: sec(3)}},
		{Org: org, ID: "XDMSLOW", Script: Script{Outcome: OutcomeSuccess, Records: 1200, Duration: sec(120)}},
		{Org: org, ID: "XDMFETCH", Script: Script{Outcome: OutcomeFetchFailure, Duration: sec(2)}},
		{Org: org, ID: "XDMUPLOAD", Script: Script{Outcome: OutcomeUploadFailure, Duration: sec(2)}},
		{Org: org, ID: "XDMABORT", Script: Script{Outcome: OutcomeAborted, Duration: sec(2)}},
		{Org: org, ID: "XDMFLAKY", Script: Script{Outcome: OutcomeAbortedThenSuccess, Records: 15, Duration: sec(2)}},
		{Org: org, ID: "XDMNEVER", Script: Script{Outcome: OutcomeNever}},
		{Org: org, ID: "XDMRUNNING", State: StateNotStopped},
		{Org: org, ID: "XDMDRAFT", State: StateNotPublished},
	}
}
