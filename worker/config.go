// Package worker wires the worker's parts together: configuration, the NATS
// connection, the JetStream layout, the Campaign client, the consumer and
// the metrics server. cmd/ingest-worker, the tests and the benchmark run
// it; development tools (an embedded NATS server, the simulator) are
// started by cmd/ingest-worker, not here.
package worker

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/acme/campaign-ingest/ingest"
	"github.com/acme/campaign-ingest/natsconn"
)

// Config is the worker's configuration, read from INGEST_* variables
// (`ingest-worker -h` prints them with their defaults).
type Config struct {
	NATS natsconn.Config `split_words:"true"`

	CampaignURL     string        `split_words:"true" default:"https://mc.adobe.io" desc:"Campaign API base; /<org>/campaign/... is appended"`
	CampaignCA      string        `split_words:"true" desc:"PEM file of CAs trusted for the Campaign API and IMS besides the system's (private gateways)"`
	IMS             IMS           `split_words:"true"`
	APIKey          string        `split_words:"true" desc:"X-Api-Key; default the client id"`
	APITimeout      time.Duration `split_words:"true" default:"10s" desc:"timeout of one API or token call"`
	APIRetries      int           `split_words:"true" default:"4" desc:"calls of one operation within a delivery when the API fails transiently"`
	APIRetryInitial time.Duration `split_words:"true" default:"1s" desc:"first backoff between those calls (Retry-After wins)"`
	APIRetryMax     time.Duration `split_words:"true" default:"30s" desc:"largest backoff between those calls"`
	APIRateLimit    float64       `split_words:"true" default:"0" desc:"API calls per second per worker and credential; 0 = unlimited"`

	OrgsFile        string        `split_words:"true" desc:"YAML file of Campaign organizations: per-organization IMS credential, maxInFlight, apiRateLimit (docs/organizations.md); an organization not in it uses INGEST_IMS_* when set, else its commands are rejected (unknown_organization)"`
	OrgsReloadEvery time.Duration `split_words:"true" default:"10s" desc:"how often the organizations file and the secret files are checked for changes (SIGHUP reloads at once)"`
	MaxParked       int           `split_words:"true" default:"10000" desc:"commands a worker holds while their organization has used its maxInFlight, so that its backlog never delays another organization's commands"`
	StallAfter      time.Duration `split_words:"true" default:"30s" desc:"/healthz fails when pulls have failed for this long"`

	HTTPAddr string `split_words:"true" default:":8080" desc:"/metrics, /healthz, /readyz and the status page"`
	Pprof    bool   `split_words:"true" default:"false" desc:"serve /debug/pprof/ on INGEST_HTTP_ADDR"`
	LogLevel string `split_words:"true" default:"info" desc:"debug, info, warn or error"`

	MaxInFlight     int           `split_words:"true" default:"100" desc:"concurrent jobs per worker"`
	PollInitial     time.Duration `split_words:"true" default:"5s" desc:"status polling: an immediate check, the next 1.5x this after the trigger, then each at 1.5x the time since the trigger"`
	PollMax         time.Duration `split_words:"true" default:"60s" desc:"largest wait between status checks (waits have -10% jitter)"`
	JobTimeout      time.Duration `split_words:"true" default:"6h" desc:"default and largest job deadline, from the command's publication"`
	AckWait         time.Duration `split_words:"true" default:"30s" desc:"consumer AckWait; running jobs send InProgress every AckWait/3"`
	MaxDeliver      int           `split_words:"true" default:"10" desc:"consumer MaxDeliver; the last delivery ends in a terminal event"`
	MaxAckPending   int           `split_words:"true" default:"10000" desc:"consumer MaxAckPending, across all replicas"`
	RedeliverDelay  time.Duration `split_words:"true" default:"15s" desc:"delay of a command handed back because the API is unavailable"`
	BusyPolicy      string        `split_words:"true" default:"wait" desc:"mapping already ingesting: wait for it then trigger, or attach to it"`
	ResubmitAborted int           `split_words:"true" default:"1" desc:"automatic resubmits after Aborted"`

	CreateStreams bool          `split_words:"true" default:"true" desc:"create or update streams, consumer and bucket at start; false only checks them"`
	Replicas      int           `split_words:"true" default:"1" desc:"replicas of streams, consumer and bucket (3 on a JetStream cluster)"`
	JobTTL        time.Duration `split_words:"true" default:"168h" desc:"how long job state is kept in INGEST_JOBS"`
	EventsMaxAge  time.Duration `split_words:"true" default:"168h" desc:"retention of INGEST_EVENTS"`
}

