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
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"
	"golang.org/x/oauth2"
)

// DefaultIMDSEndpoint is the Azure Instance Metadata Service token endpoint,
// reachable only from inside an Azure VM or scale set.
const DefaultIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

// imdsHost is the address azidentity always sends IMDS requests to; a
// configured endpoint replaces it.
const imdsHost = "169.254.169.254"

// ManagedIdentityConfig selects an Azure managed identity as the credential.
// Which Azure host serves it (VM, App Service, Arc, Service Fabric, Cloud
// Shell) is read from the environment the host sets, as every Azure SDK
// does; see ManagedIdentityHost.
type ManagedIdentityConfig struct {
	// ClientID selects a user-assigned identity; empty means the
	// system-assigned one (managed identity) or TokenConfig.ClientID
	// (workload identity).
	ClientID string
	// Endpoint replaces the IMDS token endpoint of an Azure VM; empty
	// means DefaultIMDSEndpoint. The other hosts announce their endpoint
	// in the environment.
	Endpoint string
	// FederatedTokenFile (AZURE_FEDERATED_TOKEN_FILE) switches to workload
	// identity federation, as on AKS: the JWT in this file is sent to
	// Entra as the client assertion instead of asking a managed identity
	// endpoint. azidentity re-reads the file after ten minutes, well
	// within the hour kubelet leaves between rotating it and its expiry.
	FederatedTokenFile string
	// TenantID and AuthorityHost locate Entra for workload identity; the
	// authority host is the cloud's login URL.
	TenantID, AuthorityHost string
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

// ManagedIdentityHost names the Azure host whose managed identity endpoint
// this process would use, from the variables each host sets:
// IDENTITY_ENDPOINT and IDENTITY_HEADER on App Service, Functions and
// Container Apps (plus IDENTITY_SERVER_THUMBPRINT on Service Fabric),
// IDENTITY_ENDPOINT and IMDS_ENDPOINT (or the installed agent) on an Azure
// Arc-enabled server, MSI_ENDPOINT in Cloud Shell, and otherwise IMDS.
func ManagedIdentityHost() string {
	src, err := managedidentity.GetSource()
	if err != nil {
		return "unknown host (" + err.Error() + ")"
	}
	switch src {
	case managedidentity.AppService:
		return "App Service, Functions or Container Apps (IDENTITY_ENDPOINT)"
	case managedidentity.ServiceFabric:
		return "Service Fabric (IDENTITY_ENDPOINT, pinned to IDENTITY_SERVER_THUMBPRINT)"
	case managedidentity.AzureArc:
		return "Azure Arc-enabled server (himds)"
	case managedidentity.CloudShell:
		return "Cloud Shell (MSI_ENDPOINT)"
	case managedidentity.AzureML:
		return "Azure Machine Learning (MSI_ENDPOINT)"
	}
	return "Azure VM or scale set (IMDS)"
}

func (mi *ManagedIdentityConfig) checkEndpoint() error {
	if mi.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(mi.Endpoint)
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

// newManagedIdentityFetcher builds the azidentity credential for cfg's
// managed or workload identity and adapts it to a tokenFetcher. It returns
// the kind for error messages.
func (cfg *TokenConfig) newManagedIdentityFetcher() (tokenFetcher, string, error) {
	mi := cfg.ManagedIdentity
	rec := &failureRecorder{}
	opts := azcore.ClientOptions{
		// Our own caller retries deliveries, so a few quick retries are
		// enough here; azidentity's IMDS default (six, up to 25 s apart)
		// would outlast RequestTimeout.
		Retry:            policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		Transport:        clientWithoutProxy(cfg.HTTPClient),
		PerRetryPolicies: []policy.Policy{rec},
	}
	if mi.FederatedTokenFile != "" {
		// Entra, not a local endpoint: the daemon's client, proxy and all.
		if cfg.HTTPClient != nil {
			opts.Transport = cfg.HTTPClient
		}
		opts.Cloud = azcloud.Configuration{ActiveDirectoryAuthorityHost: mi.AuthorityHost + "/"}
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts,
			ClientID:      cfg.clientIDForEntra(),
			TenantID:      mi.TenantID,
			TokenFilePath: mi.FederatedTokenFile,
			// Entra's instance discovery adds a request to a fixed host
			// and only validates an authority the configuration already
			// names.
			DisableInstanceDiscovery: true,
		})
		if err != nil {
			return nil, "", err
		}
		return credentialFetcher(cred, rec, cfg.Scope, ""), "workload identity", nil
	}
	rec.imdsEndpoint = mi.Endpoint
	o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
	if mi.ClientID != "" {
		o.ID = azidentity.ClientID(mi.ClientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(o)
	if err != nil {
		return nil, "", err
	}
	// The claims, an empty request, only make MSAL skip its managed
	// identity cache. That cache is process-wide and keyed by identity and
	// resource alone, so it would answer a forced refresh (after Graph
	// refused a token) with the refused token; the token source above this
	// one caches already.
	return credentialFetcher(cred, rec, cfg.Scope, "{}"), "managed identity, " + ManagedIdentityHost(), nil
}

// credentialFetcher adapts an azcore credential to a tokenFetcher whose
// failures take the same *oauth2.RetrieveError form as Entra's, so one
// classification serves every credential.
func credentialFetcher(cred azcore.TokenCredential, rec *failureRecorder, scope, claims string) tokenFetcher {
	return func(ctx context.Context) (*oauth2.Token, error) {
		rec.reset()
		at, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, Claims: claims})
		if err != nil && ctx.Err() != nil {
			// azidentity reports a cancelled or timed-out request as text;
			// classify needs the cause.
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if err != nil {
			return nil, asRetrieveError(err, rec)
		}
		return &oauth2.Token{AccessToken: at.Token, TokenType: "Bearer", Expiry: at.ExpiresOn}, nil
	}
}

// asRetrieveError turns azidentity's error into *oauth2.RetrieveError when
// an endpoint answered, keeping its status and body; a transport failure
// stays as it is, and classify treats it as one.
func asRetrieveError(err error, rec *failureRecorder) error {
	resp, body := rec.last()
	var afe *azidentity.AuthenticationFailedError
	if resp == nil && errors.As(err, &afe) && afe.RawResponse != nil {
		resp = afe.RawResponse
		if resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		}
	}
	if resp == nil {
		return err
	}
	return &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: errorField(body)}
}

