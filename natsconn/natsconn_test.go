package natsconn_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/acme/campaign-ingest/natsconn"
	"github.com/acme/campaign-ingest/natsconn/natsconntest"
	"github.com/acme/campaign-ingest/natsembed"
)

// Secrets of the tests: no error text may hold one.
const (
	password   = "s3cret-Passw0rd-xyzzy"
	badPass    = "wr0ng-Passw0rd-plugh"
	token      = "t0ken-Value-quux-4711"
	badToken   = "t0ken-Wrong-corge-0815"
	userInPass = "url-Passw0rd-grault"
)

// startServer starts a server (without JetStream) configured by cfg.
func startServer(t *testing.T, cfg func(*server.Options)) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: t.TempDir(), LazySync: true, Config: func(o *server.Options) {
		o.JetStream = false
		o.TLSTimeout = 5
		cfg(o)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func TestConnectAuthAndTLS(t *testing.T) {
	pki := natsconntest.NewPKI(t)
	other := natsconntest.NewPKI(t) // a CA the server's certificate is not from
	op := natsconntest.NewOperator(t)
	credsFile, credsSeed := op.UserCreds(t, "worker")
	strangerCreds, strangerSeed := natsconntest.NewOperator(t).UserCreds(t, "stranger")
	nkeyUser, nkeyFile, nkeySeed := natsconntest.NkeyUser(t, nil)
	_, strangerNkey, strangerNkeySeed := natsconntest.NkeyUser(t, nil)
	passFile := natsconntest.WriteFile(t, "password", password+"\n")
	tokenFile := natsconntest.WriteFile(t, "token", token)

	userPass := func(o *server.Options) { o.Username, o.Password = "worker", password }
	withToken := func(o *server.Options) { o.Authorization = token }
	withNkey := func(o *server.Options) { o.Nkeys = []*server.NkeyUser{nkeyUser} }
	withTLS := func(mtls bool) func(*server.Options) {
		return func(o *server.Options) {
			o.TLSConfig, o.TLS, o.TLSVerify = pki.ServerTLS(t, mtls), true, mtls
		}
	}
	both := func(fs ...func(*server.Options)) func(*server.Options) {
		return func(o *server.Options) {
			for _, f := range fs {
				f(o)
			}
		}
	}

	tests := []struct {
		name    string
		server  func(*server.Options)
		client  natsconn.Config
		userURL bool   // put user:userInPass@ in the URL
		wantErr string // "" = connects
	}{
		{name: "no auth", server: func(*server.Options) {}},
		{name: "user and password", server: userPass, client: natsconn.Config{User: "worker", Password: password}},
		{name: "password from file", server: userPass, client: natsconn.Config{User: "worker", PasswordFile: passFile}},
		{name: "wrong password", server: userPass, client: natsconn.Config{User: "worker", Password: badPass}, wantErr: "Authorization Violation"},
		{name: "no credential where one is required", server: userPass, wantErr: "Authorization Violation"},
		{name: "wrong password in the URL", server: userPass, userURL: true, wantErr: "Authorization Violation"},
		{name: "token", server: withToken, client: natsconn.Config{Token: token}},
		{name: "token from file", server: withToken, client: natsconn.Config{TokenFile: tokenFile}},
		{name: "wrong token", server: withToken, client: natsconn.Config{Token: badToken}, wantErr: "Authorization Violation"},
		{name: "nkey seed file", server: withNkey, client: natsconn.Config{Nkey: nkeyFile}},
		{name: "unknown nkey", server: withNkey, client: natsconn.Config{Nkey: strangerNkey}, wantErr: "Authorization Violation"},
		{name: "creds file", server: op.Configure, client: natsconn.Config{Creds: credsFile}},
		{name: "creds of another operator", server: op.Configure, client: natsconn.Config{Creds: strangerCreds}, wantErr: "Authorization Violation"},
		{name: "TLS with the CA", server: withTLS(false), client: natsconn.Config{CA: pki.CAFile}},
		{name: "TLS, system roots only", server: withTLS(false), client: natsconn.Config{TLS: true}, wantErr: "certificate signed by unknown authority"},
		{name: "TLS, untrusted CA", server: withTLS(false), client: natsconn.Config{CA: other.CAFile}, wantErr: "certificate signed by unknown authority"},
		{name: "TLS required by the server, client without TLS settings", server: withTLS(false), wantErr: "certificate signed by unknown authority"},
		{name: "mutual TLS", server: withTLS(true), client: natsconn.Config{CA: pki.CAFile, Cert: pki.ClientCert, Key: pki.ClientKey}},
		{name: "mutual TLS, no client certificate", server: withTLS(true), client: natsconn.Config{CA: pki.CAFile}, wantErr: "the server may require a client certificate"},
		{name: "mutual TLS, client certificate of another CA", server: withTLS(true), client: natsconn.Config{CA: pki.CAFile, Cert: other.ClientCert, Key: other.ClientKey}, wantErr: "the server may not trust the client certificate"},
		{name: "mutual TLS and a password", server: both(withTLS(true), userPass), client: natsconn.Config{CA: pki.CAFile, Cert: pki.ClientCert, Key: pki.ClientKey, User: "worker", Password: password}},
		{name: "mutual TLS and a wrong password", server: both(withTLS(true), userPass), client: natsconn.Config{CA: pki.CAFile, Cert: pki.ClientCert, Key: pki.ClientKey, User: "worker", Password: badPass}, wantErr: "Authorization Violation"},
	}
	secrets := []string{password, badPass, token, badToken, userInPass, string(credsSeed), string(strangerSeed), string(nkeySeed), string(strangerNkeySeed)}
	for _, tt := range tests {
		for _, coalesce := range []bool{false, true} {
			name := tt.name
			if coalesce {
				name += ", writes coalesced"
			}
			t.Run(name, func(t *testing.T) {
				s := startServer(t, tt.server)
				url := s.ClientURL()
				if tt.userURL {
					url = strings.Replace(url, "://", "://worker:"+userInPass+"@", 1)
				}
				var logs bytes.Buffer
				cfg := tt.client
				cfg.URL, cfg.CoalesceWrites = url, coalesce
				nc, err := natsconn.Connect(cfg, "", slog.New(slog.NewJSONHandler(&logs, nil)))
				if err == nil {
					defer nc.Close()
					if err := nc.Flush(); err != nil {
						t.Fatalf("flush: %v", err)
					}
				}
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("Connect: %v", err)
				case tt.wantErr != "" && err == nil:
					t.Fatalf("Connect succeeded, want an error with %q", tt.wantErr)
				case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
					t.Fatalf("Connect: %v\nwant an error with %q", err, tt.wantErr)
				}
				if err != nil {
					assertNoSecret(t, "error", err.Error(), secrets)
					if !strings.Contains(err.Error(), "connect to nats at ") {
						t.Errorf("error %q does not say where it connected", err)
					}
				}
				assertNoSecret(t, "logs", logs.String(), secrets)
			})
		}
	}
}

func assertNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s hold a secret (%.6s…): %s", what, s, text)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	passFile := natsconntest.WriteFile(t, "password", password)
	emptyFile := natsconntest.WriteFile(t, "empty", " \n")
	pki := natsconntest.NewPKI(t)
	tests := []struct {
		name    string
		cfg     natsconn.Config
		wantErr string
	}{
		{"password and password file", natsconn.Config{User: "u", Password: password, PasswordFile: passFile}, "INGEST_NATS_PASSWORD and INGEST_NATS_PASSWORD_FILE are both set"},
		{"token and token file", natsconn.Config{Token: token, TokenFile: passFile}, "INGEST_NATS_TOKEN and INGEST_NATS_TOKEN_FILE are both set"},
		{"missing password file", natsconn.Config{User: "u", PasswordFile: "/nonexistent/pw"}, "INGEST_NATS_PASSWORD_FILE: open /nonexistent/pw"},
		{"empty token file", natsconn.Config{TokenFile: emptyFile}, "INGEST_NATS_TOKEN_FILE: " + emptyFile + " is empty"},
		{"user without password", natsconn.Config{User: "u"}, "needs both INGEST_NATS_USER and INGEST_NATS_PASSWORD"},
		{"password without user", natsconn.Config{Password: password}, "needs both INGEST_NATS_USER and INGEST_NATS_PASSWORD"},
		{"two credentials", natsconn.Config{User: "u", Password: password, Token: token}, "set only one of"},
		{"certificate without key", natsconn.Config{Cert: pki.ClientCert}, "needs both INGEST_NATS_CERT and INGEST_NATS_KEY"},
		{"missing CA file", natsconn.Config{CA: "/nonexistent/ca.pem"}, "rootCA file"},
		{"CA file that is no PEM", natsconn.Config{CA: passFile}, "failed to parse root certificate"},
		{"nkey file that is no seed", natsconn.Config{Nkey: passFile}, "nkey seed file " + passFile},
		{"invalid inbox prefix", natsconn.Config{InboxPrefix: "_INBOX.>"}, "invalid custom prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = "nats://127.0.0.1:1" // never reached
			_, err := natsconn.Connect(cfg, "", nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Connect: %v, want an error with %q", err, tt.wantErr)
			}
			assertNoSecret(t, "error", err.Error(), []string{password, token})
		})
	}
}

func TestReadSecrets(t *testing.T) {
	cfg := natsconn.Config{
		User:         "worker",
		PasswordFile: natsconntest.WriteFile(t, "pw", "  "+password+"\r\n"),
	}
	if err := cfg.ReadSecrets(); err != nil {
		t.Fatal(err)
	}
	if cfg.Password != password || cfg.PasswordFile != "" {
		t.Fatalf("after ReadSecrets: Password %q, PasswordFile %q", cfg.Password, cfg.PasswordFile)
	}
	if err := cfg.ReadSecrets(); err != nil {
		t.Fatalf("second ReadSecrets: %v", err)
	}
	cfg = natsconn.Config{TokenFile: natsconntest.WriteFile(t, "tok", token+"\n")}
	if err := cfg.ReadSecrets(); err != nil || cfg.Token != token {
		t.Fatalf("token file: %v, Token %q", err, cfg.Token)
	}
	if _, err := (natsconn.Config{TokenFile: "x"}).Options(nil); err == nil {
		t.Error("Options with an unread secret file succeeded")
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg := natsconn.Config{
		URL:  "nats://worker:" + userInPass + "@10.0.0.1:4222,tls://" + token + "@10.0.0.2:4222",
		User: "worker", Password: password, Token: badToken, CA: "/etc/ca.pem",
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "nats", cfg)
	texts := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%v of a struct holding it": fmt.Sprintf("%+v", struct {
			NATS natsconn.Config
		}{cfg}),
		"slog": logs.String(),
	}
	for what, s := range texts {
		assertNoSecret(t, what, s, []string{password, token, badToken, userInPass})
		if !strings.Contains(s, "10.0.0.1:4222") {
			t.Errorf("%s does not show the server: %s", what, s)
		}
	}
}
