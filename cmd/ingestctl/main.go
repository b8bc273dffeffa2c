// Command ingestctl is the operator's and upstream's side of the ingestion
// worker: it publishes a command (and waits for its outcome), reads the
// outcome events, and lists the job state.
//
//	ingestctl trigger --org acme --mapping XDM44 --wait
//	ingestctl events --org acme --since 2h --follow
//	ingestctl jobs --state running
//
// It reaches NATS as the nats CLI does (flags, NATS_* variables, nats CLI
// contexts) and with the worker's INGEST_NATS_* variables (see
// resolveConfig); the default server is the worker's embedded one,
// nats://127.0.0.1:4222. It needs no more than the NATS permissions of one
// organization when given --org. The exit codes are in exitcode.go and the
// README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one ingestctl command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(ctx, args)
}

// app is one invocation's environment; tests replace its hooks.
type app struct {
	stdout, stderr io.Writer
	// now is the clock; default time.Now.
	now func() time.Time
	// progress reports whether to draw progress on stderr; default: stderr
	// is a terminal.
	progress func() bool
	// progressEvery is how often progress is redrawn; default 1s.
	progressEvery time.Duration
	// afterPublish, when set, runs between a trigger's publish and the
	// start of its wait (tests make the outcome arrive first).
	afterPublish func()
	// getenv reads the environment; default os.Getenv.
	getenv func(string) string
	// apiTimeout bounds one JetStream API request; default 5s.
	apiTimeout time.Duration
	// sess is the command's NATS session once connected.
	sess *session
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout:        stdout,
		stderr:        stderr,
		now:           time.Now,
		progress:      func() bool { return isTerminal(stderr) },
		progressEvery: time.Second,
		getenv:        os.Getenv,
		apiTimeout:    5 * time.Second,
	}
}

type command struct {
	name, summary string
	run           func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"trigger", "publish a command; with --wait, wait for its outcome", (*app).trigger},
		{"events", "print outcome events from INGEST_EVENTS", (*app).events},
		{"jobs", "list the job state in INGEST_JOBS", (*app).jobs},
		{"check-orgs", "validate an organizations file (INGEST_ORGS_FILE) offline", (*app).checkOrgs},
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		a.usage(a.stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(a.stdout, version)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(a, ctx, args[1:])
			if a.sess != nil {
				err = a.sess.explain(err)
			}
			if ctx.Err() != nil && exitCode(err) == exitNATS {
				err = withCode(exitInterrupted, errors.New("interrupted"))
			}
			return a.exit(err)
		}
	}
	fmt.Fprintf(a.stderr, "ingestctl: unknown command %q\n\n", args[0])
	a.usage(a.stderr)
	return exitUsage
}

// exit prints err (unless it is only an exit code) and returns its code.
func (a *app) exit(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	code := exitCode(err)
	var ee *exitError
	if !errors.As(err, &ee) || ee.err != nil {
		fmt.Fprintln(a.stderr, "ingestctl:", err)
	}
	return code
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "ingestctl %s: publish Campaign ingestion commands, read their outcomes and job state.\n\n", version)
	fmt.Fprintln(w, "Usage: ingestctl <command> [flags]   (ingestctl <command> -h for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "NATS settings, strongest first: the flags (-s/--server, --creds, --nkey, --user,")
	fmt.Fprintln(w, "--password, --token, --tlsca, --tlscert, --tlskey, --inbox-prefix), INGEST_NATS_*")
	fmt.Fprintln(w, "(as for the worker), NATS_* (as for the nats CLI), the nats CLI context (--context,")
	fmt.Fprintln(w, "NATS_CONTEXT or the selected one; --no-context for none). A source that sets a")
	fmt.Fprintln(w, "credential replaces the credentials of the weaker ones.")
	fmt.Fprintf(w, "The default server is %s (the worker's embedded server).\n\n", defaultServer)
	fmt.Fprintln(w, "Exit codes:")
	for _, c := range exitCodes {
		fmt.Fprintf(w, "  %3d  %s\n", c.code, c.meaning)
	}
}