// errorField reads the "error" member of an OAuth2-style error body, which
// IMDS, Arc and Entra send; App Service and Service Fabric send other
// shapes, for which it returns "".
func errorField(body []byte) string {
	var b entraErrorBody
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Error
}

// failureRecorder is a pipeline policy under azidentity. It keeps the last
// failed response, because azidentity reports some failures (a
// system-assigned identity IMDS does not know) only as text, and it sends
// requests for IMDS to a configured endpoint instead. A policy, not a
// transport, because Service Fabric needs azidentity to own the transport
// to pin the endpoint's certificate.
type failureRecorder struct {
	imdsEndpoint string

	mu   sync.Mutex
	resp *http.Response
	body []byte
}

func (r *failureRecorder) Do(preq *policy.Request) (*http.Response, error) {
	req := preq.Raw()
	if r.imdsEndpoint != "" && req.URL.Hostname() == imdsHost {
		if err := redirectTo(req, r.imdsEndpoint); err != nil {
			return nil, err
		}
	}
	resp, err := preq.Next()
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	// Arc's first answer is a 401 challenge naming the key file: part of
	// the protocol, not a failure.
	if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.resp, r.body = resp, body
	r.mu.Unlock()
	return resp, nil
}

func (r *failureRecorder) reset() {
	r.mu.Lock()
	r.resp, r.body = nil, nil
	r.mu.Unlock()
}

func (r *failureRecorder) last() (*http.Response, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resp, r.body
}

// redirectTo points req at endpoint, keeping its query.
func redirectTo(req *http.Request, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("managed identity endpoint: %w", err)
	}
	q := req.URL.RawQuery
	req.URL = u
	req.URL.RawQuery = q
	req.Host = u.Host
	return nil
}

// clientWithoutProxy returns c (nil meaning http.DefaultClient) with its
// proxy turned off, because Azure requires that managed identity requests
// bypass proxies, and a proxy could not reach a link-local or loopback
// endpoint anyway. The daemon hands one client, honouring HTTPS_PROXY for
// Entra and Graph, to every token source, so this cannot be left to the
// caller. A transport that is not an *http.Transport is used as is.
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
		if c == http.DefaultClient {
			// Never hand out the shared default, which a caller could
			// change.
			return &http.Client{Transport: rt}
		}
		return c
	}
	t = t.Clone()
	t.Proxy = nil
	return &http.Client{Transport: t, CheckRedirect: c.CheckRedirect, Jar: c.Jar, Timeout: c.Timeout}
}
