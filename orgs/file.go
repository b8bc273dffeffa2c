// Package orgs holds the Campaign organizations a worker serves: their
// credentials (one IMS client and API key each), their share of the
// worker's jobs and their API rate limit, read from the organizations file
// (INGEST_ORGS_FILE) and reloaded when it or a secret file changes.
package orgs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/acme/campaign-ingest/ingest"
)

// Organization is one organization's entry of the organizations file.
type Organization struct {
	// Name is the organization's subject token (the file's key).
	Name string `yaml:"-"`
	// IMSClientID is the OAuth server-to-server client id; required.
	IMSClientID string `yaml:"imsClientId"`
	// IMSClientSecretFile holds the client secret (preferred), or
	// IMSClientSecret the secret itself (discouraged: the file is often not
	// a secret). Exactly one is required.
	IMSClientSecretFile string `yaml:"imsClientSecretFile"`
	IMSClientSecret     string `yaml:"imsClientSecret"`
	// APIKey is sent as X-Api-Key; default IMSClientID.
	APIKey string `yaml:"apiKey"`
	// IMSScopes are the OAuth scopes, a YAML list or a comma-separated
	// string; default INGEST_IMS_SCOPES.
	IMSScopes Scopes `yaml:"imsScopes"`
	// MaxInFlight is the organization's share of the worker's jobs; default
	// (0) the worker's INGEST_MAX_IN_FLIGHT.
	MaxInFlight int `yaml:"maxInFlight"`
	// APIRateLimit is API calls per second for the organization; 0 (the
	// default) means no limit of its own.
	APIRateLimit float64 `yaml:"apiRateLimit"`

	// secret is the client secret, read from IMSClientSecretFile.
	secret string
}

// Secret is the organization's client secret.
func (o Organization) Secret() string { return o.secret }

// ScopesOr returns the organization's scopes, or def when it has none.
func (o Organization) ScopesOr(def []string) []string {
	if len(o.IMSScopes) == 0 {
		return def
	}
	return o.IMSScopes
}

// Scopes are OAuth scopes, written in the file as a YAML list or as one
// comma-separated string.
type Scopes []string

// UnmarshalYAML reads a list or a comma-separated string.
func (s *Scopes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*s = trimScopes(list)
		return nil
	}
	var str string
	if err := n.Decode(&str); err != nil {
		return err
	}
	*s = trimScopes(strings.Split(str, ","))
	return nil
}

func trimScopes(in []string) Scopes {
	var out Scopes
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Key is the organization's X-Api-Key.
func (o Organization) Key() string {
	if o.APIKey != "" {
		return o.APIKey
	}
	return o.IMSClientID
}

// File is a parsed organizations file.
type File struct {
	// Organizations by name, in the file's order.
	Organizations []Organization
}

// Lookup returns the organization named name.
func (f *File) Lookup(name string) (Organization, bool) {
	i := slices.IndexFunc(f.Organizations, func(o Organization) bool { return o.Name == name })
	if i < 0 {
		return Organization{}, false
	}
	return f.Organizations[i], true
}

// knownFields are the fields of an organization's entry.
var knownFields = []string{"imsClientId", "imsClientSecretFile", "imsClientSecret", "apiKey", "imsScopes", "maxInFlight", "apiRateLimit"}

// maxOrganizations bounds the file: metric labels are one per organization.
const maxOrganizations = 1000

// Load reads and validates the organizations file at path, and the secret
// files it names (relative paths are relative to the file's directory).
// An error names the file, the line and the field.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("organizations file: %w", err)
	}
	f, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("organizations file %s: %w", path, err)
	}
	return f, nil
}

