// Package natsembed runs a nats-server with JetStream inside the process:
// the worker's quick-start default and the backbone of the tests.
package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// Host and Port to listen on; defaults 127.0.0.1 and 4222. Port -1
	// picks a free port.
	Host string
	Port int
	// StoreDir is JetStream's storage; required.
	StoreDir string
	// LazySync turns off the fsync of every write (NATS's own default is a
	// sync every 2 minutes). Off by default: acknowledged writes survive a
	// power loss.
	LazySync bool
	// ServerName; default "ingest-embedded".
	ServerName string
	// Config is applied last, for anything else (auth, TLS, cluster).
	Config func(*server.Options)
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	opts := &server.Options{
		ServerName: o.ServerName,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: !o.LazySync,
		NoSigs:     true,
		NoLog:      true,
	}
	if opts.ServerName == "" {
		opts.ServerName = "ingest-embedded"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = 4222
	}
	if o.Config != nil {
		o.Config(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server on %s:%d not ready within 10s", opts.Host, opts.Port)
	}
	return s, nil
}
