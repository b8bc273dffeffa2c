package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/acme/campaign-ingest/natsconn"
)

// defaultServer is the worker's embedded server.
const defaultServer = "nats://127.0.0.1:4222"

// connFlags are the NATS flags every command has, named as the nats CLI
// names them. See resolveConfig for how they combine with the environment
// and a nats CLI context.
type connFlags struct {
	server, creds, user, password, token, nkey, ca, cert, key string
	inboxPrefix                                               string
	// context names a nats CLI context (or is the path of its file);
	// noContext ignores every context.
	context   string
	noContext bool
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "NATS server URLs, comma-separated (INGEST_NATS_URL, NATS_URL, the context's url; default "+defaultServer+")")
	fs.StringVar(&f.server, "s", "", "same as --server")
	fs.StringVar(&f.creds, "creds", "", "NATS .creds file (INGEST_NATS_CREDS, NATS_CREDS)")
	fs.StringVar(&f.user, "user", "", "NATS user (INGEST_NATS_USER, NATS_USER)")
	fs.StringVar(&f.password, "password", "", "NATS password (INGEST_NATS_PASSWORD, NATS_PASSWORD)")
	fs.StringVar(&f.token, "token", "", "NATS token (INGEST_NATS_TOKEN, NATS_TOKEN)")
	fs.StringVar(&f.nkey, "nkey", "", "file holding an nkey seed (INGEST_NATS_NKEY, NATS_NKEY)")
	fs.StringVar(&f.ca, "tlsca", "", "PEM file of CAs trusted for the server certificate (INGEST_NATS_CA, NATS_CA)")
	fs.StringVar(&f.cert, "tlscert", "", "PEM client certificate for mutual TLS (INGEST_NATS_CERT, NATS_CERT)")
	fs.StringVar(&f.key, "tlskey", "", "PEM key of the client certificate (INGEST_NATS_KEY, NATS_KEY)")
	fs.StringVar(&f.inboxPrefix, "inbox-prefix", "", "reply subject prefix instead of _INBOX, e.g. _INBOX_acme (INGEST_NATS_INBOX_PREFIX, the context's inbox_prefix)")
	fs.StringVar(&f.context, "context", "", "nats CLI context `name` or file (NATS_CONTEXT; default the nats CLI's selected context)")
	fs.BoolVar(&f.noContext, "no-context", false, "ignore nats CLI contexts")
}

// resolveConfig is the NATS configuration of one invocation. Its sources,
// from the weakest to the strongest:
//
//  1. the defaults: server nats://127.0.0.1:4222, connection name ingestctl;
//  2. a nats CLI context (--context, else NATS_CONTEXT, else the nats CLI's
//     selected one; none with --no-context);
//  3. the nats CLI's variables NATS_URL, NATS_CREDS, NATS_NKEY, NATS_USER,
//     NATS_PASSWORD, NATS_TOKEN, NATS_CA, NATS_CERT, NATS_KEY;
//  4. the worker's variables INGEST_NATS_*;
//  5. the flags.
//
// A setting comes from the strongest source that sets it. The credential
// is one setting: a source that sets any of creds, nkey, user, password or
// token replaces the credential of every weaker source.
func resolveConfig(getenv func(string) string, f connFlags) (natsconn.Config, error) {
	c := natsconn.Config{URL: defaultServer, Name: "ingestctl"}
	ctxCfg, err := loadContext(getenv, f)
	if err != nil {
		return natsconn.Config{}, usageErrorf("%w", err)
	}
	ingestEnv, err := ingestEnvConfig(getenv)
	if err != nil {
		return natsconn.Config{}, usageErrorf("%w", err)
	}
	for _, l := range []natsconn.Config{ctxCfg, natsEnvConfig(getenv), ingestEnv, f.flagConfig()} {
		overlay(&c, l)
	}
	return c, nil
}

// overlay sets in dst what src sets; src's credential, if any, replaces
// dst's whole credential.
func overlay(dst *natsconn.Config, src natsconn.Config) {
	if hasCredential(src) {
		dst.Creds, dst.Nkey, dst.User, dst.Password, dst.PasswordFile, dst.Token, dst.TokenFile =
			src.Creds, src.Nkey, src.User, src.Password, src.PasswordFile, src.Token, src.TokenFile
	}
	set(&dst.URL, src.URL)
	set(&dst.CA, src.CA)
	set(&dst.Cert, src.Cert)
	set(&dst.Key, src.Key)
	set(&dst.InboxPrefix, src.InboxPrefix)
	set(&dst.Name, src.Name)
	dst.TLS = dst.TLS || src.TLS
}

func hasCredential(c natsconn.Config) bool {
	return c.Creds != "" || c.Nkey != "" || c.User != "" || c.Password != "" ||
		c.PasswordFile != "" || c.Token != "" || c.TokenFile != ""
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func (f connFlags) flagConfig() natsconn.Config {
	return natsconn.Config{
		URL: f.server, Creds: f.creds, User: f.user, Password: f.password, Token: f.token, Nkey: f.nkey,
		CA: f.ca, Cert: f.cert, Key: f.key, InboxPrefix: f.inboxPrefix,
	}
}

// natsEnvConfig reads the nats CLI's variables.
func natsEnvConfig(getenv func(string) string) natsconn.Config {
	return natsconn.Config{
		URL: getenv("NATS_URL"), Creds: getenv("NATS_CREDS"), Nkey: getenv("NATS_NKEY"),
		User: getenv("NATS_USER"), Password: getenv("NATS_PASSWORD"), Token: getenv("NATS_TOKEN"),
		CA: getenv("NATS_CA"), Cert: getenv("NATS_CERT"), Key: getenv("NATS_KEY"),
	}
}

// ingestEnvConfig reads the worker's INGEST_NATS_* variables (see
// natsconn.Config).
func ingestEnvConfig(getenv func(string) string) (natsconn.Config, error) {
	v := func(name string) string { return getenv("INGEST_NATS_" + name) }
	c := natsconn.Config{
		URL: v("URL"), Creds: v("CREDS"), Nkey: v("NKEY"), User: v("USER"),
		Password: v("PASSWORD"), PasswordFile: v("PASSWORD_FILE"), Token: v("TOKEN"), TokenFile: v("TOKEN_FILE"),
		CA: v("CA"), Cert: v("CERT"), Key: v("KEY"), InboxPrefix: v("INBOX_PREFIX"), Name: v("NAME"),
	}
	if s := v("TLS"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return natsconn.Config{}, fmt.Errorf("environment: INGEST_NATS_TLS=%q is not a boolean", s)
		}
		c.TLS = b
	}
	return c, nil
}
