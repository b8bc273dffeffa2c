package campaign

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// Defaults of [Config].
const (
	DefaultBaseURL      = "https://mc.adobe.io"
	DefaultTokenURL     = "https://ims-na1.adobelogin.com/ims/token/v3"
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20
)

// Config configures a [Client]. The zero value of every field but the
// credential is usable.
type Config struct {
	// BaseURL is the API's base; default "https://mc.adobe.io". Calls go to
	// BaseURL + "/" + org + "/campaign/dataIngestion/xdmIngestion/" +
	// mappingId + "/ingest", each segment escaped. It must be an absolute
	// http or https URL without user info, query or fragment.
	BaseURL string
	// APIKey is sent as X-Api-Key; default IMS.ClientID. Required when
	// TokenSource is set.
	APIKey string
	// IMS is the OAuth server-to-server credential, used when TokenSource is
	// nil.
	IMS IMSConfig
	// TokenSource, if set, replaces IMS: the client calls it for every API
	// call (it should cache) and once more after a 401.
	TokenSource oauth2.TokenSource
	// Transport is the base transport of API and token requests; default
	// NewTransport(RootCAs). Requests carry their operation in their
	// context (see [Operation]).
	Transport http.RoundTripper
	// Timeout bounds every request (API and token), body included; default
	// 10s.
	Timeout time.Duration
	// MaxBodyBytes caps the answers read; default 1 MiB. A larger 2xx body
	// is an ErrMalformed error.
	MaxBodyBytes int64
	// RateLimit limits API calls (not token requests) per second; 0 means
	// no limit. Calls wait for their turn, or for their context.
	RateLimit rate.Limit
	// RateBurst is the limiter's burst; default 1 when RateLimit > 0.
	RateBurst int
	// RootCAs, if set, are the roots trusted for TLS (instead of the
	// system's), for private gateways. It applies to the default transport
	// or to an *http.Transport given as Transport (cloned); New fails if
	// Transport is some other RoundTripper. TLS verification is always on.
	RootCAs *x509.CertPool
}

// IMSConfig is an Adobe IMS OAuth server-to-server credential.
type IMSConfig struct {
	// TokenURL defaults to "https://ims-na1.adobelogin.com/ims/token/v3".
	TokenURL string
	// ClientID and ClientSecret are the credential; both required.
	ClientID, ClientSecret string
	// Scopes are sent comma-separated in the scope parameter, as IMS wants.
	Scopes []string
}

// Client calls the Campaign Standard XDM ingestion API. It is safe for
// concurrent use. It never retries by itself except once after a 401 (or a
// 403 403010/403020) with a fresh token: 429s, 5xx and network errors are
// returned for the caller to schedule (see [Retryable], [RetryAfterOf]).
type Client struct {
	prefix string // scheme://host/basepath, no trailing slash
	apiKey string
	tokens tokens
	http   *http.Client
	// timeout bounds one API request, body included, as its context's
	// deadline rather than http.Client.Timeout: with a wrapped transport
	// (metrics, a caller's), Client.Timeout costs a goroutine and a timer
	// per request.
	timeout time.Duration
	limiter *rate.Limiter
	maxBody int64
	redact  redactor
	now     func() time.Time
	// values are the header values of the last token used.
	values atomic.Pointer[headerValues]
}

// headerValues are the values of an API call's headers with one token.
type headerValues struct {
	token string
	v     [4]string
}

