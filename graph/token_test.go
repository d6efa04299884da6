package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	credClientID = "97e0a5b7-d745-40b6-94fe-5f77d35c6e05"
	credScope    = "https://graph.microsoft.com/.default"
)

// credFakeEntra is a minimal v2.0 token endpoint on a loopback TLS server.
type credFakeEntra struct {
	srv *httptest.Server

	mu      sync.Mutex
	forms   []url.Values
	headers []http.Header
	// respond answers request n (1-based).
	respond func(n int, form url.Values) (status int, body string)
	// gate, when set, holds every request until it is closed.
	gate chan struct{}
	// arrived receives a value (without blocking) when a request arrives.
	arrived chan struct{}
}

func newCredFakeEntra(t *testing.T, respond func(n int, form url.Values) (int, string)) *credFakeEntra {
	t.Helper()
	f := &credFakeEntra{respond: respond, arrived: make(chan struct{}, 1)}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *credFakeEntra) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/contoso/oauth2/v2.0/token" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.forms = append(f.forms, r.PostForm)
	f.headers = append(f.headers, r.Header.Clone())
	n := len(f.forms)
	gate := f.gate
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			// A hung endpoint never answers. Returning would make
			// net/http send an empty 200, which a client still waiting
			// could read as a malformed token response; abort instead.
			panic(http.ErrAbortHandler)
		}
	}
	status, body := f.respond(n, r.PostForm)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *credFakeEntra) tokenURL() string { return f.srv.URL + "/contoso/oauth2/v2.0/token" }

func (f *credFakeEntra) requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms...)
}

// credTokenJSON is an Entra success body; token n differs from token n+1.
func credTokenJSON(n, expiresIn int) (int, string) {
	return http.StatusOK, fmt.Sprintf(`{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":"token-%d"}`, expiresIn, expiresIn, n)
}

func credLongToken(n int, _ url.Values) (int, string) { return credTokenJSON(n, 3599) }

func credCertConfig(f *credFakeEntra, cert *Certificate) TokenConfig {
	return TokenConfig{
		HTTPClient:  f.srv.Client(),
		TokenURL:    f.tokenURL(),
		Scope:       credScope,
		ClientID:    credClientID,
		Certificate: cert,
	}
}

