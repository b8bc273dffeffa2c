package blackbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme/campaign-ingest/internal/syncbuf"
)

// natsCLIVersion is the nats CLI the tests drive.
const natsCLIVersion = "github.com/nats-io/natscli/nats@v0.5.0"

// bins are the binaries the tests run.
type bins struct {
	natsServer, worker, nats string
	root                     string // the module's
}

// buildBinaries builds nats-server (a module dependency), ingest-worker and
// the nats CLI into a directory kept between runs: go build and go install
// leave a binary that is up to date alone, so that only the first run
// compiles and links. cliErr is set when the CLI cannot be built (no module
// proxy, say): the tests then skip.
func buildBinaries(ctx context.Context) (b bins, err, cliErr error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return b, err, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "campaign-ingest-blackbox", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err, nil
	}
	b = bins{natsServer: filepath.Join(dir, "nats-server"), worker: filepath.Join(dir, "ingest-worker"), nats: filepath.Join(dir, "nats"), root: root}
	if err := goCmd(ctx, root, nil, "build", "-o", b.natsServer, "github.com/nats-io/nats-server/v2"); err != nil {
		return b, err, nil
	}
	if err := goCmd(ctx, root, nil, "build", "-o", b.worker, "./cmd/ingest-worker"); err != nil {
		return b, err, nil
	}
	// Outside the module: the CLI has its own dependencies.
	cliErr = goCmd(ctx, dir, []string{"GOBIN=" + dir, "GOWORK=off", "GOFLAGS=-buildvcs=false"}, "install", natsCLIVersion)
	return b, nil, cliErr
}

// statSources stats the module's Go sources, go.mod and go.sum from the
// test, so that go test's result cache, which knows nothing of the
// binaries built by go build, runs the tests again when the worker's code
// changed.
func statSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum":
			_, err := os.Stat(path)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not in a module")
	}
	return filepath.Dir(mod), nil
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a process started by a test; it is stopped at the end of the
// test (SIGTERM, then SIGKILL after 10 s) and its output is logged when
// the test failed.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output (last 8 KiB):\n%s", name, tail(p.out, 8<<10))
		}
	})
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// tail returns the last n bytes of what b holds.
func tail(b *syncbuf.Buffer, n int) string {
	s := b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// cleanEnv is the environment of the processes: the test's, without any
// INGEST_ or NATS_ variable, with HOME in a temporary directory (the nats
// CLI keeps its contexts there).
func cleanEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INGEST_") || strings.HasPrefix(k, "NATS_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	home := t.TempDir()
	return append(append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config")), extra...)
}

// system is one nats-server and one worker (with its in-process
// simulator) on loopback ports, and the nats CLI to reach them.
type system struct {
	t        *testing.T
	bins     bins
	natsURL  string
	httpBase string // the worker's /metrics, /healthz, /readyz
	simBase  string
	env      []string
	worker   *proc
}

func startSystem(t *testing.T, b bins) *system {
	t.Helper()
	natsAddr, httpAddr, simAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	host, port, _ := net.SplitHostPort(natsAddr)
	s := &system{t: t, bins: b, natsURL: "nats://" + natsAddr, httpBase: "http://" + httpAddr, simBase: "http://" + simAddr, env: cleanEnv(t)}
	startProc(t, "nats-server", b.natsServer, []string{"-js", "-a", host, "-p", port, "-sd", t.TempDir(), "-n", "blackbox"}, s.env)
	waitFor(t, 20*time.Second, "nats-server accepting connections on "+natsAddr, func() bool {
		c, err := net.DialTimeout("tcp", natsAddr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, "INFO ")
	})
	s.worker = startProc(t, "ingest-worker", b.worker, nil, cleanEnv(t,
		"INGEST_NATS_URL="+s.natsURL,
		"INGEST_SIMULATE=true",
		"INGEST_SIMULATE_ADDR="+simAddr,
		"INGEST_HTTP_ADDR="+httpAddr,
		"INGEST_POLL_INITIAL=50ms",
		"INGEST_POLL_MAX=200ms",
		"INGEST_LOG_LEVEL=debug",
	))
	waitFor(t, 60*time.Second, "the worker ready on "+httpAddr, func() bool {
		if done, err := s.worker.exited(); done {
			t.Fatalf("ingest-worker exited: %v", err)
		}
		code, _, err := httpGet(s.httpBase + "/readyz")
		return err == nil && code == http.StatusOK
	})
	return s
}

// nats runs the nats CLI against the system's server and returns its
// standard output and error.
func (s *system) nats(args ...string) (stdout, stderr string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bins.nats, append([]string{"--server", s.natsURL}, args...)...)
	cmd.Env = s.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("nats %.200s: %v\nstdout: %.2000s\nstderr: %.2000s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

var storedRE = regexp.MustCompile(`Stored in Stream: (\S+) Sequence: (\d+)( Duplicate: true)?`)

// publish publishes a command with `nats pub --jetstream` and returns its
// stream sequence. The stream must store it (not as a duplicate).
func (s *system) publish(subject, body string, headers ...string) uint64 {
	s.t.Helper()
	args := []string{"pub", "--jetstream", "--no-templates"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	_, stderr := s.nats(append(args, subject, body)...)
	m := storedRE.FindStringSubmatch(stderr)
	if m == nil {
		s.t.Fatalf("nats pub on %.80q: no acknowledgement in %.500q", subject, stderr)
	}
	if m[3] != "" {
		s.t.Fatalf("nats pub on %.80q: the stream dropped the command as a duplicate", subject)
	}
	seq, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		s.t.Fatal(err)
	}
	return seq
}

// dumped is a message as `nats sub --dump` writes it.
type dumped struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}

// events reads every message of INGEST_EVENTS with `nats sub --stream
// --all --terminate-at-end --dump`.
func (s *system) events() []dumped {
	s.t.Helper()
	dir := s.t.TempDir()
	s.nats("sub", "ingest.events.>", "--stream", "INGEST_EVENTS", "--all", "--terminate-at-end", "--dump", dir)
	var out []dumped
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)+".json"))
		if errors.Is(err, os.ErrNotExist) {
			return out
		}
		if err != nil {
			s.t.Fatal(err)
		}
		var m dumped
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatalf("dumped message %d: %v", i, err)
		}
		out = append(out, m)
	}
}

