package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOrgs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("acme-ims", "top-secret\n")
	good := write("good.yaml", "organizations:\n  acme:\n    imsClientId: id-a\n    imsClientSecretFile: acme-ims\n    maxInFlight: 20\n  globex:\n    imsClientId: id-g\n    imsClientSecret: inline-secret\n    apiRateLimit: 5\n")
	bad := write("bad.yaml", "organizations:\n  acme:\n    imsClientId: id-a\n    imsClientSecret: s\n    maxInflight: 20\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // parts of stdout
		stderr string   // part of stderr
	}{
		{name: "valid file", args: []string{good}, code: exitOK, stdout: []string{"acme", "id-a", "20", "globex", "5/s"}},
		{name: "invalid file names line and field", args: []string{bad}, code: exitUsage, stderr: "line 5: organizations.acme.maxInflight: unknown field"},
		{name: "no file", args: nil, code: exitUsage, stderr: "want one organizations FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"check-orgs"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			for _, secret := range []string{"top-secret", "inline-secret"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output shows the secret %q", secret)
				}
			}
		})
	}
}