// IMS is the OAuth server-to-server credential (INGEST_IMS_*).
type IMS struct {
	URL              string   `split_words:"true" default:"https://ims-na1.adobelogin.com/ims/token/v3" desc:"Adobe IMS token endpoint"`
	ClientID         string   `split_words:"true" desc:"OAuth server-to-server client id"`
	ClientSecret     string   `split_words:"true" desc:"OAuth client secret (or INGEST_IMS_CLIENT_SECRET_FILE)"`
	ClientSecretFile string   `split_words:"true" desc:"file holding the OAuth client secret"`
	Scopes           []string `split_words:"true" desc:"comma-separated OAuth scopes"`
}

// Validate checks values envconfig cannot, and reads secret files.
func (c *Config) Validate() error {
	switch ingest.BusyPolicy(c.BusyPolicy) {
	case ingest.BusyWait, ingest.BusyAttach:
	default:
		return fmt.Errorf("INGEST_BUSY_POLICY=%q: want wait or attach", c.BusyPolicy)
	}
	if c.MaxInFlight < 1 {
		return fmt.Errorf("INGEST_MAX_IN_FLIGHT=%d: want at least 1", c.MaxInFlight)
	}
	if c.MaxDeliver < 2 {
		return fmt.Errorf("INGEST_MAX_DELIVER=%d: want at least 2 so that a job can be handed back", c.MaxDeliver)
	}
	if c.AckWait < 3*time.Second {
		return fmt.Errorf("INGEST_ACK_WAIT=%s: want at least 3s", c.AckWait)
	}
	if c.ResubmitAborted < 0 {
		return fmt.Errorf("INGEST_RESUBMIT_ABORTED=%d: want 0 or more", c.ResubmitAborted)
	}
	if err := c.NATS.ReadSecrets(); err != nil {
		return err
	}
	if c.IMS.ClientSecretFile != "" {
		b, err := os.ReadFile(c.IMS.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("INGEST_IMS_CLIENT_SECRET_FILE: %w", err)
		}
		c.IMS.ClientSecret = strings.TrimSpace(string(b))
	}
	if c.NATS.URL == "" {
		return errors.New("INGEST_NATS_URL is required (ingest-worker starts an embedded server with INGEST_EMBEDDED_NATS=true, or INGEST_SIMULATE=true to try it offline)")
	}
	if c.OrgsFile == "" && (c.IMS.ClientID == "" || c.IMS.ClientSecret == "") {
		return errors.New("INGEST_IMS_CLIENT_ID and INGEST_IMS_CLIENT_SECRET are required without INGEST_ORGS_FILE (or INGEST_SIMULATE=true to try the worker offline)")
	}
	if (c.IMS.ClientID == "") != (c.IMS.ClientSecret == "") {
		return errors.New("INGEST_IMS_CLIENT_ID and INGEST_IMS_CLIENT_SECRET go together")
	}
	if c.OrgsReloadEvery <= 0 {
		return fmt.Errorf("INGEST_ORGS_RELOAD_EVERY=%s: want more than 0", c.OrgsReloadEvery)
	}
	return nil
}

// campaignRoots returns the roots trusted for the Campaign API and IMS:
// nil (the system's) without CampaignCA, else the system's plus its
// certificates.
func (c *Config) campaignRoots() (*x509.CertPool, error) {
	if c.CampaignCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.CampaignCA)
	if err != nil {
		return nil, fmt.Errorf("INGEST_CAMPAIGN_CA: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("INGEST_CAMPAIGN_CA: no PEM certificate in %s", c.CampaignCA)
	}
	return pool, nil
}

// String describes the credential without its secret.
func (i IMS) String() string {
	return fmt.Sprintf("{URL:%s ClientID:%s ClientSecret:[redacted] ClientSecretFile:%s Scopes:%v}", i.URL, i.ClientID, i.ClientSecretFile, i.Scopes)
}

// DefaultConfig returns the configuration with every documented default
// and nothing read from the environment.
func DefaultConfig() Config {
	var c Config
	// No variable has this prefix: envconfig applies the defaults only.
	if err := envconfig.Process("ingest_defaults_only_", &c); err != nil {
		panic(fmt.Sprintf("worker: defaults do not parse: %v", err))
	}
	return c
}
