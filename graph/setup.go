package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/config"
)

// Credentials is what the daemon needs from the configured app credential.
type Credentials struct {
	Cloud Cloud
	// NewTokens returns a fresh, caching token source. The daemon calls it
	// once, and again when Graph rejects a token that has not expired.
	NewTokens func() oauth2.TokenSource
	// Kind is certificate, secret or managed_identity.
	Kind string
	// Certificate is the loaded app certificate, when Kind is certificate.
	Certificate *Certificate
}

// ResolveCloud applies graph.cloud and its overrides.
func ResolveCloud(g config.Graph) (Cloud, error) {
	cloud, err := LookupCloud(g.Cloud)
	if err != nil {
		return Cloud{}, err
	}
	if cloud, err = cloud.WithOverrides(g.AuthorityURL, g.GraphURL); err != nil {
		return Cloud{}, err
	}
	if g.Scope != "" {
		if cloud, err = cloud.WithScope(g.Scope); err != nil {
			return Cloud{}, err
		}
	}
	return cloud, nil
}

// LoadCredentials loads the configured credential and prepares its token
// source. ctx must live as long as the daemon: token refreshes use it.
func LoadCredentials(ctx context.Context, g config.Graph, hc *http.Client) (*Credentials, error) {
	return LoadCredentialsObserved(ctx, g, hc, nil)
}

// LoadCredentialsObserved is LoadCredentials with observe, when not nil,
// receiving each token request's outcome as the classified error code (""
// on success), for metrics.
func LoadCredentialsObserved(ctx context.Context, g config.Graph, hc *http.Client, observe func(code string)) (*Credentials, error) {
	cloud, err := ResolveCloud(g)
	if err != nil {
		return nil, err
	}
	tc := TokenConfig{
		HTTPClient:     hc,
		TokenURL:       cloud.TokenURL(g.TenantID),
		Scope:          cloud.Scope(),
		ClientID:       g.ClientID,
		RequestTimeout: g.Timeout.D(),
	}
	if observe != nil {
		tc.Observe = func(err error) {
			if err == nil {
				observe("")
				return
			}
			code := "network"
			if e := classify("token", "", nil, nil, err, false); e != nil && e.Code != "" {
				code = e.Code
			} else if e != nil && e.Status != 0 {
				code = fmt.Sprintf("HTTP %d", e.Status)
			}
			observe(code)
		}
	}
	creds := &Credentials{Cloud: cloud, Kind: g.CredentialKind()}
	switch creds.Kind {
	case config.CredentialCertificate:
		var cert *Certificate
		if g.PFXFile != "" {
			cert, err = LoadPFX(g.PFXFile, string(g.PFXPassword))
		} else {
			cert, err = LoadPEM(g.CertificateFile, g.KeyFile)
		}
		if err != nil {
			return nil, err
		}
		tc.Certificate, tc.Alg, tc.SendX5C = cert, AssertionAlg(strings.ToUpper(g.AssertionAlg)), g.SendX5C
		creds.Certificate = cert
	case config.CredentialSecret:
		tc.ClientSecret = string(g.ClientSecret)
	case config.CredentialManagedIdentity:
		env, _, _ := ManagedIdentityFromEnv()
		mi := &ManagedIdentityConfig{ClientID: g.ManagedIdentityClientID, Endpoint: g.IMDSEndpoint, FederatedTokenFile: g.FederatedTokenFile}
		if mi.FederatedTokenFile == "" {
			mi.FederatedTokenFile = env.FederatedTokenFile
		}
		if tc.ClientID == "" {
			tc.ClientID = env.ClientID
		}
		tc.ManagedIdentity = mi
	default:
		return nil, fmt.Errorf("no usable credential configured (%q)", creds.Kind)
	}
	// Validate once now, so a broken credential fails at startup rather than
	// at the first message.
	if _, err := NewTokenSource(ctx, tc); err != nil {
		return nil, err
	}
	creds.NewTokens = func() oauth2.TokenSource {
		ts, _ := NewTokenSource(ctx, tc)
		return ts
	}
	return creds, nil
}

// NewHTTPClient returns the client for Entra and Graph: system roots plus
// caFile, proxies from HTTPS_PROXY/NO_PROXY, and timeout per exchange.
func NewHTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read graph.ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("graph.ca_file %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}
