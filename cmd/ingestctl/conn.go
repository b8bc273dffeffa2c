package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/acme/campaign-ingest/natsconn"
)

// defaultServer is the worker's embedded server.
const defaultServer = "nats://127.0.0.1:4222"

// workerHint says how to get what the worker creates.
const workerHint = "is the worker running? start it with INGEST_SIMULATE=true go run ./cmd/ingest-worker"

// envConfig is the part of the worker's configuration ingestctl shares:
// INGEST_NATS_* (envconfig prefix "ingest", as in worker.Config).
type envConfig struct {
	NATS natsconn.Config `split_words:"true"`
}

// connFlags are the NATS flags every command has. A flag that is set wins
// over its INGEST_NATS_* variable; an authentication flag replaces every
// authentication variable.
type connFlags struct {
	server, creds, user, password, token, nkey, ca, cert, key string
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "NATS server URLs, comma-separated (INGEST_NATS_URL; default "+defaultServer+")")
	fs.StringVar(&f.creds, "creds", "", "NATS .creds file (INGEST_NATS_CREDS)")
	fs.StringVar(&f.user, "user", "", "NATS user (INGEST_NATS_USER)")
	fs.StringVar(&f.password, "password", "", "NATS password (INGEST_NATS_PASSWORD)")
	fs.StringVar(&f.token, "token", "", "NATS token (INGEST_NATS_TOKEN)")
	fs.StringVar(&f.nkey, "nkey", "", "file holding an nkey seed (INGEST_NATS_NKEY)")
	fs.StringVar(&f.ca, "tlsca", "", "PEM file of CAs trusted for the server certificate (INGEST_NATS_CA)")
	fs.StringVar(&f.cert, "tlscert", "", "PEM client certificate for mutual TLS (INGEST_NATS_CERT)")
	fs.StringVar(&f.key, "tlskey", "", "PEM key of the client certificate (INGEST_NATS_KEY)")
}

// config is the NATS configuration: INGEST_NATS_* overridden by the flags.
func (f *connFlags) config() (natsconn.Config, error) {
	var env envConfig
	if err := envconfig.Process("ingest", &env); err != nil {
		return natsconn.Config{}, usageErrorf("environment: %w", err)
	}
	c := env.NATS
	if f.creds != "" || f.user != "" || f.password != "" || f.token != "" || f.nkey != "" {
		c.Creds, c.User, c.Password, c.Token, c.Nkey = f.creds, f.user, f.password, f.token, f.nkey
		c.PasswordFile, c.TokenFile = "", ""
	}
	set(&c.URL, f.server)
	set(&c.CA, f.ca)
	set(&c.Cert, f.cert)
	set(&c.Key, f.key)
	if c.URL == "" {
		c.URL = defaultServer
	}
	if c.Name == "" {
		c.Name = "ingestctl"
	}
	return c, nil
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// session is a connection to NATS and JetStream.
type session struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	url string
}

// connect connects with the flags' configuration.
func (f *connFlags) connect() (*session, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	nc, err := natsconn.Connect(cfg, "", nil)
	if err != nil {
		if errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("%w (%s, or set --server / INGEST_NATS_URL)", err, workerHint)
		}
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &session{nc: nc, js: js, url: nc.ConnectedUrlRedacted()}, nil
}

func (s *session) close() { s.nc.Close() }

// stream looks up a stream the worker creates, explaining a missing one.
func (s *session) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("no stream %s on %s: %s", name, s.url, workerHint)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("no JetStream on %s (%w): is --server the worker's NATS server?", s.url, err)
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return st, nil
}

// bucket looks up a KV bucket the worker creates, explaining a missing one.
func (s *session) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, fmt.Errorf("no bucket %s on %s: %s", name, s.url, workerHint)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("no JetStream on %s (%w): is --server the worker's NATS server?", s.url, err)
	case err != nil:
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

// newFlagSet is a subcommand's flag set, writing its usage to a's stderr
// (stdout for -h) and with the NATS flags.
func (a *app) newFlagSet(name, synopsis string, conn *connFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("ingestctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ingestctl %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	conn.register(fs)
	return fs
}

// parse parses args into fs; -h prints the usage on stdout.
func (a *app) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(a.stdout)
		fs.Usage()
		return errHelp
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", fs.Name(), err)
		fs.SetOutput(a.stderr)
		fs.Usage()
		return withCode(exitUsage, nil)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
