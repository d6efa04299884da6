package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// credFakeIMDS mimics the IMDS token endpoint, including its refusal of
// requests without the Metadata header.
type credFakeIMDS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []url.Values
	respond func(n int) (int, string)
}

func newCredFakeIMDS(t *testing.T, respond func(n int) (int, string)) *credFakeIMDS {
	t.Helper()
	f := &credFakeIMDS{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Method != http.MethodGet || r.URL.Path != "/metadata/identity/oauth2/token" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Header.Get("Metadata") != "true" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"Required metadata header not specified"}`)
			return
		}
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.Query())
		n := len(f.queries)
		f.mu.Unlock()
		status, body := f.respond(n)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *credFakeIMDS) endpoint() string { return f.srv.URL + "/metadata/identity/oauth2/token" }

func (f *credFakeIMDS) requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.queries...)
}

func credIMDSConfig(f *credFakeIMDS, clientID string) TokenConfig {
	return TokenConfig{
		HTTPClient:      f.srv.Client(),
		Scope:           credScope,
		ManagedIdentity: &ManagedIdentityConfig{ClientID: clientID, Endpoint: f.endpoint()},
	}
}

func TestManagedIdentityIMDS(t *testing.T) {
	f := newCredFakeIMDS(t, func(n int) (int, string) {
		// Numbers as strings, exactly as IMDS sends them.
		return http.StatusOK, fmt.Sprintf(`{"access_token":"mi-token-%d","refresh_token":"","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://graph.microsoft.com","token_type":"Bearer"}`, n)
	})
	for _, tc := range []struct {
		name, clientID string
	}{
		{"system-assigned", ""},
		{"user-assigned", "11111111-2222-3333-4444-555555555555"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.requests())
			start := time.Now()
			ts := credMustSource(t, credIMDSConfig(f, tc.clientID))
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.AccessToken, "mi-token-") || tok.Type() != "Bearer" {
				t.Errorf("token = %q (%s)", tok.AccessToken, tok.Type())
			}
			// expires_in wins over the (long past) expires_on.
			if d := tok.Expiry.Sub(start); d < 3590*time.Second || d > 3600*time.Second {
				t.Errorf("expiry %v from now, want about 3599s", d)
			}
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d IMDS requests, want 1 (cached)", len(reqs))
			}
			q := reqs[0]
			if q.Get("api-version") != "2018-02-01" {
				t.Errorf("api-version = %q", q.Get("api-version"))
			}
			if q.Get("resource") != "https://graph.microsoft.com" {
				t.Errorf("resource = %q, want the scope without /.default", q.Get("resource"))
			}
			if tc.clientID == "" && q.Has("client_id") {
				t.Errorf("client_id %q sent for the system-assigned identity", q.Get("client_id"))
			}
			if tc.clientID != "" && q.Get("client_id") != tc.clientID {
				t.Errorf("client_id = %q, want %q", q.Get("client_id"), tc.clientID)
			}
		})
	}
}

func TestManagedIdentityIMDSExpiresOnOnly(t *testing.T) {
	on := time.Now().Add(time.Hour).Unix()
	f := newCredFakeIMDS(t, func(int) (int, string) {
		return http.StatusOK, fmt.Sprintf(`{"access_token":"a","expires_on":"%d","token_type":"Bearer"}`, on)
	})
	tok, err := credMustSource(t, credIMDSConfig(f, "")).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expiry.Unix() != on {
		t.Errorf("expiry = %v, want expires_on %d", tok.Expiry, on)
	}
}

func TestManagedIdentityIMDSNumericFields(t *testing.T) {
	f := newCredFakeIMDS(t, func(int) (int, string) {
		return http.StatusOK, `{"access_token":"a","expires_in":3599,"token_type":"Bearer"}`
	})
	if _, err := credMustSource(t, credIMDSConfig(f, "")).Token(); err != nil {
		t.Errorf("JSON numbers rejected: %v", err)
	}
}

func TestManagedIdentityIMDSErrors(t *testing.T) {
	const notFound = `{"error":"invalid_request","error_description":"Identity not found"}`
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		wantCode string // "-" means a local error, not a RetrieveError
		wantErr  string
	}{
		{"unknown identity", http.StatusBadRequest, notFound, "invalid_request", "Identity not found"},
		{"throttled", http.StatusTooManyRequests, `Too many requests`, "", "429"},
		{"error in a 200", http.StatusOK, notFound, "invalid_request", ""},
		{"no expiry", http.StatusOK, `{"access_token":"a","token_type":"Bearer"}`, "-", "neither expires_in nor expires_on"},
		{"no token", http.StatusOK, `{"expires_in":"3599"}`, "-", "no access_token"},
		{"bad number", http.StatusOK, `{"access_token":"a","expires_in":"soon"}`, "-", "parse IMDS response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCredFakeIMDS(t, func(int) (int, string) { return tc.status, tc.body })
			_, err := credMustSource(t, credIMDSConfig(f, "")).Token()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			var re *oauth2.RetrieveError
			isRE := errors.As(err, &re)
			if tc.wantCode == "-" {
				if isRE {
					t.Errorf("err = %v is a RetrieveError, want a local error", err)
				}
				return
			}
			if !isRE {
				t.Fatalf("err = %v (%T), want *oauth2.RetrieveError inside", err, err)
			}
			if re.Response == nil || re.Response.StatusCode != tc.status || string(re.Body) != tc.body {
				t.Errorf("RetrieveError status/body = %v/%s", re.Response, re.Body)
			}
			if re.ErrorCode != tc.wantCode {
				t.Errorf("ErrorCode = %q, want %q", re.ErrorCode, tc.wantCode)
			}
		})
	}
}

func TestManagedIdentityIMDSMetadataHeaderRequired(t *testing.T) {
	// The fake refuses requests without the header; a request that gets a
	// token therefore sent it. Check the refusal path works as a fake too.
	f := newCredFakeIMDS(t, func(int) (int, string) { return http.StatusOK, `{}` })
	resp, err := f.srv.Client().Get(f.endpoint() + "?api-version=2018-02-01&resource=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(f.requests()) != 0 {
		t.Errorf("fake accepted a request without Metadata: true (%d)", resp.StatusCode)
	}
}

func TestManagedIdentityIMDSBypassesProxy(t *testing.T) {
	// A "proxy" that fails every request it sees: if the IMDS request went
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
	f := newCredFakeIMDS(t, func(int) (int, string) {
		return http.StatusOK, `{"access_token":"a","expires_in":"3599","token_type":"Bearer"}`
	})
	// Like the daemon's shared client, which honours HTTP(S)_PROXY.
	proxyClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 7 * time.Second}
	cfg := credIMDSConfig(f, "")
	cfg.HTTPClient = proxyClient
	if _, err := credMustSource(t, cfg).Token(); err != nil {
		t.Fatalf("IMDS through a proxy-configured client: %v", err)
	}
	if proxied.Load() != 0 || len(f.requests()) != 1 {
		t.Errorf("%d requests went through the proxy, %d reached IMDS; want 0 and 1", proxied.Load(), len(f.requests()))
	}
	// The caller's client is left alone; the copy keeps its timeout.
	if proxyClient.Transport.(*http.Transport).Proxy == nil {
		t.Error("the caller's transport was modified")
	}
	if c := clientWithoutProxy(proxyClient); c.Timeout != 7*time.Second || c.Transport.(*http.Transport).Proxy != nil {
		t.Errorf("copy: timeout %v, proxy set %v", c.Timeout, c.Transport.(*http.Transport).Proxy != nil)
	}
	if tr, ok := clientWithoutProxy(nil).Transport.(*http.Transport); ok && tr.Proxy != nil {
		t.Error("the default IMDS client uses a proxy")
	}
	if (&ManagedIdentityConfig{}).endpoint() != DefaultIMDSEndpoint {
		t.Error("empty Endpoint does not select IMDS")
	}
}

func TestManagedIdentityFederatedToken(t *testing.T) {
	f := newCredFakeEntra(t, func(n int, _ url.Values) (int, string) { return credTokenJSON(n, 60) })
	path := filepath.Join(t.TempDir(), "azure-identity-token")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const wiClientID = "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb"
	ts := credMustSource(t, TokenConfig{
		HTTPClient: f.srv.Client(),
		TokenURL:   f.tokenURL(),
		Scope:      credScope,
		ManagedIdentity: &ManagedIdentityConfig{
			ClientID:           wiClientID,
			FederatedTokenFile: path,
		},
	})

	// kubelet rotates the projected token; each refresh must send the
	// current file content (the 60 s token forces a refresh per call).
	for _, jwt := range []string{"eyJ.first.sig\n", "eyJ.second.sig"} {
		write(jwt)
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, want := range []string{"eyJ.first.sig", "eyJ.second.sig"} {
		form := reqs[i]
		if got := form.Get("client_assertion"); got != want {
			t.Errorf("request %d client_assertion = %q, want %q", i+1, got, want)
		}
		for k, v := range map[string]string{
			"client_assertion_type": ClientAssertionType,
			"client_id":             wiClientID,
			"grant_type":            "client_credentials",
			"scope":                 credScope,
		} {
			if form.Get(k) != v {
				t.Errorf("request %d %s = %q, want %q", i+1, k, form.Get(k), v)
			}
		}
	}
}

func TestManagedIdentityFederatedTokenFileProblems(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, wantErr string }{
		{filepath.Join(dir, "missing"), "read federated token"},
		{empty, "is empty"},
	} {
		_, err := credMustSource(t, TokenConfig{
			HTTPClient:      f.srv.Client(),
			TokenURL:        f.tokenURL(),
			Scope:           credScope,
			ClientID:        credClientID, // used when the identity has none
			ManagedIdentity: &ManagedIdentityConfig{FederatedTokenFile: tc.path},
		}).Token()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.path, err, tc.wantErr)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests without an assertion", n)
	}
}

func TestManagedIdentityFederatedFallsBackToClientID(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("eyJ.x.y"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := credMustSource(t, TokenConfig{
		HTTPClient:      f.srv.Client(),
		TokenURL:        f.tokenURL(),
		Scope:           credScope,
		ClientID:        credClientID,
		ManagedIdentity: &ManagedIdentityConfig{FederatedTokenFile: path},
	}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Get("client_id"); got != credClientID {
		t.Errorf("client_id = %q, want TokenConfig.ClientID", got)
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

// The context given to NewTokenSource must reach IMDS requests as well.
func TestManagedIdentityIMDSUsesContext(t *testing.T) {
	f := newCredFakeIMDS(t, func(int) (int, string) { return http.StatusOK, `{"access_token":"a","expires_in":"3599"}` })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ts, err := NewTokenSource(ctx, credIMDSConfig(f, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