// New returns a client for cfg. It makes no request.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	prefix, err := basePrefix(base)
	if err != nil {
		return nil, err
	}
	rt, err := transportFor(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c := &Client{
		prefix:  prefix,
		apiKey:  cfg.APIKey,
		http:    &http.Client{Transport: rt, CheckRedirect: checkRedirect},
		timeout: cfg.Timeout,
		maxBody: cfg.MaxBodyBytes,
		redact:  redactor{cfg.IMS.ClientSecret},
		now:     time.Now,
	}
	if cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(cfg.RateLimit, max(cfg.RateBurst, 1))
	}
	switch {
	case cfg.TokenSource != nil:
		if c.apiKey == "" {
			return nil, errors.New("campaign: APIKey is required with a TokenSource")
		}
		c.tokens = staticTokens{cfg.TokenSource}
	case cfg.IMS.ClientID == "" || cfg.IMS.ClientSecret == "":
		return nil, errors.New("campaign: IMS.ClientID and IMS.ClientSecret are required without a TokenSource")
	default:
		ims := cfg.IMS
		if ims.TokenURL == "" {
			ims.TokenURL = DefaultTokenURL
		}
		if _, err := basePrefix(ims.TokenURL); err != nil {
			return nil, fmt.Errorf("campaign: IMS.TokenURL: %w", err)
		}
		if c.apiKey == "" {
			c.apiKey = ims.ClientID
		}
		tokenHTTP := &http.Client{Transport: rt, Timeout: cfg.Timeout, CheckRedirect: checkRedirect}
		c.tokens = newCachedTokens(newIMSFetcher(ims, tokenHTTP).fetch)
	}
	return c, nil
}

// basePrefix checks a base URL and returns it as scheme://host/path without
// a trailing slash.
func basePrefix(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("campaign: base URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("campaign: base URL %q: scheme must be http or https", raw)
	case u.Host == "", u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "":
		return "", fmt.Errorf("campaign: base URL %q: want scheme://host[/path] only", raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// Trigger asks for an immediate ingestion of the mapping:
// POST /{org}/campaign/dataIngestion/xdmIngestion/{mappingID}/ingest.
// A business answer (Success, In Progress, Failed, or a status the client
// does not know) is returned with a nil error, whatever its HTTP status;
// see [TriggerResponse.Kind]. Errors are *APIError.
func (c *Client) Trigger(ctx context.Context, org, mappingID string) (TriggerResponse, error) {
	u, err := c.endpoint(org, mappingID, "")
	if err != nil {
		return TriggerResponse{}, &APIError{Operation: OpTrigger, Err: err}
	}
	return call(ctx, c, OpTrigger, http.MethodPost, u, DecodeTrigger)
}

// Status returns the state of an ingestion request:
// GET /{org}/campaign/dataIngestion/xdmIngestion/{mappingID}/ingest?requestId=….
// A business answer (Success, Failed, Aborted, In Progress, or a status the
// client does not know) is returned with a nil error, whatever its HTTP
// status. Errors are *APIError.
func (c *Client) Status(ctx context.Context, org, mappingID, requestID string) (StatusResponse, error) {
	if requestID == "" {
		return StatusResponse{}, &APIError{Operation: OpStatus, Err: fmt.Errorf("%w: empty request id", ErrInvalidArgument)}
	}
	u, err := c.endpoint(org, mappingID, requestID)
	if err != nil {
		return StatusResponse{}, &APIError{Operation: OpStatus, Err: err}
	}
	return call(ctx, c, OpStatus, http.MethodGet, u, DecodeStatus)
}

// endpoint returns the URL of the ingest resource of org/mappingID, each an
// escaped path segment, with ?requestId= when requestID is not empty.
func (c *Client) endpoint(org, mappingID, requestID string) (string, error) {
	if err := checkSegment("organization", org); err != nil {
		return "", err
	}
	if err := checkSegment("mapping id", mappingID); err != nil {
		return "", err
	}
	u := c.prefix + "/" + url.PathEscape(org) + "/campaign/dataIngestion/xdmIngestion/" + url.PathEscape(mappingID) + "/ingest"
	if requestID != "" {
		u += "?requestId=" + url.QueryEscape(requestID) // as url.Values would encode it
	}
	return u, nil
}

// checkSegment refuses values that cannot be one path segment even when
// escaped: empty, "." and "..".
func checkSegment(what, s string) error {
	switch s {
	case "", ".", "..":
		return fmt.Errorf("%w: %s %q", ErrInvalidArgument, what, s)
	}
	return nil
}

// answer is an API answer read in full (up to the cap).
type answer struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool
	token    string // the access token the request carried
}

// call sends one API request and, after a 401 (or a 403 403010/403020),
// fetches a fresh token and sends it once more.
func call[T interface{ apiStatus() Status }](ctx context.Context, c *Client, op, method, u string, decode func([]byte) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		a, err := c.send(ctx, op, method, u)
		if err != nil {
			return zero, err
		}
		v, err := interpret(c, op, a, decode)
		if attempt == 0 && Unauthorized(err) {
			c.tokens.invalidate(a.token)
			continue
		}
		return v, err
	}
}

// interpret turns an answer into a business result or an *APIError.
func interpret[T interface{ apiStatus() Status }](c *Client, op string, a *answer, decode func([]byte) (T, error)) (T, error) {
	var zero T
	if a.status >= 200 && a.status < 300 {
		if a.tooLarge {
			return zero, &APIError{Operation: op, StatusCode: a.status,
				Err: fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, c.maxBody)}
		}
		v, err := decode(a.body)
		if err != nil {
			return zero, &APIError{Operation: op, StatusCode: a.status, Err: err}
		}
		return v, nil
	}
	// "Do not assume Failed comes as 200": a documented business answer is
	// one whatever its HTTP status.
	if v, err := decode(a.body); err == nil && v.apiStatus().Known() {
		return v, nil
	}
	return zero, c.httpError(op, a)
}

