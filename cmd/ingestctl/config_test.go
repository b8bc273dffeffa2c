package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/campaign-ingest/natsconn"
)

// TestConnConfig: the NATS configuration from the flags, INGEST_NATS_*,
// NATS_* and nats CLI contexts (files in a temporary XDG_CONFIG_HOME or
// HOME), the stronger source winning and a credential replacing the
// weaker sources' credentials. In env values and context names, {dir} is
// the test's directory.
func TestConnConfig(t *testing.T) {
	t.Parallel()
	ops := `{"url":"nats://ops:4222","creds":"/ops.creds","inbox_prefix":"_INBOX_ops","description":"ops"}`
	acme := `{"url":"nats://tenant:4222","user":"acme","password":"pw","inbox_prefix":"_INBOX_acme","color_scheme":"dark"}`
	tests := []struct {
		name     string
		env      map[string]string
		contexts map[string]string // name: file content, under {dir}/xdg/nats/context
		selected string            // {dir}/xdg/nats/context.txt
		flags    connFlags
		want     natsconn.Config
	}{
		{name: "defaults", want: natsconn.Config{URL: defaultServer, Name: "ingestctl"}},
		{
			name: "worker's variables",
			env: map[string]string{"INGEST_NATS_URL": "nats://a:4222,nats://b:4222", "INGEST_NATS_TOKEN": "s3cret",
				"INGEST_NATS_CA": "/ca.pem", "INGEST_NATS_NAME": "ops", "INGEST_NATS_INBOX_PREFIX": "_INBOX_ops", "INGEST_NATS_TLS": "true"},
			want: natsconn.Config{URL: "nats://a:4222,nats://b:4222", Token: "s3cret", CA: "/ca.pem", Name: "ops", InboxPrefix: "_INBOX_ops", TLS: true},
		},
		{
			name:  "flags win",
			env:   map[string]string{"INGEST_NATS_URL": "nats://a:4222", "INGEST_NATS_TOKEN": "s3cret", "INGEST_NATS_CA": "/ca.pem"},
			flags: connFlags{server: "nats://c:4222", user: "ops", password: "pw", cert: "/c.pem", key: "/k.pem", inboxPrefix: "_INBOX_x"},
			want:  natsconn.Config{URL: "nats://c:4222", User: "ops", Password: "pw", CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem", InboxPrefix: "_INBOX_x", Name: "ingestctl"},
		},
		{
			name:  "a credential flag replaces the variables' credential",
			env:   map[string]string{"INGEST_NATS_USER": "u", "INGEST_NATS_PASSWORD": "p", "NATS_TOKEN": "t"},
			flags: connFlags{creds: "/x.creds"},
			want:  natsconn.Config{URL: defaultServer, Creds: "/x.creds", Name: "ingestctl"},
		},
		{
			name: "nats CLI variables",
			env: map[string]string{"NATS_URL": "nats://n:4222", "NATS_CREDS": "/n.creds", "NATS_CA": "/n-ca.pem",
				"NATS_CERT": "/n.pem", "NATS_KEY": "/n.key"},
			want: natsconn.Config{URL: "nats://n:4222", Creds: "/n.creds", CA: "/n-ca.pem", Cert: "/n.pem", Key: "/n.key", Name: "ingestctl"},
		},
		{
			name: "INGEST_NATS_* win over NATS_*, and replace their credential",
			env: map[string]string{"NATS_URL": "nats://n:4222", "NATS_USER": "nu", "NATS_PASSWORD": "np", "NATS_CA": "/n-ca.pem",
				"INGEST_NATS_URL": "nats://i:4222", "INGEST_NATS_NKEY": "/i.nk"},
			want: natsconn.Config{URL: "nats://i:4222", Nkey: "/i.nk", CA: "/n-ca.pem", Name: "ingestctl"},
		},
		{
			name:  "the -s flag wins over every variable",
			env:   map[string]string{"NATS_URL": "nats://n:4222", "INGEST_NATS_URL": "nats://i:4222"},
			flags: connFlags{server: "nats://f:4222"},
			want:  natsconn.Config{URL: "nats://f:4222", Name: "ingestctl"},
		},
		{
			name:     "the selected context",
			contexts: map[string]string{"ops": ops, "acme": acme},
			selected: "ops\n",
			want:     natsconn.Config{URL: "nats://ops:4222", Creds: "/ops.creds", InboxPrefix: "_INBOX_ops", Name: "ingestctl"},
		},
		{
			name:     "NATS_CONTEXT wins over the selected context",
			env:      map[string]string{"NATS_CONTEXT": "acme"},
			contexts: map[string]string{"ops": ops, "acme": acme},
			selected: "ops",
			want:     natsconn.Config{URL: "nats://tenant:4222", User: "acme", Password: "pw", InboxPrefix: "_INBOX_acme", Name: "ingestctl"},
		},
		{
			name:     "--context wins over NATS_CONTEXT",
			env:      map[string]string{"NATS_CONTEXT": "acme"},
			contexts: map[string]string{"ops": ops, "acme": acme},
			flags:    connFlags{context: "ops"},
			want:     natsconn.Config{URL: "nats://ops:4222", Creds: "/ops.creds", InboxPrefix: "_INBOX_ops", Name: "ingestctl"},
		},
		{
			name:     "a context by its file's path",
			contexts: map[string]string{"acme": acme},
			flags:    connFlags{context: "{dir}/xdg/nats/context/acme.json"},
			want:     natsconn.Config{URL: "nats://tenant:4222", User: "acme", Password: "pw", InboxPrefix: "_INBOX_acme", Name: "ingestctl"},
		},
		{
			name:     "variables win over the context, which keeps its credential",
			env:      map[string]string{"NATS_URL": "nats://n:4222", "INGEST_NATS_INBOX_PREFIX": "_INBOX_i"},
			contexts: map[string]string{"acme": acme},
			selected: "acme",
			want:     natsconn.Config{URL: "nats://n:4222", User: "acme", Password: "pw", InboxPrefix: "_INBOX_i", Name: "ingestctl"},
		},
		{
			name:     "a variable's credential replaces the context's",
			env:      map[string]string{"NATS_CREDS": "/n.creds"},
			contexts: map[string]string{"acme": acme},
			selected: "acme",
			want:     natsconn.Config{URL: "nats://tenant:4222", Creds: "/n.creds", InboxPrefix: "_INBOX_acme", Name: "ingestctl"},
		},
		{
			name:     "flags win over the context",
			contexts: map[string]string{"acme": acme},
			selected: "acme",
			flags:    connFlags{server: "nats://f:4222", token: "tk", inboxPrefix: "_INBOX_f"},
			want:     natsconn.Config{URL: "nats://f:4222", Token: "tk", InboxPrefix: "_INBOX_f", Name: "ingestctl"},
		},
		{
			name:     "--no-context",
			env:      map[string]string{"NATS_CONTEXT": "acme"},
			contexts: map[string]string{"ops": ops, "acme": acme},
			selected: "ops",
			flags:    connFlags{noContext: true},
			want:     natsconn.Config{URL: defaultServer, Name: "ingestctl"},
		},
		{
			name: "unprefixed variables are not read",
			env:  map[string]string{"USER": "root", "URL": "nats://wrong:1", "PASSWORD": "x"},
			want: natsconn.Config{URL: defaultServer, Name: "ingestctl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			getenv := writeContexts(t, dir, tt.contexts, tt.selected, tt.env)
			flags := tt.flags
			flags.context = strings.ReplaceAll(flags.context, "{dir}", dir)
			got, err := resolveConfig(getenv, flags)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("config\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestConnConfigHome: contexts are found under $HOME/.config/nats when
// XDG_CONFIG_HOME is not set.
func TestConnConfigHome(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "h.json"), []byte(`{"url":"nats://home:4222"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": home, "NATS_CONTEXT": "h"}
	got, err := resolveConfig(func(k string) string { return env[k] }, connFlags{})
	if err != nil || got.URL != "nats://home:4222" {
		t.Errorf("config %+v, %v; want the URL of $HOME/.config/nats/context/h.json", got, err)
	}
}

// TestConnConfigErrors: contexts and variables ingestctl refuses, as
// usage errors.
func TestConnConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		contexts map[string]string
		selected string
		flags    connFlags
		want     string
	}{
		{name: "unknown context", flags: connFlags{context: "nope"}, want: `unknown nats context "nope" (no `},
		{name: "selected context missing", selected: "gone", want: `unknown nats context "gone"`},
		{name: "invalid context name", flags: connFlags{context: "../etc/x"}, want: `nats context "../etc/x": invalid name`},
		{name: "not JSON", contexts: map[string]string{"bad": "{"}, flags: connFlags{context: "bad"}, want: `nats context "bad": `},
		{
			name: "nsc lookup", contexts: map[string]string{"n": `{"nsc":"nsc://op/acc/user"}`}, flags: connFlags{context: "n"},
			want: `nats context "n" sets nsc, which ingestctl does not support`,
		},
		{
			name: "JetStream domain", contexts: map[string]string{"d": `{"url":"nats://x","jetstream_domain":"hub"}`}, env: map[string]string{"NATS_CONTEXT": "d"},
			want: `nats context "d" sets jetstream_domain, which ingestctl does not support`,
		},
		{name: "no configuration directory", env: map[string]string{"XDG_CONFIG_HOME": "", "NATS_CONTEXT": "x"}, want: `no configuration directory (set XDG_CONFIG_HOME or HOME)`},
		{name: "bad INGEST_NATS_TLS", env: map[string]string{"INGEST_NATS_TLS": "maybe"}, want: `INGEST_NATS_TLS="maybe" is not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			getenv := writeContexts(t, t.TempDir(), tt.contexts, tt.selected, tt.env)
			_, err := resolveConfig(getenv, tt.flags)
			if err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != exitUsage {
				t.Errorf("error %v (exit %d), want one containing %q (exit %d)", err, exitCode(err), tt.want, exitUsage)
			}
		})
	}
}

// writeContexts writes nats CLI context files and the selected context
// under dir/xdg and returns an environment with XDG_CONFIG_HOME=dir/xdg
// plus env ({dir} replaced by dir; an empty value unsets).
func writeContexts(t *testing.T, dir string, contexts map[string]string, selected string, env map[string]string) func(string) string {
	t.Helper()
	ctxDir := filepath.Join(dir, "xdg", "nats", "context")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range contexts {
		if err := os.WriteFile(filepath.Join(ctxDir, name+".json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if selected != "" {
		if err := os.WriteFile(filepath.Join(dir, "xdg", "nats", "context.txt"), []byte(selected), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}
	for k, v := range env {
		vars[k] = strings.ReplaceAll(v, "{dir}", dir)
	}
	return func(k string) string { return vars[k] }
}
