// Package natsconn connects the worker and ingestctl to NATS with the same
// settings, read from the same INGEST_NATS_* variables.
package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Config is how to reach NATS. Field docs name the environment variable
// (prefix INGEST_NATS_) and default.
type Config struct {
	// URL: comma-separated server URLs (INGEST_NATS_URL). Empty means the
	// worker starts an embedded server.
	URL string `split_words:"true" desc:"comma-separated NATS server URLs; empty starts an embedded server (worker)"`
	// Creds: a .creds file with a user JWT and nkey seed (INGEST_NATS_CREDS).
	Creds string `split_words:"true" desc:"NATS .creds file (user JWT and nkey seed)"`
	// NKey: a file holding an nkey seed (INGEST_NATS_NKEY).
	Nkey string `split_words:"true" desc:"file holding an NATS nkey seed"`
	// User and Password (INGEST_NATS_USER, INGEST_NATS_PASSWORD).
	User     string `split_words:"true" desc:"NATS user name"`
	Password string `split_words:"true" desc:"NATS password"`
	// Token (INGEST_NATS_TOKEN).
	Token string `split_words:"true" desc:"NATS token"`
	// CA: PEM file of the CAs trusted for the server's certificate
	// (INGEST_NATS_CA). TLS verification is always on.
	CA string `split_words:"true" desc:"PEM file of CAs trusted for the NATS server certificate"`
	// Cert and Key: PEM client certificate and key for mutual TLS
	// (INGEST_NATS_CERT, INGEST_NATS_KEY).
	Cert string `split_words:"true" desc:"PEM client certificate for mutual TLS"`
	Key  string `split_words:"true" desc:"PEM key of the client certificate"`
	// Name is the connection name shown by the server; default the program's.
	Name string `split_words:"true" desc:"connection name shown by the server"`
}

// Options returns the nats.Options for c. Reconnects are unlimited.
func (c Config) Options(log *slog.Logger) ([]nats.Option, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
	auth := 0
	if c.Creds != "" {
		auth++
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.Nkey != "" {
		auth++
		o, err := nats.NkeyOptionFromSeed(c.Nkey)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", c.Nkey, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" || c.Password != "" {
		auth++
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		auth++
		opts = append(opts, nats.Token(c.Token))
	}
	if auth > 1 {
		return nil, errors.New("nats: set only one of creds, nkey, user/password and token")
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("nats: a client certificate needs both cert and key")
	}
	if c.Cert != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	return opts, nil
}

// Connect connects to c.URL (or url when c.URL is empty, for an embedded
// server) with c's options.
func Connect(c Config, url string, log *slog.Logger) (*nats.Conn, error) {
	if c.URL != "" {
		url = c.URL
	}
	if url == "" {
		return nil, errors.New("nats: no server URL")
	}
	opts, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", redact(url), err)
	}
	return nc, nil
}
