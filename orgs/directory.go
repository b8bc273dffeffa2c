package orgs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/campaign"
	"github.com/acme/campaign-ingest/ingest"
)

// OtherLabel is the metric label value of every organization that is not
// in the organizations file, so that label values never grow with input.
const OtherLabel = "_other"

// Credential is what one API client is built from.
type Credential struct {
	ClientID string
	// Secret, or SecretFile read at every reload.
	Secret, SecretFile string
	APIKey             string
	Scopes             []string
	// RateLimit is API calls per second; 0 means none.
	RateLimit float64
}

func (c Credential) withSecret() (Credential, error) {
	if c.SecretFile == "" {
		return c, nil
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return c, fmt.Errorf("secret file: %w", err)
	}
	c.Secret = strings.TrimSpace(string(b))
	return c, nil
}

// API is the Campaign client of one credential.
type API = ingest.API

// NewClient builds the API client of a credential.
type NewClient func(Credential) (API, error)

// Config configures a Directory.
type Config struct {
	// File is the organizations file; empty means none: every organization
	// uses Default.
	File string
	// Default is the credential of organizations not in the file; nil
	// means none: their commands are rejected (unknown_organization).
	Default *Credential
	// MaxInFlight is the worker's job slots, the share of an organization
	// without maxInFlight.
	MaxInFlight int
	// NewClient builds API clients; required.
	NewClient NewClient
	// OnReload is called after every reload with its error (nil on
	// success); may be nil.
	OnReload func(error)
	Logger   *slog.Logger
}

// entry is one organization's live state.
type entry struct {
	cred  Credential
	api   API
	limit int
}

// Directory routes each organization's API calls to its own client, and
// tells each organization's share of the jobs and metric label. It
// implements ingest.API. Reload swaps clients whose credential changed;
// running jobs use the new client from their next call on.
type Directory struct {
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	orgs     map[string]*entry
	def      *entry
	names    []string
	stamp    [32]byte
	reloadMu sync.Mutex
}

// New loads the organizations file and builds every client. An invalid file
// is an error.
func New(cfg Config) (*Directory, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Directory{cfg: cfg, log: cfg.Logger, orgs: map[string]*entry{}}
	if err := d.reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// Trigger calls the organization's client.
func (d *Directory) Trigger(ctx context.Context, org, mappingID string) (campaign.TriggerResponse, error) {
	api, err := d.api(org)
	if err != nil {
		return campaign.TriggerResponse{}, err
	}
	return api.Trigger(ctx, org, mappingID)
}

// Status calls the organization's client.
func (d *Directory) Status(ctx context.Context, org, mappingID, requestID string) (campaign.StatusResponse, error) {
	api, err := d.api(org)
	if err != nil {
		return campaign.StatusResponse{}, err
	}
	return api.Status(ctx, org, mappingID, requestID)
}

func (d *Directory) api(org string) (API, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e, ok := d.orgs[org]; ok {
		return e.api, nil
	}
	if d.def != nil {
		return d.def.api, nil
	}
	return nil, fmt.Errorf("organization %q: %w", org, ingest.ErrUnknownOrganization)
}

// Limit is the organization's share of the worker's jobs.
func (d *Directory) Limit(org string) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e, ok := d.orgs[org]; ok && e.limit > 0 {
		return e.limit
	}
	return d.cfg.MaxInFlight
}

// Label is the organization's metric label value: its name when it is in
// the organizations file, else OtherLabel.
func (d *Directory) Label(org string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.orgs[org]; ok {
		return org
	}
	return OtherLabel
}

// Names are the organizations of the file, in its order.
func (d *Directory) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.names)
}

// Reload rereads the organizations file and the secret files, and swaps
// the clients whose credential changed. An invalid file keeps the current
// organizations. It is what SIGHUP does.
func (d *Directory) Reload() error {
	err := d.reload()
	if d.cfg.OnReload != nil {
		d.cfg.OnReload(err)
	}
	if err != nil {
		d.log.Error("organizations not reloaded; keeping the current ones", "err", err)
	}
	return err
}