// httpError builds the error of a non-2xx answer.
func (c *Client) httpError(op string, a *answer) *APIError {
	e := &APIError{
		Operation:  op,
		StatusCode: a.status,
		RetryAfter: parseRetryAfter(a.header.Get("Retry-After"), c.now()),
	}
	if g, ok := decodeGatewayError(a.body); ok {
		e.ErrorCode = c.redact.code(g.ErrorCode, a.token)
		e.Message = c.redact.redact(g.Message, a.token)
	} else {
		e.Message = c.redact.redact(snippet(a.body), a.token)
	}
	return e
}

// send waits for the rate limiter, gets a token and sends one request.
func (c *Client) send(ctx context.Context, op, method, u string) (*answer, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, &APIError{Operation: op, Message: "waiting for the rate limiter", Err: err, abandoned: true}
		}
	}
	tok, err := c.tokens.token(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(withOperation(ctx, op), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u, http.NoBody)
	if err != nil {
		return nil, &APIError{Operation: op, Err: fmt.Errorf("%w: %v", ErrInvalidArgument, err)}
	}
	req.Header = c.headers(tok.AccessToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	a := &answer{status: resp.StatusCode, header: resp.Header, token: tok.AccessToken}
	a.body, err = readBody(resp, c.maxBody+1)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	if int64(len(a.body)) > c.maxBody {
		a.body, a.tooLarge = a.body[:c.maxBody], true
	}
	return a, nil
}

// headers are the headers of an API call, the documented four: one map per
// request over the values of the token, made once per token (the slices
// have no spare capacity, so that nothing can append into them).
func (c *Client) headers(token string) http.Header {
	hv := c.values.Load()
	if hv == nil || hv.token != token {
		hv = &headerValues{token: token, v: [4]string{"Bearer " + token, c.apiKey, "no-cache", "application/json"}}
		c.values.Store(hv)
	}
	v := &hv.v
	return http.Header{
		"Authorization": v[0:1:1],
		"X-Api-Key":     v[1:2:2],
		"Cache-Control": v[2:3:3],
		"Content-Type":  v[3:4:4],
	}
}

// readBody reads at most limit bytes of resp's body, into a buffer of the
// announced length when the server announced one within the limit.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n < limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// transportError builds the error of a request that got no (complete)
// answer.
func (c *Client) transportError(ctx context.Context, op string, err error) *APIError {
	if ctx.Err() != nil {
		return &APIError{Operation: op, Message: "request abandoned", Err: ctx.Err(), abandoned: true}
	}
	return &APIError{Operation: op, Message: "request failed", Err: err}
}
