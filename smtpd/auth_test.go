package smtpd

import (
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
)

// countingUsers counts the password checks (each a bcrypt comparison)
// that reach the user store.
type countingUsers struct {
	*auth.Store
	checks atomic.Int64
}

func (c *countingUsers) Verify(user, password string) bool {
	c.checks.Add(1)
	return c.Store.Verify(user, password)
}

func authServer(t *testing.T, maxFailures int, failureDelay time.Duration) (string, *countingUsers) {
	t.Helper()
	// bcrypt's lowest cost keeps the test quick under -race; what is
	// counted is the number of checks, not their cost.
	hash, err := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.Load([]config.User{{Name: "printer", PasswordHash: string(hash)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	users := &countingUsers{Store: store}
	addr, _ := testServerWith(t, func(c *config.Config) {
		c.SMTP.Listeners[0].Auth = config.AuthRequired
		c.SMTP.Listeners[0].MaxConnectionsPerIP = 50
		c.Auth.MaxFailures = maxFailures
		c.Auth.FailureDelay = config.Duration(failureDelay)
	}, func(o *Options) {
		o.Users = users
		o.Throttle = auth.NewThrottle(o.Auth, nil)
	})
	return addr, users
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// TestConcurrentAuthGuessesBounded: 20 connections from one IP send a
// wrong password at the same moment; at most max_failures passwords are
// checked, the rest are refused with 454 4.7.0 without a check. The
// failure delay is the default second: when failures were counted after
// it, all 20 passwords were checked before the first was counted.
func TestConcurrentAuthGuessesBounded(t *testing.T) {
	addr, users := authServer(t, 5, time.Second)
	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = greeted(t, addr)
		clients[i].ehlo() // loopback: AUTH is offered without TLS
	}
	replies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.write("AUTH PLAIN " + plain("printer", "guess "+string(rune('a'+i))) + "\r\n")
			replies[i] = c.reply()
		}()
	}
	close(start)
	wg.Wait()
	failed, refused := 0, 0
	for _, r := range replies {
		switch {
		case strings.HasPrefix(r, "535 5.7.8"):
			failed++
		case strings.HasPrefix(r, "454 4.7.0"):
			refused++
		default:
			t.Errorf("unexpected reply %q", r)
		}
	}
	t.Logf("%d passwords checked; %d answered 535, %d answered 454", users.checks.Load(), failed, refused)
	if got := users.checks.Load(); got > 5 {
		t.Errorf("%d passwords checked for 20 simultaneous guesses, want at most max_failures (5)", got)
	}
	if failed > 5 || failed+refused != n {
		t.Errorf("%d answered 535 and %d 454, want at most 5 and the rest", failed, refused)
	}
	// The client is locked out: new connections are refused at once.
	expect(t, dial(t, addr).reply(), "421 4.7.0 Too many authentication failures")
}

// TestConcurrentGoodLogins: one device opening many connections with the
// right password is delayed by the reservation, never refused.
func TestConcurrentGoodLogins(t *testing.T) {
	addr, _ := authServer(t, 3, 0)
	const n = 12
	var wg sync.WaitGroup
	replies := make([]string, n)
	for i := range n {
		c := greeted(t, addr)
		c.ehlo()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.write("AUTH PLAIN " + plain("PRINTER", "right password") + "\r\n")
			replies[i] = c.reply()
		}()
	}
	wg.Wait()
	for _, r := range replies {
		expect(t, r, "235 2.0.0")
	}
}

// TestMalformedAuth: a response that is not valid SASL is a client bug,
// answered 501 5.5.2 and not counted as a guess.
func TestMalformedAuth(t *testing.T) {
	addr, users := authServer(t, 1, 0)
	for _, tc := range []struct{ name, cmd string }{
		{"PLAIN without NULs", "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("printer right password"))},
		{"PLAIN with one NUL", "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("printer\x00right password"))},
		{"PLAIN with four fields", "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00printer\x00right\x00password"))},
		{"PLAIN with an empty user", "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00\x00right password"))},
		{"PLAIN with an empty password", "AUTH PLAIN " + plain("printer", "")},
		{"LOGIN with a PLAIN response", "AUTH LOGIN " + plain("printer", "right password")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := greeted(t, addr)
			c.ehlo()
			expect(t, c.cmd("%s", tc.cmd), "501 5.5.2")
		})
	}
	// Data that is not base64 never reaches graphrelay: go-smtp v0.25.1
	// answers it itself with a temporary 454 (conn.go, handleAuth). This
	// pins that known gap; when go-smtp changes it, this fails and the
	// README's AUTH paragraph needs updating.
	c := greeted(t, addr)
	c.ehlo()
	expect(t, c.cmd("AUTH PLAIN !!not-base64!!"), "454 4.7.0 Invalid base64 data")
	if n := users.checks.Load(); n != 0 {
		t.Errorf("%d passwords checked for malformed responses", n)
	}
	// max_failures is 1: had any of them counted, this would be locked out.
	c = greeted(t, addr)
	c.ehlo()
	expect(t, c.cmd("AUTH PLAIN %s", plain("printer", "right password")), "235 2.0.0")
}

// TestTooManyRecipientsAtData: a limit found only at the end of DATA (the
// deciding rule allows fewer recipients than RCPT did) is permanent.
func TestTooManyRecipientsAtData(t *testing.T) {
	addr, rec := testServer(t, func(c *config.Config) {
		c.Mailboxes = []config.Mailbox{{Address: "alerts@example.com"}, {Address: "relay@example.com"}}
		c.Rules = []config.Rule{
			{Name: "alerts", HeaderFrom: "alerts@example.com", Mailbox: "alerts@example.com", From: "keep", MaxRecipients: 1, Recipients: []string{"*"}},
			{Name: "all", Mailbox: "relay@example.com", From: "rewrite", MaxRecipients: 5, Recipients: []string{"*"}},
		}
	})
	c := greeted(t, addr)
	c.ehlo()
	expect(t, c.cmd("MAIL FROM:<dev@lan.test>"), "250")
	expect(t, c.cmd("RCPT TO:<a@x.test>"), "250")
	expect(t, c.cmd("RCPT TO:<b@x.test>"), "250")
	expect(t, c.cmd("DATA"), "354")
	expect(t, c.cmd("From: alerts@example.com\r\nSubject: t\r\n\r\nbody\r\n."), "550 5.5.3")
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}
