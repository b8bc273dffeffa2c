// Package natsconn connects the worker and ingestctl to NATS with the same
// settings, read from the same INGEST_NATS_* variables.
//
// Authentication is one of: a .creds file (user JWT and nkey seed), an nkey
// seed file, a user and password, or a token. Secrets can come from files
// (INGEST_NATS_PASSWORD_FILE, INGEST_NATS_TOKEN_FILE). TLS is used when the
// URL says tls://, when TLS is set, or when a CA or client certificate is
// given; certificate verification cannot be turned off.
package natsconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Config is how to reach NATS. Field docs name the environment variable
// (prefix INGEST_NATS_) and default. Programs call ReadSecrets after
// reading the environment (Connect calls it too).
//
// Config's String and LogValue methods never show a secret.
type Config struct {
	// URL: comma-separated server URLs (INGEST_NATS_URL). Empty means the
	// worker starts an embedded server. Prefer the credential variables
	// over user info in the URL.
	URL string `split_words:"true" desc:"comma-separated NATS server URLs (required; see INGEST_EMBEDDED_NATS for development)"`
	// Creds: a .creds file with a user JWT and nkey seed (INGEST_NATS_CREDS).
	Creds string `split_words:"true" desc:"NATS .creds file (user JWT and nkey seed)"`
	// Nkey: a file holding an nkey seed (INGEST_NATS_NKEY).
	Nkey string `split_words:"true" desc:"file holding a NATS nkey seed"`
	// User and Password (INGEST_NATS_USER, INGEST_NATS_PASSWORD), or the
	// password read from PasswordFile (INGEST_NATS_PASSWORD_FILE).
	User         string `split_words:"true" desc:"NATS user name"`
	Password     string `split_words:"true" desc:"NATS password (or INGEST_NATS_PASSWORD_FILE)"`
	PasswordFile string `split_words:"true" desc:"file holding the NATS password"`
	// Token (INGEST_NATS_TOKEN), or read from TokenFile
	// (INGEST_NATS_TOKEN_FILE).
	Token     string `split_words:"true" desc:"NATS token (or INGEST_NATS_TOKEN_FILE)"`
	TokenFile string `split_words:"true" desc:"file holding the NATS token"`
	// TLS requires TLS with the system's roots (INGEST_NATS_TLS); default
	// false. A tls:// URL, CA, or Cert also turn TLS on.
	TLS bool `split_words:"true" default:"false" desc:"require TLS (implied by a tls:// URL, INGEST_NATS_CA or INGEST_NATS_CERT)"`
	// CA: PEM file of the CAs trusted for the server's certificate
	// (INGEST_NATS_CA) instead of the system's. TLS verification is always
	// on.
	CA string `split_words:"true" desc:"PEM file of CAs trusted for the NATS server certificate (default: the system's)"`
	// Cert and Key: PEM client certificate and key for mutual TLS
	// (INGEST_NATS_CERT, INGEST_NATS_KEY).
	Cert string `split_words:"true" desc:"PEM client certificate for mutual TLS"`
	Key  string `split_words:"true" desc:"PEM key of the client certificate"`
	// InboxPrefix replaces _INBOX for replies (INGEST_NATS_INBOX_PREFIX), so
	// that a user's subscribe permission can be limited to its own replies
	// (for example "_INBOX_worker"); default "_INBOX".
	InboxPrefix string `split_words:"true" desc:"reply subject prefix instead of _INBOX (grant subscribe on <prefix>.> only)"`
	// Name is the connection name shown by the server; default the program's.
	Name string `split_words:"true" desc:"connection name shown by the server"`
	// CoalesceWrites sends the writes made to the connection in one
	// scheduling round with one system call (INGEST_NATS_COALESCE_WRITES);
	// default true (false in a Config built in code). Under load the
	// worker's events, acks and pulls then leave, and are read and stored
	// by the server, several at a time; idle, a write leaves at once.
	// BENCHMARKS.md has the figures.
	CoalesceWrites bool `split_words:"true" default:"true" desc:"send the writes of one scheduling round to NATS together (fewer system calls under load)"`
}

// ReadSecrets reads PasswordFile and TokenFile into Password and Token
// (surrounding white space trimmed) and clears the file fields, so that
// calling it again does nothing. Setting both a secret and its file is an
// error. Errors name the variable and the file, never the secret.
func (c *Config) ReadSecrets() error {
	if err := readSecret("INGEST_NATS_PASSWORD", &c.Password, &c.PasswordFile); err != nil {
		return err
	}
	return readSecret("INGEST_NATS_TOKEN", &c.Token, &c.TokenFile)
}

