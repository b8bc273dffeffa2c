package campaignsim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/campaign-ingest/campaign"
)

// Client is an OAuth server-to-server credential of the Adobe Developer
// Console and the Campaign user behind it.
type Client struct {
	ID      string   `json:"id"`
	Secret  string   `json:"secret"`
	APIKey  string   `json:"apiKey,omitempty"` // X-Api-Key; default ID
	SQLRole bool     `json:"sqlRole"`          // has the SQL function execution role (needed to POST)
	Orgs    []string `json:"orgs,omitempty"`   // organizations it may use; empty = any
	// Disabled revokes the credential: its tokens are refused (401
	// 401013) for good, and token requests for it fail (IMS 401
	// invalid_client). Default false. Adding the client again without it
	// enables the credential, but not the tokens it had.
	Disabled bool `json:"disabled,omitempty"`
}

func (c Client) validate() error {
	if c.ID == "" || c.Secret == "" {
		return fmt.Errorf("client %q: id and secret are required", c.ID)
	}
	return nil
}

func (c *Client) allows(org string) bool {
	return len(c.Orgs) == 0 || slices.Contains(c.Orgs, org)
}

type token struct {
	client  *Client
	expires time.Time
	revoked bool // its client was revoked after it was issued
}

// authState holds clients and tokens.
type authState struct {
	mu      sync.RWMutex
	clients map[string]*Client // by ID
	keys    map[string]*Client // by APIKey
	tokens  map[string]token
	sweepAt int // token count that triggers the next sweep of expired tokens
}

func (a *authState) init() {
	a.clients = make(map[string]*Client)
	a.keys = make(map[string]*Client)
	a.tokens = make(map[string]token)
}

// AddClient adds a credential or replaces the one with the same ID. Tokens
// already issued to the old one stay valid for the new one (as IMS tokens
// outlive a secret rotation), unless c is Disabled; a new Secret makes
// token requests with the old one fail (401 invalid_client).
func (s *Server) AddClient(c Client) {
	if c.APIKey == "" {
		c.APIKey = c.ID
	}
	c.Orgs = slices.Clone(c.Orgs)
	a := &s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.clients[c.ID]; ok {
		delete(a.keys, old.APIKey)
		*old = c // tokens point at it
		a.keys[c.APIKey] = old
		if c.Disabled {
			a.revokeTokensLocked(old)
		}
		return
	}
	a.clients[c.ID] = &c
	a.keys[c.APIKey] = &c
}

// RevokeClient disables the credential id (see [Client.Disabled]) and
// reports whether it exists. Other clients are not affected.
func (s *Server) RevokeClient(id string) bool {
	a := &s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clients[id]
	if !ok {
		return false
	}
	c.Disabled = true
	n := a.revokeTokensLocked(c)
	s.log.Info("campaign-sim: client revoked", "client", id, "tokens", n)
	return true
}

// revokeTokensLocked revokes every token of c and returns how many there
// were. They stay known (the call log still names their client) until they
// expire. a.mu must be held for writing.
func (a *authState) revokeTokensLocked(c *Client) int {
	n := 0
	for k, t := range a.tokens {
		if t.client == c && !t.revoked {
			t.revoked = true
			a.tokens[k] = t
			n++
		}
	}
	return n
}

// IssueToken returns a valid bearer token for clientID, as IMS would issue
// it, expiring after Options.TokenTTL. It fails for an unknown or disabled
// client.
func (s *Server) IssueToken(clientID string) (string, error) {
	a := &s.auth
	a.mu.RLock()
	c, ok := a.clients[clientID]
	a.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("campaignsim: unknown client %q", clientID)
	}
	tok, ok := a.issue(c, clientID, s.now(), s.tokenTTL)
	if !ok {
		return "", fmt.Errorf("campaignsim: client %q is disabled", clientID)
	}
	return tok, nil
}

// minTokenSweep is the token count below which expired tokens are kept.
const minTokenSweep = 10_000

// issue mints a token of client c (whose id is id) and stores it; ok is
// false if c is disabled. When the store has doubled since the last sweep,
// it first forgets expired tokens.
func (a *authState) issue(c *Client, id string, now time.Time, ttl time.Duration) (tok string, ok bool) {
	tok = newAccessToken(id, now, ttl)
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.Disabled {
		return "", false
	}
	if len(a.tokens) >= max(a.sweepAt, minTokenSweep) {
		for k, t := range a.tokens {
			if !now.Before(t.expires) {
				delete(a.tokens, k)
			}
		}
		a.sweepAt = 2 * len(a.tokens)
	}
	a.tokens[tok] = token{client: c, expires: now.Add(ttl)}
	return tok, true
}

// ExpireTokens makes every token issued so far expired: the API answers
// 401 401013 to them.
func (s *Server) ExpireTokens() {
	a := &s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.tokens {
		t.expires = time.Time{}
		a.tokens[k] = t
	}
	s.log.Info("campaign-sim: tokens expired", "count", len(a.tokens))
}

var jwtHeader = base64.RawURLEncoding.EncodeToString(
	[]byte(`{"alg":"RS256","x5u":"ims_na1-key-at-1.cer","kid":"ims_na1-key-at-1","itt":"at"}`))