func credMustSource(t *testing.T, cfg TokenConfig) oauth2.TokenSource {
	t.Helper()
	ts, err := NewTokenSource(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestTokenSourceCertificateRequest(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	cert := credTestCertificate(t)
	cfg := credCertConfig(f, cert)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg.Now = func() time.Time { return now }

	start := time.Now()
	tok, err := credMustSource(t, cfg).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "token-1" || tok.Type() != "Bearer" {
		t.Errorf("token = %q (%s)", tok.AccessToken, tok.Type())
	}
	// expires_in counts from the response, which came between start and
	// now; how long the request took is not the question.
	if lo, hi := start.Add(3599*time.Second), time.Now().Add(3599*time.Second); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("expiry %v after the request started, want 3599s after the response", tok.Expiry.Sub(start))
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	form := reqs[0]
	for k, want := range map[string]string{
		"grant_type":            "client_credentials",
		"client_id":             credClientID,
		"scope":                 credScope,
		"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
	} {
		if got := form.Get(k); got != want {
			t.Errorf("form %s = %q, want %q", k, got, want)
		}
	}
	if form.Has("client_secret") {
		t.Error("client_secret sent with a certificate")
	}
	if h := f.headers[0].Get("Authorization"); h != "" {
		t.Errorf("Authorization header %q sent", h)
	}

	j := credParseJWT(t, form.Get("client_assertion"))
	if err := j.verify(&cert.Key.PublicKey); err != nil {
		t.Errorf("assertion signature: %v", err)
	}
	if j.header["alg"] != "PS256" {
		t.Errorf("default alg = %v, want PS256", j.header["alg"])
	}
	if j.claims["aud"] != f.tokenURL() {
		t.Errorf("aud = %v, want the token URL %s", j.claims["aud"], f.tokenURL())
	}
	if got := j.claimInt(t, "nbf"); got != now.Unix() {
		t.Errorf("nbf = %d, want TokenConfig.Now %d", got, now.Unix())
	}
}

func TestTokenSourceCertificateRS256X5C(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	cert := credTestCertificate(t)
	cfg := credCertConfig(f, cert)
	cfg.Alg = AssertionRS256
	cfg.SendX5C = true
	if _, err := credMustSource(t, cfg).Token(); err != nil {
		t.Fatal(err)
	}
	j := credParseJWT(t, f.requests()[0].Get("client_assertion"))
	if j.header["alg"] != "RS256" || j.header["x5t"] == nil || j.header["x5c"] == nil {
		t.Errorf("header = %v, want RS256 with x5t and x5c", j.header)
	}
	if err := j.verify(&cert.Key.PublicKey); err != nil {
		t.Errorf("assertion signature: %v", err)
	}
}

func TestTokenSourceClientSecretRequest(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	ts := credMustSource(t, TokenConfig{
		HTTPClient:   f.srv.Client(),
		TokenURL:     f.tokenURL(),
		Scope:        credScope,
		ClientID:     credClientID,
		ClientSecret: "s3cr3t~value",
	})
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	for k, want := range map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     credClientID,
		"client_secret": "s3cr3t~value",
		"scope":         credScope,
	} {
		if got := reqs[0].Get(k); got != want {
			t.Errorf("form %s = %q, want %q", k, got, want)
		}
	}
	if reqs[0].Has("client_assertion") || reqs[0].Has("client_assertion_type") {
		t.Error("assertion fields sent with a secret")
	}
}

func TestTokenSourceCaches(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	ts := credMustSource(t, credCertConfig(f, credTestCertificate(t)))
	for i := range 3 {
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "token-1" {
			t.Errorf("call %d got %q, want the cached token-1", i, tok.AccessToken)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestTokenSourceRefreshesEarly(t *testing.T) {
	for _, tc := range []struct {
		name          string
		expiresIn     int
		refreshBefore time.Duration
		wantRequests  int
	}{
		{"default lead exceeds lifetime", 60, 0, 2},
		{"lifetime beyond lead", 120, time.Minute, 1},
		{"lead exceeds lifetime", 120, 3 * time.Minute, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCredFakeEntra(t, func(n int, _ url.Values) (int, string) { return credTokenJSON(n, tc.expiresIn) })
			cfg := credCertConfig(f, credTestCertificate(t))
			cfg.RefreshBefore = tc.refreshBefore
			ts := credMustSource(t, cfg)
			var last string
			for range 2 {
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				last = tok.AccessToken
			}
			if n := len(f.requests()); n != tc.wantRequests {
				t.Errorf("%d token requests, want %d", n, tc.wantRequests)
			}
			if want := fmt.Sprintf("token-%d", tc.wantRequests); last != want {
				t.Errorf("second call got %q, want %q", last, want)
			}
		})
	}
}

func TestTokenSourceFreshAssertionPerRefresh(t *testing.T) {
	f := newCredFakeEntra(t, func(n int, _ url.Values) (int, string) { return credTokenJSON(n, 60) })
	cert := credTestCertificate(t)
	ts := credMustSource(t, credCertConfig(f, cert))
	for range 2 {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	j1 := credParseJWT(t, reqs[0].Get("client_assertion"))
	j2 := credParseJWT(t, reqs[1].Get("client_assertion"))
	if j1.claims["jti"] == j2.claims["jti"] {
		t.Errorf("both refreshes used jti %v", j1.claims["jti"])
	}
	for i, j := range []credJWT{j1, j2} {
		if err := j.verify(&cert.Key.PublicKey); err != nil {
			t.Errorf("assertion %d: %v", i+1, err)
		}
	}
}

// TestTokenSourceNoStampede proves that concurrent callers share one
// refresh: all of them are inside Token() while the first request is held
// at the server, and when it completes they all get its token.
func TestTokenSourceNoStampede(t *testing.T) {
	const callers = 50
	f := newCredFakeEntra(t, credLongToken)
	f.gate = make(chan struct{})
	ts := credMustSource(t, credCertConfig(f, credTestCertificate(t)))

	var (
		wg      sync.WaitGroup
		started atomic.Int32
		tokens  = make([]string, callers)
		errs    = make([]error, callers)
	)
	for i := range callers {
		wg.Go(func() {
			started.Add(1)
			tok, err := ts.Token()
			errs[i] = err
			if err == nil {
				tokens[i] = tok.AccessToken
			}
		})
	}
	<-f.arrived
	for started.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	// Give the late starters time to block in Token() too.
	time.Sleep(100 * time.Millisecond)
	close(f.gate)
	wg.Wait()

	if n := len(f.requests()); n != 1 {
		t.Errorf("%d token requests for %d concurrent callers, want 1", n, callers)
	}
	for i := range callers {
		if errs[i] != nil || tokens[i] != "token-1" {
			t.Errorf("caller %d: token %q, err %v", i, tokens[i], errs[i])
		}
	}
}

const credAADSTS700027 = `{"error":"invalid_client","error_description":"AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2025-01-09 02:02:12Z","error_codes":[700027],"timestamp":"2025-01-09 02:02:12Z","trace_id":"0000aaaa-11bb-cccc-dd33-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code=700027"}`

func TestTokenSourceErrorIsRetrieveError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		code   string
		cfg    func(*credFakeEntra) TokenConfig
	}{
		{"certificate 401", http.StatusUnauthorized, credAADSTS700027, "invalid_client",
			func(f *credFakeEntra) TokenConfig { return credCertConfig(f, credTestCertificate(t)) }},
		{"secret 400", http.StatusBadRequest,
			`{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' isn't valid.","error_codes":[70011]}`,
			"invalid_scope",
			func(f *credFakeEntra) TokenConfig {
				return TokenConfig{HTTPClient: f.srv.Client(), TokenURL: f.tokenURL(), Scope: credScope, ClientID: credClientID, ClientSecret: "x"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCredFakeEntra(t, func(int, url.Values) (int, string) { return tc.status, tc.body })
			_, err := credMustSource(t, tc.cfg(f)).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want *oauth2.RetrieveError inside", err, err)
			}
			if re.Response == nil || re.Response.StatusCode != tc.status {
				t.Errorf("Response = %v, want status %d", re.Response, tc.status)
			}
			if string(re.Body) != tc.body {
				t.Errorf("Body = %s, want the AADSTS body intact", re.Body)
			}
			if re.ErrorCode != tc.code {
				t.Errorf("ErrorCode = %q, want %q", re.ErrorCode, tc.code)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no auth-style probing)", n)
			}
		})
	}
}

func TestTokenSourceSharesFailure(t *testing.T) {
	const callers = 20
	var fail atomic.Bool
	fail.Store(true)
	f := newCredFakeEntra(t, func(n int, form url.Values) (int, string) {
		if fail.Load() {
			return http.StatusUnauthorized, credAADSTS700027
		}
		return credLongToken(n, form)
	})
	f.gate = make(chan struct{})
	ts := credMustSource(t, credCertConfig(f, credTestCertificate(t)))

	var (
		wg      sync.WaitGroup
		started atomic.Int32
		failed  atomic.Int32
	)
	for range callers {
		wg.Go(func() {
			started.Add(1)
			var re *oauth2.RetrieveError
			if _, err := ts.Token(); errors.As(err, &re) {
				failed.Add(1)
			}
		})
	}
	<-f.arrived
	for started.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests for %d queued callers of a failing refresh, want 1", n, callers)
	}
	if failed.Load() != callers {
		t.Errorf("%d callers got the RetrieveError, want %d", failed.Load(), callers)
	}

	// Once the hold has passed, a retry makes a new request.
	fail.Store(false)
	time.Sleep(failedRefreshHold + 50*time.Millisecond)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "token-2" {
		t.Errorf("retry got %q, want token-2", tok.AccessToken)
	}
}

