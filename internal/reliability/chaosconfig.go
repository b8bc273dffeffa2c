package reliability

import "time"

// ChaosConfig is a chaos/soak run. The zero value of a field means its
// default.
type ChaosConfig struct {
	// Commands to publish; default 1000. They are published evenly over
	// Duration.
	Commands int
	// Duration of the chaos: publishing, kills and faults; default 1m.
	// Then the run waits for every command to end (at most Drain).
	Duration time.Duration
	// Drain bounds the wait for the last commands; default 5m.
	Drain time.Duration
	// Workers is the number of worker processes; default 3.
	Workers int
	// KillEvery stops a random worker every KillEvery (every third time
	// with SIGTERM, else SIGKILL) and starts a new one; 0 = no kills.
	KillEvery time.Duration
	// Faults injects random API faults (5xx, drops, malformed answers,
	// throttling, latency beyond the client timeout, POST answers lost
	// after the request was submitted) at a few percent of the calls.
	Faults bool
	// Cluster runs a three-node JetStream cluster (R3) instead of a single
	// server.
	Cluster bool
	// NATSEvery stops NATS every NATSEvery for two seconds: the single
	// server, or the leader of the command stream and of the job bucket in
	// turn; 0 = never.
	NATSEvery time.Duration
	// EventFaultEvery makes publishing to INGEST_EVENTS fail for
	// EventFaultFor this often (the stream's MaxMsgSize is set below any
	// event's size, then restored), so that triggered events are not
	// stored and jobs must fall back to their KV write; 0 = never.
	EventFaultEvery time.Duration
	// IngestionTime is how long each ingestion runs in the simulator;
	// default 5s (longer than AckWait: see TestReplicasKilledAndRestarted).
	IngestionTime time.Duration
	// Bin is the ingest-worker binary; default: built into Dir.
	Bin string
	// Dir holds the NATS storage, the binary and the worker logs; default a
	// new temporary directory, removed at the end unless KeepDir.
	Dir     string
	KeepDir bool
	// Logf reports progress; default silent.
	Logf func(format string, args ...any)
}

// Chaos timing of the workers.
const (
	ChaosAckWait = 3 * time.Second
	ChaosPollMax = 2 * time.Second
)

func (c ChaosConfig) withDefaults() ChaosConfig {
	if c.Commands <= 0 {
		c.Commands = 1000
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 3
	}
	if c.IngestionTime <= 0 {
		c.IngestionTime = 5 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}
