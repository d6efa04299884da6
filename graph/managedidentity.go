package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultIMDSEndpoint is the Azure Instance Metadata Service token endpoint,
// reachable only from inside an Azure VM or scale set.
const DefaultIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

// imdsAPIVersion is the IMDS token API version that every Azure VM serves.
const imdsAPIVersion = "2018-02-01"

// ManagedIdentityConfig selects an Azure managed identity as the credential.
type ManagedIdentityConfig struct {
	// ClientID selects a user-assigned identity; empty means the
	// system-assigned one (IMDS) or TokenConfig.ClientID (workload
	// identity).
	ClientID string
	// Endpoint is the IMDS token endpoint; empty means DefaultIMDSEndpoint.
	Endpoint string
	// FederatedTokenFile (AZURE_FEDERATED_TOKEN_FILE) switches to workload
	// identity federation, as on AKS: the JWT in this file is sent to
	// TokenConfig.TokenURL as the client assertion instead of calling
	// IMDS. The file is re-read for every request because kubelet rotates
	// it.
	FederatedTokenFile string
}

// ManagedIdentityFromEnv reads what the AKS workload identity webhook
// injects: AZURE_FEDERATED_TOKEN_FILE and AZURE_CLIENT_ID into cfg, plus the
// tenant (AZURE_TENANT_ID) and the authority host (AZURE_AUTHORITY_HOST,
// trailing slash trimmed; pass it to Cloud.WithOverrides). It returns only
// what it found; the caller merges it with its own configuration.
func ManagedIdentityFromEnv() (cfg ManagedIdentityConfig, tenantID, authorityHost string) {
	cfg.FederatedTokenFile = strings.TrimSpace(os.Getenv("AZURE_FEDERATED_TOKEN_FILE"))
	cfg.ClientID = strings.TrimSpace(os.Getenv("AZURE_CLIENT_ID"))
	tenantID = strings.TrimSpace(os.Getenv("AZURE_TENANT_ID"))
	authorityHost = strings.TrimRight(strings.TrimSpace(os.Getenv("AZURE_AUTHORITY_HOST")), "/")
	return cfg, tenantID, authorityHost
}

func (mi *ManagedIdentityConfig) endpoint() string {
	if mi.Endpoint != "" {
		return mi.Endpoint
	}
	return DefaultIMDSEndpoint
}

func (mi *ManagedIdentityConfig) checkEndpoint() error {
	u, err := url.Parse(mi.endpoint())
	if err != nil {
		return fmt.Errorf("managed identity endpoint: %w", err)
	}
	// IMDS is plain http on a link-local address that never leaves the
	// host, so http is fine here, unlike for Entra.
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("managed identity endpoint %q is not an absolute http(s) URL", mi.Endpoint)
	}
	return nil
}

func (cfg *TokenConfig) fetchWithFederatedToken(ctx context.Context) (*oauth2.Token, error) {
	path := cfg.ManagedIdentity.FederatedTokenFile
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read federated token: %w", err)
	}
	assertion := strings.TrimSpace(string(data))
	if assertion == "" {
		return nil, fmt.Errorf("federated token file %s is empty", path)
	}
	return cfg.clientCredentials(ctx, cfg.clientIDForEntra(), "", url.Values{
		"client_assertion_type": {ClientAssertionType},
		"client_assertion":      {assertion},
	})
}

// imdsTokenResponse is the IMDS token body, whose numbers are strings.
type imdsTokenResponse struct {
	AccessToken      string       `json:"access_token"`
	TokenType        string       `json:"token_type"`
	ExpiresIn        lenientInt64 `json:"expires_in"`
	ExpiresOn        lenientInt64 `json:"expires_on"`
	Error            string       `json:"error"`
	ErrorDescription string       `json:"error_description"`
}

// lenientInt64 decodes a JSON number or a string holding one, since IMDS
// sends "3599" where Entra sends 3599.
type lenientInt64 int64

func (n *lenientInt64) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*n = lenientInt64(v)
	return nil
}

func (cfg *TokenConfig) fetchFromIMDS(ctx context.Context, client *http.Client) (*oauth2.Token, error) {
	mi := cfg.ManagedIdentity
	u, err := url.Parse(mi.endpoint())
	if err != nil {
		return nil, fmt.Errorf("managed identity endpoint: %w", err)
	}
	q := u.Query()
	q.Set("api-version", imdsAPIVersion)
	// IMDS takes the v1 resource, not a v2 scope.
	q.Set("resource", strings.TrimSuffix(cfg.Scope, defaultScopeSuffix))
	if mi.ClientID != "" {
		q.Set("client_id", mi.ClientID)
	}
	u.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	// IMDS refuses requests without this header, since a request forged
	// through an SSRF hole usually cannot set one.
	req.Header.Set("Metadata", "true")

	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	// Same cap as x/oauth2 puts on a token response.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read IMDS response: %w", err)
	}

	var tr imdsTokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tr.Error != "" {
		// The same error type as Entra failures, so one classification
		// function in the caller handles both.
		return nil, &oauth2.RetrieveError{
			Response:         resp,
			Body:             body,
			ErrorCode:        tr.Error,
			ErrorDescription: tr.ErrorDescription,
		}
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("parse IMDS response: %w", jsonErr)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("IMDS response has no access_token")
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType}
	switch {
	case tr.ExpiresIn > 0:
		// Relative to our own clock, like x/oauth2 does for Entra, so
		// skew between the VM and IMDS does not matter.
		tok.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		tok.ExpiresIn = int64(tr.ExpiresIn)
	case tr.ExpiresOn > 0:
		tok.Expiry = time.Unix(int64(tr.ExpiresOn), 0)
	default:
		return nil, errors.New("IMDS response has neither expires_in nor expires_on")
	}
	return tok, nil
}

// clientWithoutProxy returns c (nil meaning http.DefaultClient) with its
// proxy turned off, because Azure requires that IMDS requests bypass
// proxies and a proxy could not reach the link-local address anyway. The
// daemon hands one client, honouring HTTPS_PROXY for Entra and Graph, to
// every token source, so this cannot be left to the caller. A transport
// that is not an *http.Transport is used as is.
func clientWithoutProxy(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok || t.Proxy == nil {
		return c
	}
	t = t.Clone()
	t.Proxy = nil
	return &http.Client{Transport: t, CheckRedirect: c.CheckRedirect, Jar: c.Jar, Timeout: c.Timeout}
}
