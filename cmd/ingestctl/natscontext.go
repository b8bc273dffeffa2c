package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/acme/campaign-ingest/natsconn"
)

// natsContext is a nats CLI context file (<config dir>/nats/context/<name>.json).
// Fields that ingestctl cannot honour are read to refuse them rather than
// connect differently than the nats CLI would.
type natsContext struct {
	URL         string `json:"url"`
	Token       string `json:"token"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`

	NSC              string `json:"nsc"`
	JSDomain         string `json:"jetstream_domain"`
	JSAPIPrefix      string `json:"jetstream_api_prefix"`
	UserJWT          string `json:"user_jwt"`
	SocksProxy       string `json:"socks_proxy"`
	TLSFirst         bool   `json:"tls_first"`
	WindowsCertStore string `json:"windows_cert_store"`
}

// natsConfigDir is the nats CLI's configuration directory:
// $XDG_CONFIG_HOME/nats, else $HOME/.config/nats; "" when neither is set.
func natsConfigDir(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "nats")
	}
	return ""
}

// loadContext returns the settings of the nats CLI context in use: the one
// named by --context, else by NATS_CONTEXT, else the one selected with
// `nats context select` (context.txt). A name may also be the absolute
// path of a context file. No context (the zero Config) with --no-context or
// when none is named or selected.
func loadContext(getenv func(string) string, f connFlags) (natsconn.Config, error) {
	if f.noContext {
		return natsconn.Config{}, nil
	}
	dir := natsConfigDir(getenv)
	name := f.context
	if name == "" {
		name = getenv("NATS_CONTEXT")
	}
	if name == "" && dir != "" {
		name = selectedContext(dir)
	}
	if name == "" {
		return natsconn.Config{}, nil
	}
	path, err := contextPath(dir, name)
	if err != nil {
		return natsconn.Config{}, err
	}
	return readContext(name, path)
}

// selectedContext is the name in <dir>/context.txt, "" when there is none.
func selectedContext(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// contextPath is the file of context name: name itself when it is an
// absolute path, else <dir>/context/<name>.json.
func contextPath(dir, name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	if strings.Contains(name, "..") || strings.ContainsRune(name, os.PathSeparator) || strings.Contains(name, "/") {
		return "", fmt.Errorf("nats context %q: invalid name", name)
	}
	if dir == "" {
		return "", fmt.Errorf("nats context %q: no configuration directory (set XDG_CONFIG_HOME or HOME)", name)
	}
	return filepath.Join(dir, "context", name+".json"), nil
}

// readContext reads a context file.
func readContext(name, path string) (natsconn.Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return natsconn.Config{}, fmt.Errorf("unknown nats context %q (no %s)", name, path)
	}
	if err != nil {
		return natsconn.Config{}, fmt.Errorf("nats context %q: %w", name, err)
	}
	var c natsContext
	if err := json.Unmarshal(b, &c); err != nil {
		return natsconn.Config{}, fmt.Errorf("nats context %q: %s: %w", name, path, err)
	}
	if field := c.unsupported(); field != "" {
		return natsconn.Config{}, fmt.Errorf("nats context %q sets %s, which ingestctl does not support: use a context without it, or --no-context and flags", name, field)
	}
	return natsconn.Config{
		URL: c.URL, Token: c.Token, User: c.User, Password: c.Password, Creds: c.Creds, Nkey: c.NKey,
		Cert: c.Cert, Key: c.Key, CA: c.CA, InboxPrefix: c.InboxPrefix,
	}, nil
}

// unsupported names the first field set that ingestctl cannot honour.
func (c natsContext) unsupported() string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"nsc", c.NSC != ""},
		{"jetstream_domain", c.JSDomain != ""},
		{"jetstream_api_prefix", c.JSAPIPrefix != ""},
		{"user_jwt", c.UserJWT != ""},
		{"socks_proxy", c.SocksProxy != ""},
		{"tls_first", c.TLSFirst},
		{"windows_cert_store", c.WindowsCertStore != ""},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}
