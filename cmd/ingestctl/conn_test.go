package main

import (
	"testing"

	"github.com/acme/campaign-ingest/natsconn"
)

// TestConnConfig: INGEST_NATS_* as the worker reads them, flags winning,
// an authentication flag replacing every authentication variable.
// (Not parallel: it sets the environment.)
func TestConnConfig(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		flags connFlags
		want  natsconn.Config
	}{
		{name: "defaults", want: natsconn.Config{URL: defaultServer, Name: "ingestctl"}},
		{
			name: "environment",
			env: map[string]string{"INGEST_NATS_URL": "nats://a:4222,nats://b:4222", "INGEST_NATS_TOKEN": "s3cret",
				"INGEST_NATS_CA": "/ca.pem", "INGEST_NATS_NAME": "ops"},
			want: natsconn.Config{URL: "nats://a:4222,nats://b:4222", Token: "s3cret", CA: "/ca.pem", Name: "ops"},
		},
		{
			name:  "flags win",
			env:   map[string]string{"INGEST_NATS_URL": "nats://a:4222", "INGEST_NATS_TOKEN": "s3cret", "INGEST_NATS_CA": "/ca.pem"},
			flags: connFlags{server: "nats://c:4222", user: "ops", password: "pw", cert: "/c.pem", key: "/k.pem"},
			want:  natsconn.Config{URL: "nats://c:4222", User: "ops", Password: "pw", CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem", Name: "ingestctl"},
		},
		{
			name:  "creds flag",
			env:   map[string]string{"INGEST_NATS_USER": "u", "INGEST_NATS_PASSWORD": "p"},
			flags: connFlags{creds: "/x.creds"},
			want:  natsconn.Config{URL: defaultServer, Creds: "/x.creds", Name: "ingestctl"},
		},
		{
			name: "an unprefixed variable is not read",
			env:  map[string]string{"USER": "root", "URL": "nats://wrong:1"},
			want: natsconn.Config{URL: defaultServer, Name: "ingestctl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"URL", "CREDS", "NKEY", "USER", "PASSWORD", "TOKEN", "CA", "CERT", "KEY", "NAME"} {
				t.Setenv("INGEST_NATS_"+k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := tt.flags.config()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("config\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
