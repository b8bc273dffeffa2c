package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/layout"
	"github.com/acme/campaign-ingest/natsembed"
	"github.com/acme/campaign-ingest/publisher"
	"github.com/acme/campaign-ingest/worker"
)

// benchOrg is the organization of every benchmark command.
const benchOrg = "bench"

// serveNATS is the nats child: a natsembed server on a free loopback port.
// It prints its URL and runs until stdin closes or ctx ends.
func serveNATS(ctx context.Context, store string, lazy bool) error {
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: store, LazySync: lazy})
	if err != nil {
		return err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	fmt.Println(s.ClientURL())
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

// env is what every phase shares: the simulator child and the options.
type env struct {
	o      options
	sim    *child
	simURL string
	hc     *http.Client
	tmp    string
}

func newEnv(ctx context.Context, o options) (*env, error) {
	tmp, err := os.MkdirTemp("", "ingest-bench-")
	if err != nil {
		return nil, err
	}
	sim, err := startChild("-role", "sim")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &env{o: o, sim: sim, simURL: sim.addr, hc: &http.Client{Timeout: time.Minute}, tmp: tmp}, nil
}

func (e *env) close() {
	e.sim.stop()
	os.RemoveAll(e.tmp)
}

// natsServer returns the URL of a fresh server for one run (fsync mode
// "always" or "lazy"), or the external one, and the function that stops it.
func (e *env) natsServer(mode string) (string, func(), error) {
	url, _, stop, err := e.natsServerPID(mode)
	return url, stop, err
}

// natsServerPID is natsServer with the child's pid (0 for an external server).
func (e *env) natsServerPID(mode string) (string, int, func(), error) {
	if e.o.natsURL != "" {
		return e.o.natsURL, 0, func() {}, nil
	}
	dir, err := os.MkdirTemp(e.tmp, "js-")
	if err != nil {
		return "", 0, nil, err
	}
	args := []string{"-role", "nats", "-store", dir}
	if mode == "lazy" {
		args = append(args, "-lazy")
	}
	c, err := startChild(args...)
	if err != nil {
		return "", 0, nil, err
	}
	return c.addr, c.cmd.Process.Pid, func() { c.stop(); os.RemoveAll(dir) }, nil
}

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
	resp, err := e.hc.Get(e.simURL + "/_sim/calls?op=" + url.QueryEscape(op))
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

// workerConfig is the worker's default configuration pointed at natsURL and
// the simulator.
func (e *env) workerConfig(natsURL string, maxInFlight int) worker.Config {
	cfg := worker.DefaultConfig()
	cfg.NATS.URL = natsURL
	cfg.CampaignURL = e.simURL
	cfg.IMS.URL = e.simURL + "/ims/token/v3"
	cfg.IMS.ClientID, cfg.IMS.ClientSecret = campaignsim.DemoClientID, campaignsim.DemoClientSecret
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MaxInFlight = maxInFlight
	return cfg
}

// runningWorker is a worker run in process.
type runningWorker struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

func startWorker(ctx context.Context, cfg worker.Config) (*runningWorker, error) {
	w, err := worker.New(ctx, cfg, worker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(rctx) }()
	return r, nil
}

func (r *runningWorker) stop() error {
	r.cancel()
	return <-r.done
}

// connect connects the bench's own client.
func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("ingest-bench"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// commandMsg is command id on mapping.
func commandMsg(id, mapping string) *nats.Msg {
	msg, err := publisher.CommandMsg(ingest.Command{ID: id, Organization: benchOrg, MappingID: mapping})
	if err != nil {
		panic(err) // ids and mappings are the bench's own
	}
	return msg
}

// publishAll publishes n commands (ids prefix-<i>, mapping(i)) as fast as
// JetStream acknowledges them, with at most 1024 in flight.
func publishAll(ctx context.Context, js jetstream.JetStream, n int, prefix string, mapping func(int) string) error {
	for i := range n {
		if _, err := js.PublishMsgAsync(commandMsg(fmt.Sprintf("%s-%d", prefix, i), mapping(i)), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// terminalCounter counts terminal events on a core subscription and notes
// when the want-th arrived.
type terminalCounter struct {
	sub  *nats.Subscription
	want int
	n    int
	last time.Time
	done chan struct{}
}

func countTerminal(nc *nats.Conn, want int, onEvent func(subject string, at time.Time)) (*terminalCounter, error) {
	tc := &terminalCounter{want: want, done: make(chan struct{})}
	var err error
	tc.sub, err = nc.Subscribe(layout.EventPrefix+">", func(m *nats.Msg) {
		at := time.Now()
		if onEvent != nil {
			onEvent(m.Subject, at)
		}
		if strings.HasSuffix(m.Subject, "."+string(ingest.EventTriggered)) {
			return
		}
		tc.n++
		if tc.n == tc.want {
			tc.last = at
			close(tc.done)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := tc.sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	return tc, nc.Flush()
}

func (tc *terminalCounter) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-tc.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return errors.New("timed out waiting for terminal events")
	}
}