func readSecret(name string, value, file *string) error {
	if *file == "" {
		return nil
	}
	if *value != "" {
		return fmt.Errorf("%s and %s_FILE are both set: set one", name, name)
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		// The *PathError names the file only.
		return fmt.Errorf("%s_FILE: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("%s_FILE: %s is empty", name, *file)
	}
	*value, *file = s, ""
	return nil
}

// Options returns the nats.Options for c (after ReadSecrets). Reconnects
// are unlimited; a connection that fails at start is not retried.
func (c Config) Options(log *slog.Logger) ([]nats.Option, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.PasswordFile != "" || c.TokenFile != "" {
		return nil, errors.New("nats: secret files not read: call ReadSecrets first")
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	auth, err := c.authOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	tlsOpts, err := c.tlsOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, tlsOpts...)
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.CoalesceWrites {
		opts = append(opts, nats.SetCustomDialer(&coalescingDialer{
			dial: net.Dialer{Timeout: nats.DefaultTimeout}, writeTimeout: nats.DefaultFlusherTimeout,
		}))
	}
	return opts, nil
}

// authOptions returns the option of the one configured credential.
func (c Config) authOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.Nkey != "" {
		o, err := nats.NkeyOptionFromSeed(c.Nkey)
		if err != nil {
			// nkeys errors never quote the seed.
			return nil, fmt.Errorf("nats: nkey seed file %s: %w", c.Nkey, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" || c.Password != "" {
		if c.User == "" || c.Password == "" {
			return nil, errors.New("nats: a user needs both INGEST_NATS_USER and INGEST_NATS_PASSWORD")
		}
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if len(opts) > 1 {
		return nil, errors.New("nats: set only one of creds, nkey, user/password and token")
	}
	return opts, nil
}

// tlsOptions returns the TLS options: TLS 1.2 at least, verification on.
func (c Config) tlsOptions() ([]nats.Option, error) {
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("nats: a client certificate needs both INGEST_NATS_CERT and INGEST_NATS_KEY")
	}
	var opts []nats.Option
	if c.TLS || c.CA != "" || c.Cert != "" {
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.Cert != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	return opts, nil
}

// Connect connects to c.URL (or url when c.URL is empty, for an embedded
// server) with c's options, after reading c's secret files. Its errors
// never hold a secret: user info in the URL is redacted.
func Connect(c Config, url string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if c.URL != "" {
		url = c.URL
	}
	if url == "" {
		return nil, errors.New("nats: no server URL")
	}
	if err := c.ReadSecrets(); err != nil {
		return nil, err
	}
	opts, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w%s", redact(url), err, c.tlsHint(err))
	}
	return nc, nil
}

// tlsHint explains a TLS connection that the server closed: with TLS 1.3
// the client learns that its certificate was refused only as a closed
// connection.
func (c Config) tlsHint(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "tls") || !strings.Contains(msg, "remote") {
		return ""
	}
	if c.Cert == "" {
		return " (the server may require a client certificate: INGEST_NATS_CERT and INGEST_NATS_KEY)"
	}
	return " (the server may not trust the client certificate " + c.Cert + ")"
}

// String describes c without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("{URL:%s Auth:%s TLS:%t CA:%s Cert:%s InboxPrefix:%s Name:%s}",
		redact(c.URL), c.authKind(), c.TLS || c.CA != "" || c.Cert != "", c.CA, c.Cert, c.InboxPrefix, c.Name)
}

// LogValue describes c for slog without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redact(c.URL)),
		slog.String("auth", c.authKind()),
		slog.String("ca", c.CA),
		slog.String("cert", c.Cert),
		slog.String("inboxPrefix", c.InboxPrefix),
	)
}

// authKind names the configured credential: "creds <file>", "nkey <file>",
// "user <name>", "token" or "none".
func (c Config) authKind() string {
	switch {
	case c.Creds != "":
		return "creds " + c.Creds
	case c.Nkey != "":
		return "nkey " + c.Nkey
	case c.User != "":
		return "user " + c.User
	case c.Token != "", c.TokenFile != "":
		return "token"
	case c.PasswordFile != "":
		return "password"
	}
	return "none"
}