// Parse parses and validates an organizations file's content; secret files
// are read relative to dir.
func Parse(b []byte, dir string) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty: want a mapping with an organizations key")
	}
	root := doc.Content[0]
	orgsNode, err := organizationsNode(root)
	if err != nil {
		return nil, err
	}
	f := &File{}
	for i := 0; i+1 < len(orgsNode.Content); i += 2 {
		name, body := orgsNode.Content[i], orgsNode.Content[i+1]
		o, err := parseOrganization(name, body, dir)
		if err != nil {
			return nil, err
		}
		f.Organizations = append(f.Organizations, o)
	}
	if len(f.Organizations) > maxOrganizations {
		return nil, fmt.Errorf("line %d: organizations: %d entries, at most %d", orgsNode.Line, len(f.Organizations), maxOrganizations)
	}
	return f, nil
}

func organizationsNode(root *yaml.Node) (*yaml.Node, error) {
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with an organizations key", root.Line)
	}
	var found *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value != "organizations" {
			return nil, fmt.Errorf("line %d: field %q: unknown (want organizations)", k.Line, k.Value)
		}
		found = root.Content[i+1]
	}
	if found == nil {
		return nil, fmt.Errorf("line %d: field organizations: missing", root.Line)
	}
	if found.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: field organizations: want a mapping of organization names", found.Line)
	}
	return found, nil
}

func parseOrganization(name, body *yaml.Node, dir string) (Organization, error) {
	at := func(n *yaml.Node, field, format string, args ...any) error {
		return fmt.Errorf("line %d: organizations.%s.%s: %s", n.Line, name.Value, field, fmt.Sprintf(format, args...))
	}
	if !ingest.ValidOrganization(name.Value) {
		return Organization{}, fmt.Errorf("line %d: organizations: %q is not a valid organization (lower-case letters, digits and '-', at most 63)", name.Line, ingest.Bounded(name.Value, 64))
	}
	if body.Kind != yaml.MappingNode {
		return Organization{}, fmt.Errorf("line %d: organizations.%s: want a mapping", body.Line, name.Value)
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		if k := body.Content[i]; !slices.Contains(knownFields, k.Value) {
			return Organization{}, at(k, ingest.Bounded(k.Value, 64), "unknown field (known: %s)", strings.Join(knownFields, ", "))
		}
	}
	o := Organization{Name: name.Value}
	if err := body.Decode(&o); err != nil {
		return Organization{}, fmt.Errorf("organizations.%s: %w", name.Value, err)
	}
	field := func(key string) *yaml.Node {
		for i := 0; i+1 < len(body.Content); i += 2 {
			if body.Content[i].Value == key {
				return body.Content[i+1]
			}
		}
		return body
	}
	switch {
	case o.IMSClientID == "":
		return o, at(body, "imsClientId", "required")
	case o.IMSClientSecretFile == "" && o.IMSClientSecret == "":
		return o, at(body, "imsClientSecretFile", "required (or imsClientSecret)")
	case o.IMSClientSecretFile != "" && o.IMSClientSecret != "":
		return o, at(field("imsClientSecret"), "imsClientSecret", "set only one of imsClientSecretFile and imsClientSecret")
	case o.MaxInFlight < 0:
		return o, at(field("maxInFlight"), "maxInFlight", "%d: want 0 (the worker's) or more", o.MaxInFlight)
	case o.APIRateLimit < 0:
		return o, at(field("apiRateLimit"), "apiRateLimit", "%g: want 0 (no limit) or more", o.APIRateLimit)
	}
	o.secret = o.IMSClientSecret
	if o.IMSClientSecretFile != "" {
		p := o.IMSClientSecretFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return o, at(field("imsClientSecretFile"), "imsClientSecretFile", "%v", err)
		}
		if o.secret = strings.TrimSpace(string(b)); o.secret == "" {
			return o, at(field("imsClientSecretFile"), "imsClientSecretFile", "%s is empty", p)
		}
	}
	return o, nil
}

// secretPath is the secret file's path as Load reads it, or "".
func (o Organization) secretPath(file string) string {
	if o.IMSClientSecretFile == "" || filepath.IsAbs(o.IMSClientSecretFile) {
		return o.IMSClientSecretFile
	}
	return filepath.Join(filepath.Dir(file), o.IMSClientSecretFile)
}
