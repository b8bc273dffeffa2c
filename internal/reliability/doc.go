// Package reliability proves the worker's guarantees under faults: real
// worker processes (the ingest-worker binary) killed and restarted, NATS
// servers and cluster nodes stopped and restarted, and the Campaign API
// simulator's fault injection, with the simulator's call log and the event
// stream as witnesses.
//
// The helpers here are shared by the package's tests and by
// cmd/ingest-chaos: NATS (one restartable server) and Cluster (three
// JetStream nodes on loopback ports), API (the simulator behind a witness
// that tells which worker process made each call), Worker (one worker
// process), and Check, which turns the call log and the event stream into
// a Report (commands, terminal events, lost, duplicates, resume times).
//
// Everything listens on loopback, on free ports.
package reliability
