package reliability

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/natsembed"
)

// NATS is one embedded JetStream server with file storage that fsyncs every
// write (natsembed's default). It can be stopped and restarted on the same
// port and store directory, like a server process that crashes and comes
// back.
type NATS struct {
	name        string
	dir         string
	port        int
	clusterPort int
	routes      []string // route URLs of the other nodes, cluster only

	mu  sync.Mutex
	srv *server.Server
}

// StartNATS starts a single server on a free loopback port with its storage
// under dir.
func StartNATS(dir string) (*NATS, error) {
	n := &NATS{name: "single", dir: dir, port: -1}
	if err := n.Start(); err != nil {
		return nil, err
	}
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	return n, nil
}

// Start starts the server (again): same name, port and store directory.
// It is a no-op on a running server.
func (n *NATS) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	var configure func(*server.Options)
	if n.clusterPort != 0 {
		configure = func(o *server.Options) {
			o.Cluster = server.ClusterOpts{Name: "ingest-test", Host: "127.0.0.1", Port: n.clusterPort}
			o.Routes = server.RoutesFromStr(strings.Join(n.routes, ","))
		}
	}
	s, err := natsembed.Start(natsembed.Options{
		Host: "127.0.0.1", Port: n.port, ServerName: n.name,
		StoreDir: filepath.Join(n.dir, "jetstream"), Config: configure,
	})
	if err != nil {
		return fmt.Errorf("start nats %s: %w", n.name, err)
	}
	n.srv = s
	return nil
}

// Stop shuts the server down and waits for it. It is a no-op on a
// stopped server.
func (n *NATS) Stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Running reports whether the server runs.
func (n *NATS) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// Name is the server's name (as stream info's Cluster.Leader reports it).
func (n *NATS) Name() string { return n.name }

// URL is the server's client URL; it stays the same across restarts.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Server is the running server, or nil.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Cluster is a JetStream cluster of embedded servers on loopback ports,
// each with its own store directory, fsync on every write.
type Cluster struct {
	Nodes []*NATS
}

// StartCluster starts size nodes (at least 3 for R3) with storage under dir.
func StartCluster(dir string, size int) (*Cluster, error) {
	ports, err := FreePorts(2 * size)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var routes []string
	for i := range size {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[size+i]))
	}
	for i := range size {
		c.Nodes = append(c.Nodes, &NATS{
			name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			port: ports[i], clusterPort: ports[size+i], routes: routes,
		})
	}
	// Nodes wait for each other's routes only once JetStream meta forms;
	// natsembed.Start returns when a node accepts clients, so start them
	// one after the other.
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// URLs is the comma-separated client URLs of every node.
func (c *Cluster) URLs() string {
	var us []string
	for _, n := range c.Nodes {
		us = append(us, n.URL())
	}
	return strings.Join(us, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *NATS {
	for _, n := range c.Nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// FreePorts returns n distinct free loopback ports. They are free when
// returned; another program could take one before it is used.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitReady waits until the cluster has a JetStream meta leader and every
// node is running, at most timeout.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if s := n.Server(); s != nil && s.JetStreamIsLeader() {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no JetStream meta leader within %s", timeout)
}

// Leader returns the node that leads stream (for a KV bucket: "KV_<bucket>").
func (c *Cluster) Leader(ctx context.Context, js jetstream.JetStream, stream string) (*NATS, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	n := c.Node(info.Cluster.Leader)
	if n == nil {
		return nil, fmt.Errorf("stream %s: leader %q is not a node of the cluster", stream, info.Cluster.Leader)
	}
	return n, nil
}
