package graphtest

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMailboxResolution(t *testing.T) {
	const relayID = "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"
	s := New(t, Config{Mailboxes: []Mailbox{
		{Address: "relay@contoso.com", ID: relayID},
		{Address: "onprem@contoso.com", NoExchange: true},
	}})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)

	g := sendJSON(t, s, tok, "nobody@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 404 || code != "ErrorInvalidUser" || msg != "The requested user 'nobody@contoso.com' is invalid." {
		t.Errorf("unknown mailbox: %d %s %q", g.status, code, msg)
	}
	g = sendJSON(t, s, tok, "onprem@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 404 || code != "MailboxNotEnabledForRESTAPI" || msg != mailboxNotEnabledMessage {
		t.Errorf("no Exchange mailbox: %d %s %q", g.status, code, msg)
	}
	// By object id, with a From that is the mailbox's address.
	withFrom := `{"message":{"from":{"emailAddress":{"address":"relay@contoso.com"}},"toRecipients":[{"emailAddress":{"address":"a@contoso.com"}}]}}`
	if g := sendJSON(t, s, tok, strings.ToUpper(relayID), withFrom); g.status != 202 {
		t.Errorf("by object id: %d %s", g.status, g.body)
	}
	if g := sendJSON(t, s, tok, "RELAY@CONTOSO.COM", simpleMessage); g.status != 202 {
		t.Errorf("address case: %d %s", g.status, g.body)
	}
}

func TestAccessPolicy(t *testing.T) {
	const sharedID = "0a1b2c3d-0000-4000-8000-00000000abcd"
	s := New(t, Config{
		Mailboxes:    []Mailbox{{Address: "relay@contoso.com"}, {Address: "shared@contoso.com", ID: sharedID}},
		AccessPolicy: []string{"Relay@Contoso.com"},
	})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Fatalf("allowed mailbox: %d %s", g.status, g.body)
	}
	g := sendJSON(t, s, tok, "shared@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 403 || code != "ErrorAccessDenied" ||
		msg != "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings." {
		t.Errorf("blocked mailbox: %d %s %q", g.status, code, msg)
	}
	s.SetAccessPolicy([]string{sharedID})
	if g := sendJSON(t, s, tok, "shared@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("allowed by object id: %d %s", g.status, g.body)
	}
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 403 {
		t.Errorf("no longer allowed: %d", g.status)
	}
	s.SetAccessPolicy(nil)
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("policy removed: %d", g.status)
	}
}

func TestGraphAuthentication(t *testing.T) {
	s := New(t, Config{})
	other := New(t, Config{})
	cases := []struct {
		name, token, message string
	}{
		{"no token", "", "Access token is empty."},
		{"expired", s.MintAccessToken([]string{"Mail.Send"}, -time.Minute), "Lifetime validation failed, the token is expired."},
		{"another fake's token", other.MintAccessToken([]string{"Mail.Send"}, time.Hour), "Access token validation failure."},
		{"not a JWT", "garbage", "CompactToken parsing failed with error code: 80049217"},
		{"wrong audience", s.MintAccessTokenFor("https://management.azure.com", []string{"Mail.Send"}, time.Hour), "Access token validation failure. Invalid audience."},
	}
	for _, tc := range cases {
		g := sendJSON(t, s, tc.token, "relay@contoso.com", simpleMessage)
		if code, msg := g.errorCode(t); g.status != 401 || code != "InvalidAuthenticationToken" || msg != tc.message {
			t.Errorf("%s: %d %s %q", tc.name, g.status, code, msg)
		}
		if !strings.HasPrefix(g.header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, g.header.Get("WWW-Authenticate"))
		}
	}
	g := graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/me/sendMail", s.MintAccessToken([]string{"Mail.Send"}, time.Hour), "application/json", []byte(simpleMessage))
	if _, msg := g.errorCode(t); g.status != 400 || msg != "/me request is only valid with delegated authentication flow." {
		t.Errorf("/me: %d %q", g.status, msg)
	}
	// A token fetched with a real client flow works and carries the role.
	s2 := New(t, certConfig(t))
	if g := sendJSON(t, s2, accessToken(t, s2), "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("issued token: %d %s", g.status, g.body)
	}
}

func TestRequestTooLarge(t *testing.T) {
	s := New(t, Config{})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	big := bytes.Repeat([]byte("a"), DefaultMaxRequestBytes+1)
	g := graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/relay@contoso.com/sendMail", tok, "text/plain", big)
	if g.status != http.StatusRequestEntityTooLarge {
		t.Errorf("4,000,001 bytes: %d", g.status)
	}
	// Exactly at the limit the size check passes (and MIME parsing fails).
	exact := bytes.Repeat([]byte("QUFB"), DefaultMaxRequestBytes/4)
	g = graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/relay@contoso.com/sendMail", tok, "text/plain", exact)
	if g.status != http.StatusBadRequest {
		t.Errorf("4,000,000 bytes: %d %s", g.status, g.body)
	}

	small := New(t, Config{MaxRequestBytes: 1000})
	g = sendJSON(t, small, small.MintAccessToken([]string{"Mail.Send"}, time.Hour), "relay@contoso.com",
		`{"message":{"subject":"`+strings.Repeat("x", 1000)+`"}}`)
	if code, _ := g.errorCode(t); g.status != 413 || code == "" {
		t.Errorf("configured limit: %d %s", g.status, g.body)
	}
}