func (d *Directory) reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	creds := map[string]Credential{}
	limits := map[string]int{}
	var names []string
	if d.cfg.File != "" {
		f, err := Load(d.cfg.File)
		if err != nil {
			return err
		}
		for _, o := range f.Organizations {
			creds[o.Name] = o.credential(d.defaultScopes())
			limits[o.Name] = o.MaxInFlight
			names = append(names, o.Name)
		}
	}
	var def *Credential
	if d.cfg.Default != nil {
		c, err := d.cfg.Default.withSecret()
		if err != nil {
			return fmt.Errorf("default credential: %w", err)
		}
		def = &c
	}
	return d.swap(creds, limits, names, def)
}

func (d *Directory) defaultScopes() []string {
	if d.cfg.Default != nil {
		return d.cfg.Default.Scopes
	}
	return nil
}

// swap builds the clients of new or changed credentials and installs them.
func (d *Directory) swap(creds map[string]Credential, limits map[string]int, names []string, def *Credential) error {
	d.mu.RLock()
	old, oldDef := d.orgs, d.def
	d.mu.RUnlock()
	next := make(map[string]*entry, len(creds))
	var changed []string
	for _, name := range names {
		e, err := d.entryFor(old[name], creds[name])
		if err != nil {
			return fmt.Errorf("organization %s: %w", name, err)
		}
		if old[name] == nil || e != old[name] {
			changed = append(changed, name)
		}
		e = &entry{cred: e.cred, api: e.api, limit: limits[name]}
		next[name] = e
	}
	var nextDef *entry
	if def != nil {
		e, err := d.entryFor(oldDef, *def)
		if err != nil {
			return fmt.Errorf("default credential: %w", err)
		}
		nextDef = e
	}
	d.mu.Lock()
	d.orgs, d.def, d.names = next, nextDef, names
	d.mu.Unlock()
	d.log.Info("organizations loaded", "organizations", names, "newCredentials", changed, "default", def != nil)
	return nil
}

// entryFor returns old when its credential is cred (keeping its token
// cache), else a new entry with a new client.
func (d *Directory) entryFor(old *entry, cred Credential) (*entry, error) {
	if old != nil && credEqual(old.cred, cred) {
		return old, nil
	}
	api, err := d.cfg.NewClient(cred)
	if err != nil {
		return nil, err
	}
	return &entry{cred: cred, api: api}, nil
}

func credEqual(a, b Credential) bool {
	return a.ClientID == b.ClientID && a.Secret == b.Secret && a.APIKey == b.APIKey &&
		slices.Equal(a.Scopes, b.Scopes) && a.RateLimit == b.RateLimit
}

func (o Organization) credential(defScopes []string) Credential {
	return Credential{
		ClientID: o.IMSClientID, Secret: o.secret, APIKey: o.Key(),
		Scopes: o.ScopesOr(defScopes), RateLimit: o.APIRateLimit,
	}
}

// Watch reloads when the organizations file or a secret file it names (or
// the default credential's) changes, checking every interval, until ctx
// ends. Kubernetes updates mounted Secrets and ConfigMaps in place.
func (d *Directory) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	d.stamp = d.fingerprint()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := d.fingerprint(); s != d.stamp {
			d.stamp = s
			d.log.Info("organizations file or secret changed; reloading")
			_ = d.Reload()
		}
	}
}

// fingerprint hashes the content of every file the directory reads.
func (d *Directory) fingerprint() [32]byte {
	h := sha256.New()
	files := []string{d.cfg.File}
	if d.cfg.Default != nil {
		files = append(files, d.cfg.Default.SecretFile)
	}
	if d.cfg.File != "" {
		if f, err := Load(d.cfg.File); err == nil {
			for _, o := range f.Organizations {
				files = append(files, o.secretPath(d.cfg.File))
			}
		}
	}
	for _, p := range files {
		if p == "" {
			continue
		}
		b, _ := os.ReadFile(p)
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}