// jsonInfo runs a nats CLI info command with --json and decodes it.
func (s *system) jsonInfo(v any, args ...string) {
	s.t.Helper()
	stdout, _ := s.nats(append(args, "--json")...)
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		s.t.Fatalf("nats %s --json: %v: %.500s", strings.Join(args, " "), err, stdout)
	}
}

type streamInfo struct {
	State struct {
		Messages uint64 `json:"messages"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"state"`
}

type consumerInfo struct {
	NumPending     uint64 `json:"num_pending"`
	NumAckPending  int    `json:"num_ack_pending"`
	NumRedelivered int    `json:"num_redelivered"`
}

// drained waits until the command stream holds no command.
func (s *system) drained() {
	s.t.Helper()
	var info streamInfo
	waitFor(s.t, 30*time.Second, "an empty command stream", func() bool {
		s.jsonInfo(&info, "stream", "info", "INGEST_COMMANDS")
		return info.State.Messages == 0
	})
}

// simCall is an entry of the simulator's call log.
type simCall struct {
	Op         string `json:"op"`
	Org        string `json:"organization"`
	Mapping    string `json:"mappingId"`
	HTTPStatus int    `json:"httpStatus"`
}

// posts counts the simulator's POSTs by organization and mapping.
func (s *system) posts() map[string]int {
	s.t.Helper()
	code, body, err := httpGet(s.simBase + "/_sim/calls?op=trigger")
	if err != nil || code != http.StatusOK {
		s.t.Fatalf("GET /_sim/calls: %d %v", code, err)
	}
	var calls []simCall
	if err := json.Unmarshal([]byte(body), &calls); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range calls {
		out[c.Org+"/"+c.Mapping]++
	}
	return out
}

// putMappings adds mappings to the worker's simulator.
func (s *system) putMappings(mappings string) {
	s.t.Helper()
	resp, err := http.Post(s.simBase+"/_sim/mappings", "application/json", strings.NewReader(mappings))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("POST /_sim/mappings: %d %s", resp.StatusCode, b)
	}
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls ok until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
