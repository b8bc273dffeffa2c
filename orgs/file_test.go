package orgs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme-ims"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		// want is "" for a valid file, else a part of the error.
		want string
	}{
		{name: "full example", file: `
organizations:
  acme:
    imsClientId: 4f1c
    imsClientSecretFile: acme-ims
    apiKey: key-a
    imsScopes: openid,AdobeID,campaign_sdk
    maxInFlight: 20
    apiRateLimit: 5
  globex:
    imsClientId: 9b2e
    imsClientSecret: inline
    imsScopes: [openid, AdobeID]
`},
		{name: "JSON is YAML", file: `{"organizations":{"acme":{"imsClientId":"a","imsClientSecret":"s"}}}`},
		{name: "empty", file: ``, want: "empty"},
		{name: "no organizations key", file: "orgs: {}\n", want: `line 1: field "orgs": unknown`},
		{name: "unknown field names its line", file: "organizations:\n  acme:\n    imsClientId: a\n    imsClientSecret: s\n    maxInflight: 3\n",
			want: "line 5: organizations.acme.maxInflight: unknown field"},
		{name: "missing client id", file: "organizations:\n  acme:\n    imsClientSecret: s\n", want: "line 3: organizations.acme.imsClientId: required"},
		{name: "missing secret", file: "organizations:\n  acme:\n    imsClientId: a\n", want: "organizations.acme.imsClientSecretFile: required"},
		{name: "both secrets", file: "organizations:\n  acme:\n    imsClientId: a\n    imsClientSecretFile: acme-ims\n    imsClientSecret: s\n",
			want: "line 5: organizations.acme.imsClientSecret: set only one"},
		{name: "negative share", file: "organizations:\n  acme:\n    imsClientId: a\n    imsClientSecret: s\n    maxInFlight: -1\n",
			want: "line 5: organizations.acme.maxInFlight: -1"},
		{name: "wrong type names its line", file: "organizations:\n  acme:\n    imsClientId: a\n    imsClientSecret: s\n    maxInFlight: many\n",
			want: "line 5"},
		{name: "invalid organization", file: "organizations:\n  ACME:\n    imsClientId: a\n    imsClientSecret: s\n",
			want: `line 2: organizations: "ACME" is not a valid organization`},
		{name: "missing secret file", file: "organizations:\n  acme:\n    imsClientId: a\n    imsClientSecretFile: nope\n",
			want: "line 4: organizations.acme.imsClientSecretFile:"},
		{name: "not YAML", file: "organizations: [\n", want: "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.file), dir)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Parse error %v, want it to contain %q", err, tt.want)
			case tt.want == "" && len(f.Organizations) == 0:
				t.Fatal("no organizations")
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme-ims"), []byte(" s3cret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte("organizations:\n  acme:\n    imsClientId: id-a\n    imsClientSecretFile: acme-ims\n    maxInFlight: 20\n    imsScopes: ' a, b '\n  globex:\n    imsClientId: id-g\n    imsClientSecret: g\n    apiKey: key-g\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := f.Lookup("acme")
	globex, _ := f.Lookup("globex")
	if acme.Secret() != "s3cret" || acme.Key() != "id-a" || acme.MaxInFlight != 20 || strings.Join(acme.ScopesOr(nil), "|") != "a|b" {
		t.Errorf("acme = %+v", acme)
	}
	if globex.Secret() != "g" || globex.Key() != "key-g" || strings.Join(globex.ScopesOr([]string{"d"}), "|") != "d" {
		t.Errorf("globex = %+v", globex)
	}
	if _, ok := f.Lookup("initech"); ok {
		t.Error("initech found")
	}
}
