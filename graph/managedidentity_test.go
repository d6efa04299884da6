package graph

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// miHost puts the process in one Azure host's environment.
func miHost(t *testing.T, fake *graphtest.Server, host string) {
	t.Helper()
	fake.SetHostEnv(t, host)
}

func miConfig(fake *graphtest.Server, clientID string) TokenConfig {
	return TokenConfig{
		HTTPClient:      fake.HTTPClient(),
		Scope:           DefaultGraphScopeForTest,
		ManagedIdentity: &ManagedIdentityConfig{ClientID: clientID, Endpoint: fake.IMDSURL() + "/metadata/identity/oauth2/token"},
	}
}

// DefaultGraphScopeForTest is the fake's loopback scope.
const DefaultGraphScopeForTest = graphtest.DefaultGraphScope

// Each Azure host's managed identity protocol, against the fake's
// emulation of that host: one request per token, the system-assigned and
// (where the host has them) a user-assigned identity.
func TestManagedIdentityHosts(t *testing.T) {
	for _, host := range graphtest.ManagedIdentityHosts {
		for _, clientID := range []string{"", graphtest.DefaultClientID} {
			if clientID != "" && host == "cloudshell" {
				continue // Cloud Shell has only the signed-in user's identity
			}
			if clientID != "" && host == "servicefabric" {
				continue // Service Fabric picks the identity in the application manifest
			}
			name := host + "/system-assigned"
			if clientID != "" {
				name = host + "/user-assigned"
			}
			t.Run(name, func(t *testing.T) {
				fake := graphtest.New(t, graphtest.Config{})
				miHost(t, fake, host)
				start := time.Now()
				ts := credMustSource(t, miConfig(fake, clientID))
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				if tok.Type() != "Bearer" || tok.AccessToken == "" {
					t.Errorf("token type %q", tok.Type())
				}
				if d := tok.Expiry.Sub(start); d < 50*time.Minute || d > 61*time.Minute {
					t.Errorf("expiry %v from now, want about an hour", d)
				}
				if _, err := ts.Token(); err != nil {
					t.Fatal(err)
				}
				var ok []graphtest.TokenRequest
				for _, r := range fake.TokenRequests() {
					if r.Status == http.StatusOK {
						ok = append(ok, r)
					}
				}
				if len(ok) != 1 || ok[0].AuthKind != host {
					t.Fatalf("successful token requests = %+v, want one to %s (the second Token call is cached)", ok, host)
				}
				if ok[0].Scope != "https://graph.microsoft.com" {
					t.Errorf("resource = %q, want the scope without /.default", ok[0].Scope)
				}
				if ok[0].ClientID != clientID {
					t.Errorf("client_id = %q, want %q", ok[0].ClientID, clientID)
				}
				// The token is one Graph accepts.
				claims, err := ParseTokenClaims(tok.AccessToken)
				if err != nil || !claims.HasRole("Mail.Send") {
					t.Errorf("claims %+v, %v", claims, err)
				}
			})
		}
	}
}