func TestMailboxConcurrency(t *testing.T) {
	s := New(t, Config{Latency: 400 * time.Millisecond})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	var wg sync.WaitGroup
	replies := make([]graphReply, 5)
	for i := range 4 {
		wg.Go(func() { replies[i] = sendJSONAsync(s, tok, "relay@contoso.com", simpleMessage) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.MaxInFlight("relay@contoso.com") < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A different mailbox has its own budget, even while relay's is full.
	var otherMailbox graphReply
	wg.Go(func() { otherMailbox = sendJSONAsync(s, tok, "other@contoso.com", simpleMessage) })
	replies[4] = sendJSON(t, s, tok, "relay@contoso.com", simpleMessage)
	wg.Wait()
	if otherMailbox.status != 202 {
		t.Errorf("other mailbox: %d", otherMailbox.status)
	}
	for i := range 4 {
		if replies[i].status != 202 {
			t.Errorf("request %d: %d %s", i, replies[i].status, replies[i].body)
		}
	}
	fifth := replies[4]
	code, msg := fifth.errorCode(t)
	if fifth.status != 429 || code != "ApplicationThrottled" || msg != "Application is over its MailboxConcurrency limit." || fifth.header.Get("Retry-After") == "" {
		t.Errorf("5th: %d %s %q Retry-After %q", fifth.status, code, msg, fifth.header.Get("Retry-After"))
	}
	if n := s.MaxInFlight("relay@contoso.com"); n != 5 {
		t.Errorf("MaxInFlight = %d, want 5", n)
	}
	if n := s.MaxInFlight(derivedGUID("mailbox", "relay@contoso.com")); n != 5 {
		t.Errorf("MaxInFlight by object id = %d, want 5", n)
	}
	if n := len(s.Deliveries()); n != 5 {
		t.Errorf("%d deliveries, want 5 (4 to relay, 1 to other)", n)
	}
	for _, gr := range s.GraphRequests() {
		if gr.End.Sub(gr.Start) < 400*time.Millisecond {
			t.Errorf("request took %v, latency not applied", gr.End.Sub(gr.Start))
		}
	}
}

func TestGraphFaults(t *testing.T) {
	s := New(t, Config{})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)

	s.FailGraph(Fault{Status: 429, RetryAfter: "2.5"})
	s.FailGraph(Fault{Status: 503})
	g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 429 || code != "TooManyRequests" || msg != "Please retry again later." || g.header.Get("Retry-After") != "2.5" {
		t.Errorf("429: %d %s %q %q", g.status, code, msg, g.header.Get("Retry-After"))
	}
	g = sendJSON(t, s, tok, "relay@contoso.com", simpleMessage)
	if code, _ := g.errorCode(t); g.status != 503 || code != "ServiceUnavailable" || g.header.Get("Retry-After") != "" {
		t.Errorf("503: %d %s Retry-After %q", g.status, code, g.header.Get("Retry-After"))
	}
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("after faults: %d", g.status)
	}
	if n := len(s.Deliveries()); n != 1 {
		t.Errorf("%d deliveries after two faults and one success", n)
	}

	// A mailbox-scoped fault waits for its mailbox.
	s.FailGraph(Fault{Mailbox: "Shared@Contoso.com", Status: 500, Code: "ErrorInternalServerError", Message: "boom"})
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("other mailbox consumed the fault: %d", g.status)
	}
	g = sendJSON(t, s, tok, "shared@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 500 || code != "ErrorInternalServerError" || msg != "boom" {
		t.Errorf("scoped fault: %d %s %q", g.status, code, msg)
	}

	// AfterAccept: the mail is delivered, the client sees a 504.
	s.Reset()
	s.FailGraph(Fault{Status: 504, AfterAccept: true})
	g = sendJSON(t, s, tok, "relay@contoso.com", simpleMessage)
	if g.status != 504 || len(s.Deliveries()) != 1 {
		t.Errorf("AfterAccept: %d, %d deliveries", g.status, len(s.Deliveries()))
	}

	// Delay without a status slows the request but lets it through.
	s.FailGraph(Fault{Delay: 200 * time.Millisecond})
	start := time.Now()
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 || time.Since(start) < 200*time.Millisecond {
		t.Errorf("delay: %d after %v", g.status, time.Since(start))
	}

	s.SetGraphOutage(&Fault{Status: 503, RetryAfter: "1"})
	for range 3 {
		if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 503 || g.header.Get("Retry-After") != "1" {
			t.Errorf("outage: %d", g.status)
		}
	}
	s.SetGraphOutage(nil)
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("after outage: %d", g.status)
	}

	// Reset clears queued faults and recordings.
	s.FailGraph(Fault{Status: 500})
	s.Reset()
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("fault survived Reset: %d", g.status)
	}
	if n, m := len(s.Deliveries()), len(s.GraphRequests()); n != 1 || m != 1 {
		t.Errorf("after Reset: %d deliveries, %d requests", n, m)
	}
}

func TestWaitDeliveries(t *testing.T) {
	s := New(t, Config{Latency: 50 * time.Millisecond})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	go func() {
		for range 3 {
			sendJSONAsync(s, tok, "relay@contoso.com", simpleMessage)
		}
	}()
	if got := s.WaitDeliveries(3, 5*time.Second); len(got) != 3 {
		t.Errorf("WaitDeliveries returned %d", len(got))
	}
	start := time.Now()
	if got := s.WaitDeliveries(10, 100*time.Millisecond); len(got) != 3 || time.Since(start) < 100*time.Millisecond {
		t.Errorf("timeout: %d after %v", len(got), time.Since(start))
	}
}
