package graph

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

const (
	// DefaultRefreshBefore mirrors MSAL, which treats a cached token as
	// expired five minutes before its exp, so a token handed to a slow
	// upload never expires in flight.
	DefaultRefreshBefore = 5 * time.Minute
	// DefaultTokenRequestTimeout bounds one token request. Callers wait
	// on the refresh while holding no context of their own (x/oauth2's
	// TokenSource has none), so a hung endpoint must not block them
	// indefinitely.
	DefaultTokenRequestTimeout = 30 * time.Second
)

// failedRefreshHold is how long a failed token request answers for the
// callers that were queued behind it. x/oauth2 serializes refreshes, so
// without this every queued caller would repeat the failing request in
// turn (50 deliveries against a hung endpoint would wait 50 timeouts). It
// is far shorter than any delivery retry backoff, so a retry always gets a
// fresh request.
const failedRefreshHold = time.Second

// TokenConfig describes how to obtain app-only Graph tokens. Exactly one
// credential must be set: Certificate, ClientSecret or ManagedIdentity.
type TokenConfig struct {
	// HTTPClient is used for every token request (tests inject one that
	// trusts their fake CA); nil means http.DefaultClient. Managed
	// identity requests use a copy with the proxy turned off, as Azure
	// requires.
	HTTPClient *http.Client
	TokenURL   string // Cloud.TokenURL(tenant); also the assertion's aud
	Scope      string // Cloud.Scope()
	ClientID   string // the app registration's application (client) ID

	Certificate *Certificate
	Alg         AssertionAlg // "" means PS256
	SendX5C     bool         // for apps set up for Subject Name + Issuer

	ClientSecret string

	ManagedIdentity *ManagedIdentityConfig

	// RefreshBefore is how long before expiry a cached token is replaced;
	// 0 means DefaultRefreshBefore.
	RefreshBefore time.Duration
	// RequestTimeout bounds each token request; 0 means
	// DefaultTokenRequestTimeout.
	RequestTimeout time.Duration
	// Observe, when set, is called after every token request with its
	// error (nil on success), for metrics.
	Observe func(err error)
	// Now stamps the client assertion's nbf, iat and exp; nil means
	// time.Now. Whether a cached token is still valid is always judged by
	// the wall clock, because x/oauth2 checks it with time.Now.
	Now func() time.Time
}

// NewTokenSource returns a TokenSource that caches the token and fetches a
// new one RefreshBefore its expiry. It is safe for concurrent use, and
// concurrent callers share a single refresh.
//
// ctx is kept and used for every later token request, so pass the daemon's
// long-lived context, not a per-message one: once ctx is cancelled every
// refresh fails.
//
// A token endpoint that answers with an error yields an error wrapping
// *oauth2.RetrieveError (Response and Body set, the AADSTS body intact);
// use errors.As. Failures of a managed identity endpoint take the same form.
func NewTokenSource(ctx context.Context, cfg TokenConfig) (oauth2.TokenSource, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("token source: %w", err)
	}
	var (
		fetch tokenFetcher
		kind  string
	)
	switch {
	case cfg.Certificate != nil:
		fetch, kind = cfg.fetchWithCertificate, "client certificate"
	case cfg.ClientSecret != "":
		fetch, kind = cfg.fetchWithSecret, "client secret"
	default:
		var err error
		if fetch, kind, err = cfg.newManagedIdentityFetcher(); err != nil {
			return nil, fmt.Errorf("token source: %w", err)
		}
	}
	if cfg.HTTPClient != nil {
		// x/oauth2 picks its HTTP client from the context.
		ctx = context.WithValue(ctx, oauth2.HTTPClient, cfg.HTTPClient)
	}
	src := &singleRefreshSource{
		observe: cfg.Observe,
		ctx:     ctx,
		timeout: cfg.RequestTimeout,
		fetch:   fetch,
		kind:    kind,
	}
	// reuseTokenSource holds its mutex across the call to src.Token, so
	// while one caller refreshes, the others block on the mutex and then
	// find the new token valid: one request, however many callers.
	return oauth2.ReuseTokenSourceWithExpiry(nil, src, cfg.RefreshBefore), nil
}

