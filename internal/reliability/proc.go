package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

// BuildWorker compiles cmd/ingest-worker into dir and returns its path. It
// must run inside the module.
func BuildWorker(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "ingest-worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/acme/campaign-ingest/cmd/ingest-worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ingest-worker: %w\n%s", err, out)
	}
	return bin, nil
}

// WorkerConfig is how to start worker processes.
type WorkerConfig struct {
	// Bin is the ingest-worker binary.
	Bin string
	// NATSURL is INGEST_NATS_URL (comma-separated for a cluster).
	NATSURL string
	// API is the simulator; each process gets its own witness prefix.
	API *API
	// LogDir receives one log file per process (its stderr, JSON lines).
	LogDir string
	// Env adds or overrides INGEST_* variables ("INGEST_ACK_WAIT=3s").
	Env []string
}

// env returns the environment of process id: the parent's without any
// INGEST_ variable, then the harness's settings, then cfg.Env.
func (cfg WorkerConfig) env(id int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INGEST_") {
			env = append(env, kv)
		}
	}
	base := cfg.API.URL(id)
	env = append(env,
		"INGEST_NATS_URL="+cfg.NATSURL,
		"INGEST_NATS_NAME="+fmt.Sprintf("ingest-worker-%d", id),
		"INGEST_CAMPAIGN_URL="+base,
		"INGEST_IMS_URL="+base+"/ims/token/v3",
		"INGEST_IMS_CLIENT_ID="+campaignsim.DemoClientID,
		"INGEST_IMS_CLIENT_SECRET="+campaignsim.DemoClientSecret,
		"INGEST_HTTP_ADDR=127.0.0.1:0",
	)
	return append(env, cfg.Env...)
}

// Worker is one ingest-worker process.
type Worker struct {
	ID      int
	LogPath string
	// Started is when the process was started.
	Started time.Time

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done closes

	mu       sync.Mutex
	signaled time.Time
}

// StartWorker starts process id. The process dies with the caller
// (parent-death signal), so a crashed test leaves nothing behind.
func StartWorker(cfg WorkerConfig, id int) (*Worker, error) {
	path := filepath.Join(cfg.LogDir, fmt.Sprintf("worker-%d.log", id))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "{\"msg\":\"=== process %d started by the harness at %s\"}\n", id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(cfg.Bin)
	cmd.Env = cfg.env(id)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w := &Worker{ID: id, LogPath: path, cmd: cmd, log: f, done: make(chan struct{})}
	w.Started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start worker %d: %w", id, err)
	}
	go func() {
		w.err = cmd.Wait()
		f.Close()
		close(w.done)
	}()
	return w, nil
}

// Kill sends SIGKILL and waits for the process to end.
func (w *Worker) Kill() time.Time { return w.signal(syscall.SIGKILL, true) }

// Term sends SIGTERM (graceful stop) and returns when it was sent; Wait
// waits for the end.
func (w *Worker) Term() time.Time { return w.signal(syscall.SIGTERM, false) }

func (w *Worker) signal(sig syscall.Signal, wait bool) time.Time {
	w.mu.Lock()
	at := time.Now()
	if w.signaled.IsZero() {
		w.signaled = at
	}
	w.mu.Unlock()
	_ = w.cmd.Process.Signal(sig)
	if wait {
		<-w.done
	}
	return at
}

// Wait waits for the process to end, at most timeout, and returns its
// exit error.
func (w *Worker) Wait(timeout time.Duration) error {
	select {
	case <-w.done:
		return w.err
	case <-time.After(timeout):
		return fmt.Errorf("worker %d still running after %s", w.ID, timeout)
	}
}

// Exited reports whether the process has ended.
func (w *Worker) Exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Stop kills the process if it still runs; for cleanups.
func (w *Worker) Stop() {
	if !w.Exited() {
		w.Kill()
	}
}

// HTTPAddr waits (at most timeout) until the process logged where its
// /metrics, /healthz and /readyz listen, and returns that address.
func (w *Worker) HTTPAddr(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if addr := w.logged("worker running", "http"); addr != "" {
			return addr, nil
		}
		if w.Exited() {
			return "", fmt.Errorf("worker %d exited: %v\n%s", w.ID, w.err, w.Tail(20))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("worker %d not running after %s\n%s", w.ID, timeout, w.Tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logged returns the string attribute attr of the last log line whose msg
// is msg, or "".
func (w *Worker) logged(msg, attr string) string {
	b, err := os.ReadFile(w.LogPath)
	if err != nil {
		return ""
	}
	found := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != msg {
			continue
		}
		if v, ok := line[attr].(string); ok {
			found = v
		}
	}
	return found
}

// Ready asks the process's /readyz.
func (w *Worker) Ready(addr string) (bool, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// WaitReady waits until /readyz answers ready (want true) or not ready
// (want false), at most timeout.
func (w *Worker) WaitReady(addr string, want bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := w.Ready(addr)
		if err == nil && ok == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker %d: /readyz not %v within %s (last: %v, %v)\n%s", w.ID, want, timeout, ok, err, w.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tail returns the last n lines of the process's log.
func (w *Worker) Tail(n int) string {
	b, err := os.ReadFile(w.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
