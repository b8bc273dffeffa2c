package campaign

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
)

// maxRedirects is the most redirects followed in a row (same scheme and
// host only).
const maxRedirects = 5

// NewTransport returns the client's default transport: a clone of
// http.DefaultTransport with MaxConnsPerHost and MaxIdleConnsPerHost 64,
// TLS 1.2 at least, and rootCAs as the trusted roots when not nil (nil: the
// system's roots). Use it as the base when wrapping a transport (for
// metrics) that goes into [Config.Transport].
func NewTransport(rootCAs *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost = 64
	t.MaxIdleConnsPerHost = 64
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rootCAs}
	return t
}

// transportFor returns the transport to use for cfg.
func transportFor(cfg *Config) (http.RoundTripper, error) {
	switch t := cfg.Transport.(type) {
	case nil:
		return NewTransport(cfg.RootCAs), nil
	case *http.Transport:
		if t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
			return nil, fmt.Errorf("campaign: transport skips TLS verification")
		}
		if cfg.RootCAs == nil {
			return t, nil
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = cfg.RootCAs
		return t, nil
	default:
		if cfg.RootCAs != nil {
			return nil, fmt.Errorf("campaign: RootCAs needs Transport nil or an *http.Transport; build the base with NewTransport")
		}
		return t, nil
	}
}

// checkRedirect refuses redirects to another scheme or host, so that
// credentials (the Authorization and X-Api-Key headers, the client secret
// in a token request's body) never go anywhere but where they were sent.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d", ErrRedirect, maxRedirects)
	}
	from := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, from.Scheme) || !strings.EqualFold(req.URL.Host, from.Host) {
		return fmt.Errorf("%w: from %s://%s to %s://%s", ErrRedirect, from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}
