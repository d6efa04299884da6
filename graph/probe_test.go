package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// probeClient returns a Client for fake whose tokens carry roles.
func probeClient(fake *graphtest.Server, roles []string) *Client {
	newTokens := func() oauth2.TokenSource {
		return oauth2.StaticTokenSource(&oauth2.Token{
			AccessToken: fake.MintAccessToken(roles, time.Hour), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
	}
	return NewClient(fake.GraphURL(), fake.HTTPClient(), newTokens, slog.New(slog.DiscardHandler))
}

func TestProbeAccess(t *testing.T) {
	const (
		allowed  = "scans@contoso.com"
		outside  = "alerts@contoso.com"
		onPrem   = "legacy@contoso.com"
		unknown  = "nobody@contoso.com"
		allowID  = "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"
		throttle = "busy@contoso.com"
	)
	fake := graphtest.New(t, graphtest.Config{
		Mailboxes: []graphtest.Mailbox{
			{Address: allowed, ID: allowID}, {Address: outside}, {Address: onPrem, NoExchange: true}, {Address: throttle},
		},
		AccessPolicy: []string{allowed, throttle},
	})
	fake.FailGraph(graphtest.Fault{Mailbox: throttle, Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c := probeClient(fake, []string{"Mail.Send"})
	tests := []struct {
		mailbox string
		access  Access
		code    string
		hint    string
		policy  bool
	}{
		{allowed, AccessGranted, "ErrorInvalidRecipients", "", false},
		{allowID, AccessGranted, "ErrorInvalidRecipients", "", false},
		{outside, AccessDenied, "ErrorAccessDenied", "mail-enabled security group", true},
		{onPrem, AccessNoMailbox, "MailboxNotEnabledForRESTAPI", "no Exchange Online mailbox", false},
		{unknown, AccessNoMailbox, "ErrorInvalidUser", "does not exist", false},
		{throttle, AccessUnknown, "TooManyRequests", "throttled", false},
	}
	for _, tt := range tests {
		t.Run(tt.mailbox, func(t *testing.T) {
			res := c.ProbeAccess(context.Background(), tt.mailbox)
			if res.Access != tt.access || res.Accepted {
				t.Fatalf("access %q accepted %v, want %q; err %v", res.Access, res.Accepted, tt.access, res.Err)
			}
			if res.Err == nil || res.Err.Code != tt.code || res.Err.PolicyDenied() != tt.policy {
				t.Fatalf("err %v, want code %s policy %v", res.Err, tt.code, tt.policy)
			}
			if !strings.Contains(res.Err.Hint(), tt.hint) {
				t.Errorf("hint %q lacks %q", res.Err.Hint(), tt.hint)
			}
			if res.Err.RequestID == "" {
				t.Error("no request-id: the admin cannot quote it to Microsoft")
			}
		})
	}
	// The probe must never deliver: the fake records only accepted sends.
	if ds := fake.Deliveries(); len(ds) != 0 {
		t.Fatalf("the probe delivered %d message(s): %+v", len(ds), ds)
	}
	for _, r := range fake.GraphRequests() {
		if !strings.HasSuffix(r.Path, "/sendMail") || r.Status == http.StatusAccepted {
			t.Errorf("unexpected Graph request %s %s -> %d", r.Method, r.Path, r.Status)
		}
	}
}

// Without Mail.Send, Graph refuses before looking at the mailbox, so the
// probe reports a denial whose hint is about the permission, not the
// policy.
func TestProbeAccessWithoutMailSend(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{AccessPolicy: []string{}})
	res := probeClient(fake, []string{"User.Read.All"}).ProbeAccess(context.Background(), "scans@contoso.com")
	if res.Access != AccessDenied || res.Err == nil || res.Err.PolicyDenied() {
		t.Fatalf("got %+v", res)
	}
	if !strings.Contains(res.Err.Hint(), "Mail.Send (Application") {
		t.Errorf("hint %q", res.Err.Hint())
	}
}

func TestProbeAccessTokenFailure(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	newTokens := func() oauth2.TokenSource {
		return oauth2.ReuseTokenSource(nil, tokenFunc(func() (*oauth2.Token, error) {
			return nil, errors.New("no route to Entra")
		}))
	}
	c := NewClient(fake.GraphURL(), fake.HTTPClient(), newTokens, slog.New(slog.DiscardHandler))
	res := c.ProbeAccess(context.Background(), "scans@contoso.com")
	if res.Access != AccessUnknown || res.Err == nil || res.Err.Op != "token" {
		t.Fatalf("got %+v", res)
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests without a token", n)
	}
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

func TestParseTokenClaims(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c, err := ParseTokenClaims(fake.MintAccessToken([]string{"Mail.Send", "Mail.ReadWrite"}, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasRole("Mail.Send") || !c.HasRole("Mail.ReadWrite") || c.HasRole("mail.send") {
		t.Errorf("roles %v", c.Roles)
	}
	if c.AppID != fake.ClientID() || c.TenantID != fake.TenantID() || c.IDType != "app" || c.AppIDACR != "2" || c.Scopes != "" {
		t.Errorf("claims %+v", c)
	}
	if d := time.Until(c.Expiry()); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Errorf("expiry in %v", d)
	}
	none, err := ParseTokenClaims(fake.MintAccessToken(nil, time.Hour))
	if err != nil || len(none.Roles) != 0 {
		t.Errorf("no-roles token: %+v %v", none, err)
	}
}

func TestParseTokenClaimsNeverQuotesTheToken(t *testing.T) {
	for _, tok := range []string{"secret-opaque-token", "a.!!!secret!!!.c", "a." + "eyJzZWNyZXQi" + ".c"} {
		_, err := ParseTokenClaims(tok)
		if err == nil {
			t.Fatalf("%q parsed", tok)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "eyJ") {
			t.Errorf("error quotes the token: %v", err)
		}
	}
}

func TestTokenErrorClassifiesAADSTS(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{Secrets: []graphtest.Secret{{Value: "old", Expired: true}}})
	ts, err := NewTokenSource(context.Background(), TokenConfig{HTTPClient: fake.HTTPClient(), TokenURL: fake.TokenURL(),
		Scope: graphtest.DefaultGraphScope, ClientID: fake.ClientID(), ClientSecret: "old"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token()
	e := TokenError(err)
	if e == nil || e.Code != "AADSTS7000222" || !strings.Contains(e.Hint(), "expired") || !strings.Contains(e.Message, "expired") {
		t.Fatalf("got %+v", e)
	}
	if TokenError(nil) != nil {
		t.Error("nil error classified")
	}
}

// Four requests that get their 401 together cause one token refresh, not
// four: the token cache promises one refresh at a time.
func TestConcurrent401sRefreshOnce(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	var mu sync.Mutex
	built := 0
	newTokens := func() oauth2.TokenSource {
		mu.Lock()
		built++
		mu.Unlock()
		return oauth2.ReuseTokenSource(nil, tokenFunc(func() (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: fake.MintAccessToken([]string{"Mail.Send"}, time.Hour), TokenType: "Bearer",
				Expiry: time.Now().Add(time.Hour)}, nil
		}))
	}
	c := NewClient(fake.GraphURL(), fake.HTTPClient(), newTokens, slog.New(slog.DiscardHandler))
	const n = 4
	for range n {
		// The delay keeps all four in flight until each has its 401.
		fake.FailGraph(graphtest.Fault{Status: 401, Code: "InvalidAuthenticationToken", Delay: 300 * time.Millisecond})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.SendMIME(context.Background(), "scans@contoso.com", []byte("From: scans@contoso.com\r\nTo: b@contoso.com\r\nSubject: x\r\n\r\nbody\r\n"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("send after the refresh: %v", err)
		}
	}
	var got401 int
	for _, g := range fake.GraphRequests() {
		if g.Status == 401 {
			got401++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got401 != n || built != 2 {
		t.Errorf("%d requests got 401 and %d token caches were built; want %d and 2 (the first and one refresh)", got401, built, n)
	}
}