// normalize fills in defaults and rejects unusable configurations.
func (cfg *TokenConfig) normalize() error {
	n := 0
	for _, set := range []bool{cfg.Certificate != nil, cfg.ClientSecret != "", cfg.ManagedIdentity != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("exactly one credential (certificate, client secret or managed identity) must be configured, got %d", n)
	}
	if cfg.Scope == "" {
		return errors.New("scope is required")
	}
	if cfg.RefreshBefore < 0 || cfg.RequestTimeout < 0 {
		return errors.New("refresh lead time and request timeout must not be negative")
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultTokenRequestTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	usesEntra := cfg.ManagedIdentity == nil || cfg.ManagedIdentity.FederatedTokenFile != ""
	if usesEntra {
		if cfg.TokenURL == "" {
			return errors.New("token URL is required")
		}
		if _, err := checkEndpointURL(cfg.TokenURL); err != nil {
			return fmt.Errorf("token URL: %w", err)
		}
		if cfg.clientIDForEntra() == "" {
			return errors.New("client ID is required")
		}
	}
	if cfg.Certificate != nil {
		if cfg.Certificate.Leaf == nil || cfg.Certificate.Key == nil {
			return errors.New("certificate has no leaf or no key")
		}
		switch cfg.Alg {
		case "":
			cfg.Alg = AssertionPS256
		case AssertionPS256, AssertionRS256:
		default:
			return fmt.Errorf("unsupported assertion algorithm %q (want %s or %s)", cfg.Alg, AssertionPS256, AssertionRS256)
		}
	}
	if mi := cfg.ManagedIdentity; mi != nil && mi.FederatedTokenFile == "" {
		if err := mi.checkEndpoint(); err != nil {
			return err
		}
	}
	if mi := cfg.ManagedIdentity; mi != nil && mi.FederatedTokenFile != "" && (mi.TenantID == "" || mi.AuthorityHost == "") {
		// Derived from the token URL, which names both.
		u, err := url.Parse(cfg.TokenURL)
		if err != nil {
			return fmt.Errorf("token URL: %w", err)
		}
		tenant, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if mi.TenantID == "" {
			mi.TenantID = tenant
		}
		if mi.AuthorityHost == "" {
			mi.AuthorityHost = u.Scheme + "://" + u.Host
		}
	}
	return nil
}

// clientIDForEntra is the client_id sent to the token endpoint. For
// workload identity it is the federated identity's ID (AZURE_CLIENT_ID)
// when given, so the environment the AKS webhook injects is enough.
func (cfg *TokenConfig) clientIDForEntra() string {
	if mi := cfg.ManagedIdentity; mi != nil && mi.ClientID != "" {
		return mi.ClientID
	}
	return cfg.ClientID
}

// tokenFetcher performs one token request.
type tokenFetcher func(ctx context.Context) (*oauth2.Token, error)

func (cfg *TokenConfig) fetchWithCertificate(ctx context.Context) (*oauth2.Token, error) {
	// A fresh assertion per request: each has a new jti (Entra rejects
	// replays) and its own 10-minute window, which a reused one would
	// outlive.
	assertion, err := NewClientAssertion(cfg.Certificate, cfg.Alg, cfg.ClientID, cfg.TokenURL, cfg.SendX5C, cfg.Now())
	if err != nil {
		return nil, err
	}
	return cfg.clientCredentials(ctx, cfg.ClientID, "", url.Values{
		"client_assertion_type": {ClientAssertionType},
		"client_assertion":      {assertion},
	})
}

func (cfg *TokenConfig) fetchWithSecret(ctx context.Context) (*oauth2.Token, error) {
	return cfg.clientCredentials(ctx, cfg.ClientID, cfg.ClientSecret, nil)
}

// clientCredentials runs one client credentials request through x/oauth2,
// which parses the response and turns a failure into *oauth2.RetrieveError.
func (cfg *TokenConfig) clientCredentials(ctx context.Context, clientID, secret string, params url.Values) (*oauth2.Token, error) {
	cc := clientcredentials.Config{
		ClientID:       clientID,
		ClientSecret:   secret,
		TokenURL:       cfg.TokenURL,
		Scopes:         []string{cfg.Scope},
		EndpointParams: params,
		// Credentials in the form body, as MSAL sends them. The default
		// auto-detection would first try HTTP Basic and, on any error
		// (a genuinely wrong secret included), repeat the request.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return cc.Token(ctx)
}

// singleRefreshSource performs the token requests behind the caching
// ReuseTokenSource: it applies the per-request timeout and lets one
// failure answer the callers queued behind it.
type singleRefreshSource struct {
	ctx     context.Context
	timeout time.Duration
	fetch   tokenFetcher
	kind    string // for error messages
	observe func(error)

	mu       sync.Mutex
	lastErr  error
	failedAt time.Time
}

func (s *singleRefreshSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil && time.Since(s.failedAt) < failedRefreshHold {
		return nil, s.lastErr
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	tok, err := s.fetch(ctx)
	if err == nil && tok.Expiry.IsZero() {
		// x/oauth2 would cache a token without expiry forever.
		err = errors.New("token response has no expiry")
	}
	if s.observe != nil {
		s.observe(err)
	}
	if err != nil {
		s.lastErr = fmt.Errorf("get Graph token (%s): %w", s.kind, err)
		s.failedAt = time.Now()
		return nil, s.lastErr
	}
	s.lastErr = nil
	return tok, nil
}
