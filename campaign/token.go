package campaign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// maxEarlyExpiry is how long before its expiry a cached token is replaced:
// 5 minutes, or a quarter of the token's lifetime if that is shorter.
const maxEarlyExpiry = 5 * time.Minute

// tokens hands out access tokens for API calls.
type tokens interface {
	// token returns a token to send, fetching one if none is cached.
	token(ctx context.Context) (*oauth2.Token, error)
	// invalidate drops access from the cache, if it is the cached token, so
	// that the next token call fetches a fresh one.
	invalidate(access string)
}

// staticTokens calls a caller-supplied TokenSource every time (it does its
// own caching, if any).
type staticTokens struct{ src oauth2.TokenSource }

func (s staticTokens) token(ctx context.Context) (*oauth2.Token, error) {
	t, err := s.src.Token()
	if err != nil {
		return nil, sourceError(err, time.Now())
	}
	if t == nil || t.AccessToken == "" {
		return nil, &APIError{Operation: OpToken, Err: fmt.Errorf("%w: empty access token", ErrMalformed)}
	}
	return t, nil
}

func (staticTokens) invalidate(string) {}

// cachedTokens caches the token of fetch until shortly before it expires.
// One fetch runs at a time; concurrent callers wait for it (or for their
// context).
type cachedTokens struct {
	fetch func(ctx context.Context) (*oauth2.Token, error)
	now   func() time.Time
	sem   chan struct{} // a 1-slot semaphore around fetches

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time // zero: never (the token has no expiry)
}

func newCachedTokens(fetch func(context.Context) (*oauth2.Token, error)) *cachedTokens {
	return &cachedTokens{fetch: fetch, now: time.Now, sem: make(chan struct{}, 1)}
}

func (c *cachedTokens) token(ctx context.Context) (*oauth2.Token, error) {
	if t := c.cached(); t != nil {
		return t, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &APIError{Operation: OpToken, Message: "waiting for a token", Err: ctx.Err(), abandoned: true}
	}
	defer func() { <-c.sem }()
	if t := c.cached(); t != nil {
		return t, nil
	}
	t, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	c.store(t)
	return t, nil
}

func (c *cachedTokens) cached() *oauth2.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == nil || (!c.refreshAt.IsZero() && !c.now().Before(c.refreshAt)) {
		return nil
	}
	return c.tok
}

func (c *cachedTokens) store(t *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tok, c.refreshAt = t, time.Time{}
	if !t.Expiry.IsZero() {
		early := min(maxEarlyExpiry, t.Expiry.Sub(c.now())/4)
		c.refreshAt = t.Expiry.Add(-early)
	}
}

func (c *cachedTokens) invalidate(access string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == access {
		c.tok = nil
	}
}

// imsFetcher fetches tokens from Adobe IMS with the OAuth client credentials
// grant: client_id and client_secret in the form body, scopes joined by
// commas as IMS wants them.
type imsFetcher struct {
	conf   *clientcredentials.Config
	client *http.Client // through Config.Transport, with the redirect policy
	redact redactor
	now    func() time.Time
}

func newIMSFetcher(ims IMSConfig, client *http.Client) *imsFetcher {
	conf := &clientcredentials.Config{
		ClientID:     ims.ClientID,
		ClientSecret: ims.ClientSecret,
		TokenURL:     ims.TokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	// clientcredentials joins Config.Scopes with spaces; IMS wants commas.
	if scope := joinScopes(ims.Scopes); scope != "" {
		conf.EndpointParams = url.Values{"scope": {scope}}
	}
	return &imsFetcher{conf: conf, client: client, redact: redactor{ims.ClientSecret}, now: time.Now}
}

// joinScopes joins scopes with commas, dropping blanks.
func joinScopes(scopes []string) string {
	var out []string
	for _, s := range scopes {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

func (f *imsFetcher) fetch(ctx context.Context) (*oauth2.Token, error) {
	tctx := context.WithValue(withOperation(ctx, OpToken), oauth2.HTTPClient, f.client)
	t, err := f.conf.Token(tctx)
	if err != nil {
		return nil, f.error(ctx, err)
	}
	return t, nil
}

// error turns a failure of the token request into an *APIError. The
// oauth2 errors are not wrapped: their text may hold the endpoint's body.
func (f *imsFetcher) error(ctx context.Context, err error) *APIError {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		return retrieveError(re, f.redact, f.now())
	case ctx.Err() != nil:
		return &APIError{Operation: OpToken, Message: "request abandoned", Err: ctx.Err(), abandoned: true}
	case errors.Is(err, ErrRedirect):
		return &APIError{Operation: OpToken, Err: err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &APIError{Operation: OpToken, Message: "request failed", Err: err}
	}
	// "cannot parse json", "server response missing access_token", …
	return &APIError{Operation: OpToken, Err: fmt.Errorf("%w: %s", ErrMalformed, f.redact.redact(err.Error()))}
}

// retrieveError turns the token endpoint's error answer into an *APIError:
// the HTTP status, the OAuth error and its description (or the gateway's
// error_code and message, or a snippet of the body), bounded and redacted.
func retrieveError(re *oauth2.RetrieveError, red redactor, now time.Time) *APIError {
	e := &APIError{
		Operation: OpToken,
		ErrorCode: red.code(re.ErrorCode),
		Message:   red.redact(re.ErrorDescription),
	}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
		e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), now)
	}
	if e.ErrorCode == "" && e.Message == "" {
		if g, ok := decodeGatewayError(re.Body); ok {
			e.ErrorCode, e.Message = red.code(g.ErrorCode), red.redact(g.Message)
		} else {
			e.Message = red.redact(snippet(re.Body))
		}
	}
	return e
}

// sourceError turns the failure of a caller's TokenSource into an *APIError.
// An oauth2.RetrieveError (the source asked a token endpoint) is classified
// like the client's own token requests by its HTTP status and OAuth error;
// its description and body are left out, since the client does not know
// the secret they may echo. Any other error is transient.
func sourceError(err error, now time.Time) *APIError {
	const msg = "token source failed"
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return &APIError{Operation: OpToken, Message: msg, Err: err}
	}
	e := &APIError{Operation: OpToken, ErrorCode: redactor(nil).code(re.ErrorCode), Message: msg}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
		e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), now)
	}
	return e
}
