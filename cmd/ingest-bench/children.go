package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/nats-io/nats-server/v2/server"
)

// serveNATS is the nats child: a natsembed server on a free loopback port,
// with its monitoring endpoint (/varz) on another. It prints both URLs on
// one line and runs until stdin closes or ctx ends.
func serveNATS(ctx context.Context, store string, lazy bool) error {
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: store, LazySync: lazy, Config: func(o *server.Options) {
		o.HTTPHost, o.HTTPPort = "127.0.0.1", -1
	}})
	if err != nil {
		return err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	monitor := ""
	if a := s.MonitorAddr(); a != nil {
		monitor = "http://" + a.String()
	}
	fmt.Println(s.ClientURL(), monitor)
	waitParent(ctx)
	return nil
}

// serveSim is the simulator child on a free loopback port.
func serveSim(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sim := campaignsim.New(campaignsim.Options{})
	sim.PutMapping(campaignsim.Mapping{Org: benchOrg, ID: "INSTANT"})
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Println("http://" + ln.Addr().String())
	waitParent(ctx)
	_ = srv.Close()
	<-done
	return nil
}

// waitParent returns when stdin closes (the parent ended) or ctx ends.
func waitParent(ctx context.Context) {
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
}

// child is a child process of this binary.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startChild(args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("child %v: %w", args, err)
	}
	c.addr = strings.TrimSpace(line)
	return c, nil
}

// stop closes the child's stdin and waits for it, killing it after 10s.
func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