// newAccessToken returns a token shaped like an IMS access token (a JWT);
// its signature part is random, so tokens never repeat.
func newAccessToken(clientID string, now time.Time, ttl time.Duration) string {
	payload, _ := json.Marshal(map[string]string{
		"type":       "access_token",
		"client_id":  clientID,
		"as":         "ims-na1",
		"created_at": fmt.Sprint(now.UnixMilli()),
		"expires_in": fmt.Sprint(ttl.Milliseconds()),
	})
	return jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + rand.Text() + rand.Text()
}

// Gateway error bodies, built once.
var (
	errAPIKeyMissing   = gatewayError(http.StatusForbidden, "403000", "Api Key is required")
	errAPIKeyInvalid   = gatewayError(http.StatusForbidden, "403003", "Api Key is invalid")
	errTokenMissing    = gatewayError(http.StatusForbidden, "403010", "Oauth token is missing")
	errTokenInvalid    = gatewayError(http.StatusUnauthorized, "401013", "Oauth token is not valid")
	errTokenOtherKey   = gatewayError(http.StatusForbidden, "403020", "Oauth token is not valid for this api key")
	errProfileInvalid  = gatewayError(http.StatusForbidden, "403023", "Profile is not valid")
	errNoSQLRole       = campaignError(http.StatusForbidden, "The user does not have the SQL function execution role: the ingestion cannot be triggered.")
	errRequestIDNeeded = campaignError(http.StatusBadRequest, "requestId is required")
	errBadURI          = campaignError(http.StatusInternalServerError, campaign.MessageBadURI)
)

type gatewayAnswer struct {
	answer
	errorCode string
}

func gatewayError(code int, errorCode, msg string) gatewayAnswer {
	return gatewayAnswer{answer{code, mustJSON(campaign.GatewayError{ErrorCode: errorCode, Message: msg})}, errorCode}
}

// authorize checks the API key, the bearer token, the organization and, for
// a trigger, the SQL role, in that order. On refusal it fills c and returns
// the answer and false.
func (s *Server) authorize(r *http.Request, c *Call, needSQL bool) (answer, bool) {
	refuse := func(g gatewayAnswer) (answer, bool) {
		c.ErrorCode = g.errorCode
		return g.answer, false
	}
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		return refuse(errAPIKeyMissing)
	}
	bearer, ok := bearerToken(r.Header.Get("Authorization"))
	now := s.now()
	a := &s.auth
	a.mu.RLock()
	client, known := a.keys[key]
	t, issued := a.tokens[bearer]
	var sqlRole, allowed, revoked bool
	if known {
		sqlRole, allowed = client.SQLRole, client.allows(c.Org)
	}
	if issued {
		revoked = t.revoked || t.client.Disabled
	}
	a.mu.RUnlock()
	switch {
	case !known:
		return refuse(errAPIKeyInvalid)
	case !ok:
		return refuse(errTokenMissing)
	case !issued || revoked || !now.Before(t.expires):
		return refuse(errTokenInvalid)
	case t.client != client:
		return refuse(errTokenOtherKey)
	case !allowed:
		return refuse(errProfileInvalid)
	case needSQL && !sqlRole:
		return errNoSQLRole, false
	}
	return answer{}, true
}

// bearerToken returns the token of an "Authorization: Bearer …" header.
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

// imsError is the body of an IMS token error.
type imsError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

var (
	errIMSClientID = answer{http.StatusUnauthorized, mustJSON(imsError{"invalid_client", "invalid client_id parameter"})}
	errIMSSecret   = answer{http.StatusUnauthorized, mustJSON(imsError{"invalid_client", "invalid client_secret parameter"})}
	errIMSGrant    = answer{http.StatusBadRequest, mustJSON(imsError{"unsupported_grant_type", "unsupported grant_type parameter"})}
)

// maxTokenForm bounds the body of a token request.
const maxTokenForm = 64 << 10

// tokenCredentials returns the client id and secret of a token request:
// from the form, else from HTTP Basic auth. A bad form leaves them empty.
// It may be called more than once: the form is parsed once.
func tokenCredentials(r *http.Request) (id, secret string) {
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxTokenForm)
		r.ParseForm()
	}
	id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id == "" {
		id, secret, _ = r.BasicAuth()
	}
	return id, secret
}

// token serves POST /ims/token/v3 (client credentials, form or Basic auth).
func (s *Server) token(r *http.Request, c *Call) answer {
	id, secret := tokenCredentials(r)
	now := s.now()
	a := &s.auth
	a.mu.RLock()
	client, ok := a.clients[id]
	var want string
	var disabled bool
	if ok {
		want, disabled = client.Secret, client.Disabled
	}
	a.mu.RUnlock()
	switch {
	case !ok, disabled:
		c.ErrorCode = "invalid_client"
		return errIMSClientID
	case want != secret:
		c.ErrorCode = "invalid_client"
		return errIMSSecret
	case r.PostForm.Get("grant_type") != "client_credentials":
		c.ErrorCode = "unsupported_grant_type"
		return errIMSGrant
	}
	tok, issued := a.issue(client, id, now, s.tokenTTL)
	if !issued { // revoked meanwhile
		c.ErrorCode = "invalid_client"
		return errIMSClientID
	}
	expiresIn := max(int64(s.tokenTTL/time.Second)-1, 1)
	return answer{http.StatusOK, mustJSON(campaign.TokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   expiresIn,
	})}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("campaignsim: encode %T: %v", v, err))
	}
	return b
}