// A forced refresh (a new source, as after Graph refused a token) asks the
// endpoint again instead of reusing a process-wide cache.
func TestManagedIdentityNewSourceAsksAgain(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	miHost(t, fake, "appservice")
	for range 2 {
		if _, err := credMustSource(t, miConfig(fake, "")).Token(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.TokenRequests()); n != 2 {
		t.Errorf("%d token requests for two sources, want 2", n)
	}
}

// A refusal keeps the endpoint's status and body, as Entra's do, so one
// classification names its cause.
func TestManagedIdentityErrors(t *testing.T) {
	for _, tc := range []struct {
		name, host, clientID string
		setup                func(*graphtest.Server)
		wantStatus           int
		wantCode, wantInBody string
	}{
		{name: "imds unknown identity", host: "imds", clientID: "99999999-9999-4999-8999-999999999999", wantStatus: 400, wantCode: "invalid_request", wantInBody: "Identity not found"},
		{name: "imds entra failure", host: "imds", setup: func(f *graphtest.Server) { f.FailToken(graphtest.TokenFault{AADSTS: 500011}) }, wantStatus: 400, wantCode: "invalid_resource", wantInBody: "AADSTS500011"},
		{name: "app service wrong header", host: "appservice", setup: func(*graphtest.Server) { os.Setenv("IDENTITY_HEADER", "wrong") }, wantStatus: 401, wantInBody: "X-IDENTITY-HEADER"},
		{name: "app service unknown identity", host: "appservice", clientID: "99999999-9999-4999-8999-999999999999", wantStatus: 400, wantInBody: "No managed identity found"},
		{name: "service fabric wrong secret", host: "servicefabric", setup: func(*graphtest.Server) { os.Setenv("IDENTITY_HEADER", "wrong") }, wantStatus: 401, wantInBody: "SecretHeaderNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := graphtest.New(t, graphtest.Config{})
			miHost(t, fake, tc.host)
			if tc.setup != nil {
				tc.setup(fake)
			}
			_, err := credMustSource(t, miConfig(fake, tc.clientID)).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want *oauth2.RetrieveError inside", err, err)
			}
			if re.Response == nil || re.Response.StatusCode != tc.wantStatus || !strings.Contains(string(re.Body), tc.wantInBody) {
				t.Errorf("status/body = %v/%s, want %d with %q", re.Response.StatusCode, re.Body, tc.wantStatus, tc.wantInBody)
			}
			if re.ErrorCode != tc.wantCode {
				t.Errorf("ErrorCode = %q, want %q", re.ErrorCode, tc.wantCode)
			}
			if e := TokenError(err); e.Status != tc.wantStatus {
				t.Errorf("classified status %d, want %d", e.Status, tc.wantStatus)
			}
		})
	}
}

// A Service Fabric endpoint whose certificate is not the pinned one gets no
// request: the secret would go to whoever answers.
func TestManagedIdentityServiceFabricPinsCertificate(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	miHost(t, fake, "servicefabric")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", strings.Repeat("AB", 20))
	_, err := credMustSource(t, miConfig(fake, "")).Token()
	if err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Errorf("err = %v, want a thumbprint mismatch", err)
	}
	if n := len(fake.TokenRequests()); n != 0 {
		t.Errorf("%d requests reached the endpoint", n)
	}
}

// An endpoint that does not answer is a transport failure, not a refusal,
// which is what tells check "not on Azure".
func TestManagedIdentityNoEndpoint(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	miHost(t, fake, "imds")
	cfg := miConfig(fake, "")
	fake.Close()
	_, err := credMustSource(t, cfg).Token()
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("err = %v, want a transport failure", err)
	}
	if e := TokenError(err); e.Status != 0 {
		t.Errorf("classified status %d, want 0", e.Status)
	}
}

func TestManagedIdentityBypassesProxy(t *testing.T) {
	// A "proxy" that fails every request it sees: if the request went
	// through it, the token request would fail.
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "proxied", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"imds", "appservice"} {
		fake := graphtest.New(t, graphtest.Config{})
		miHost(t, fake, host)
		// Like the daemon's shared client, which honours HTTP(S)_PROXY.
		proxyClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 7 * time.Second}
		cfg := miConfig(fake, "")
		cfg.HTTPClient = proxyClient
		if _, err := credMustSource(t, cfg).Token(); err != nil {
			t.Fatalf("%s through a proxy-configured client: %v", host, err)
		}
		if proxied.Load() != 0 {
			t.Errorf("%s: %d requests went through the proxy", host, proxied.Load())
		}
		if proxyClient.Transport.(*http.Transport).Proxy == nil {
			t.Error("the caller's transport was modified")
		}
	}
	if c := clientWithoutProxy(&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 7 * time.Second}); c.Timeout != 7*time.Second || c.Transport.(*http.Transport).Proxy != nil {
		t.Errorf("copy: timeout %v, proxy set %v", c.Timeout, c.Transport.(*http.Transport).Proxy != nil)
	}
}

const (
	wiIssuer  = "https://oidc.aks.test/cluster"
	wiSubject = "system:serviceaccount:mail:graphrelay"
)

