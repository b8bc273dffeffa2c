// Package blackbox runs the worker as its users do: the ingest-worker and
// nats-server binaries as processes on loopback ports, commands published
// and events read with the nats CLI, the simulator's call log read over
// HTTP. It holds tests only; see blackbox_test.go.
package blackbox