func TestTokenSourceRequestTimeout(t *testing.T) {
	f := newCredFakeEntra(t, credLongToken)
	f.gate = make(chan struct{}) // never opened: the endpoint hangs
	cfg := credCertConfig(f, credTestCertificate(t))
	cfg.RequestTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := credMustSource(t, cfg).Token()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	// Without RequestTimeout the call would hang on the gate for good; the
	// deadline error shows that the timeout ended it.
	if d := time.Since(start); d < cfg.RequestTimeout {
		t.Errorf("gave up after %v, before the %v request timeout", d, cfg.RequestTimeout)
	}
}

func TestTokenSourceKeepsContext(t *testing.T) {
	f := newCredFakeEntra(t, func(n int, _ url.Values) (int, string) { return credTokenJSON(n, 60) })
	ctx, cancel := context.WithCancel(context.Background())
	ts, err := NewTokenSource(ctx, credCertConfig(f, credTestCertificate(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	// The short-lived token needs a refresh, which must use the cancelled
	// construction context.
	cancel()
	if _, err := ts.Token(); !errors.Is(err, context.Canceled) {
		t.Errorf("refresh after cancel: err = %v, want context.Canceled", err)
	}
}

func TestTokenSourceMissingExpiry(t *testing.T) {
	f := newCredFakeEntra(t, func(int, url.Values) (int, string) {
		return http.StatusOK, `{"token_type":"Bearer","access_token":"forever"}`
	})
	_, err := credMustSource(t, credCertConfig(f, credTestCertificate(t))).Token()
	if err == nil || !strings.Contains(err.Error(), "no expiry") {
		t.Errorf("err = %v, want a missing-expiry error", err)
	}
}

func TestNewTokenSourceValidation(t *testing.T) {
	cert := credTestCertificate(t)
	base := TokenConfig{TokenURL: "https://login.microsoftonline.com/contoso/oauth2/v2.0/token", Scope: credScope, ClientID: credClientID}
	with := func(mod func(*TokenConfig)) TokenConfig {
		c := base
		mod(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     TokenConfig
		wantErr string
	}{
		{"no credential", base, "exactly one credential"},
		{"two credentials", with(func(c *TokenConfig) { c.Certificate = cert; c.ClientSecret = "x" }), "got 2"},
		{"three credentials", with(func(c *TokenConfig) {
			c.Certificate = cert
			c.ClientSecret = "x"
			c.ManagedIdentity = &ManagedIdentityConfig{}
		}), "got 3"},
		{"no scope", with(func(c *TokenConfig) { c.ClientSecret = "x"; c.Scope = "" }), "scope is required"},
		{"no token URL", with(func(c *TokenConfig) { c.ClientSecret = "x"; c.TokenURL = "" }), "token URL is required"},
		{"plain http token URL", with(func(c *TokenConfig) {
			c.ClientSecret = "x"
			c.TokenURL = "http://login.example.test/t/oauth2/v2.0/token"
		}), "token URL"},
		{"no client ID", with(func(c *TokenConfig) { c.ClientSecret = "x"; c.ClientID = "" }), "client ID is required"},
		{"bad alg", with(func(c *TokenConfig) { c.Certificate = cert; c.Alg = "ES256" }), "unsupported assertion algorithm"},
		{"keyless certificate", with(func(c *TokenConfig) { c.Certificate = &Certificate{Leaf: cert.Leaf} }), "no key"},
		{"negative lead", with(func(c *TokenConfig) { c.ClientSecret = "x"; c.RefreshBefore = -time.Second }), "negative"},
		{"federated without client ID", with(func(c *TokenConfig) {
			c.ClientID = ""
			c.ManagedIdentity = &ManagedIdentityConfig{FederatedTokenFile: "/tmp/x"}
		}), "client ID is required"},
		{"bad IMDS endpoint", with(func(c *TokenConfig) { c.ManagedIdentity = &ManagedIdentityConfig{Endpoint: "169.254.169.254/token"} }), "managed identity endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTokenSource(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}

	// IMDS needs neither a token URL nor a client ID.
	if _, err := NewTokenSource(context.Background(), TokenConfig{Scope: credScope, ManagedIdentity: &ManagedIdentityConfig{}}); err != nil {
		t.Errorf("system-assigned managed identity: %v", err)
	}
}