func wiConfig(fake *graphtest.Server, path, clientID string) TokenConfig {
	return TokenConfig{
		HTTPClient:      fake.HTTPClient(),
		TokenURL:        fake.TokenURL(),
		Scope:           DefaultGraphScopeForTest,
		ClientID:        clientID,
		ManagedIdentity: &ManagedIdentityConfig{FederatedTokenFile: path},
	}
}

// Workload identity reads the projected token again for a new source (and
// azidentity re-reads it every ten minutes), because kubelet rotates it.
func TestWorkloadIdentityRereadsTokenFile(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{Federated: []graphtest.FederatedCredential{{Issuer: wiIssuer, Subject: wiSubject}}})
	path := filepath.Join(t.TempDir(), "azure-identity-token")
	write := func(subject string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(fake.MintFederatedToken(wiIssuer, subject, time.Hour)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(wiSubject)
	if _, err := credMustSource(t, wiConfig(fake, path, fake.ClientID())).Token(); err != nil {
		t.Fatal(err)
	}
	// A token for a subject with no federated credential: refused, which
	// shows the file was read again.
	write("system:serviceaccount:other:intruder")
	_, err := credMustSource(t, wiConfig(fake, path, fake.ClientID())).Token()
	if e := TokenError(err); e == nil || !strings.HasPrefix(e.Code, "AADSTS7002") {
		t.Fatalf("err = %v, want an AADSTS70021x refusal of the unknown subject; requests %+v", err, fake.TokenRequests())
	}
	reqs := fake.TokenRequests()
	if len(reqs) != 2 || reqs[0].AuthKind != "federated" || reqs[0].Status != 200 || reqs[1].Status == 200 {
		t.Errorf("token requests = %+v", reqs)
	}
}

func TestWorkloadIdentityTokenFileProblems(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), empty} {
		_, err := credMustSource(t, wiConfig(fake, path, fake.ClientID())).Token()
		if err == nil {
			t.Errorf("%s: no error", path)
		}
	}
	for _, r := range fake.TokenRequests() {
		if r.Status == 200 {
			t.Errorf("a token was issued without an assertion: %+v", r)
		}
	}
}

func TestManagedIdentityFromEnv(t *testing.T) {
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token")
	t.Setenv("AZURE_CLIENT_ID", "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb")
	t.Setenv("AZURE_TENANT_ID", "cccccccc-3333-4444-5555-dddddddddddd")
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/")
	cfg, tenant, authority := ManagedIdentityFromEnv()
	want := ManagedIdentityConfig{
		ClientID:           "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb",
		FederatedTokenFile: "/var/run/secrets/azure/tokens/azure-identity-token",
	}
	if cfg != want {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
	if tenant != "cccccccc-3333-4444-5555-dddddddddddd" {
		t.Errorf("tenant = %q", tenant)
	}
	if authority != "https://login.microsoftonline.com" {
		t.Errorf("authority = %q, want it without the trailing slash", authority)
	}
	for _, k := range []string{"AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST"} {
		t.Setenv(k, "")
	}
	cfg, tenant, authority = ManagedIdentityFromEnv()
	if cfg != (ManagedIdentityConfig{}) || tenant != "" || authority != "" {
		t.Errorf("empty environment gave %+v, %q, %q", cfg, tenant, authority)
	}
}

func TestManagedIdentityHostNames(t *testing.T) {
	// Only the environment matters for the name.
	fake := graphtest.New(t, graphtest.Config{ArcTokenDir: t.TempDir()})
	for host, want := range map[string]string{"imds": "IMDS", "appservice": "App Service", "arc": "Arc", "servicefabric": "Service Fabric", "cloudshell": "Cloud Shell"} {
		miHost(t, fake, host)
		if got := ManagedIdentityHost(); !strings.Contains(got, want) {
			t.Errorf("%s: host %q, want it to name %s", host, got, want)
		}
	}
}

// The context given to NewTokenSource must reach managed identity requests.
func TestManagedIdentityUsesContext(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	miHost(t, fake, "imds")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ts, err := NewTokenSource(ctx, miConfig(fake, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
