package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// nmapRelayProbes returns the 16 MAIL FROM / RCPT TO pairs of nmap's
// smtp-open-relay script (smtp-open-relay.nse, in its order) for the
// script's default domain and names, srvname being the first word after
// the code in the server's greeting, as the script reads it.
func nmapRelayProbes(srvname, ip string) [][2]string {
	const domain, from, to = "nmap.scanme.org", "antispam", "relaytest"
	fromIP := fmt.Sprintf("%s@[%s]", from, ip)
	return [][2]string{
		{"", to + "@" + domain},
		{from + "@" + domain, to + "@" + domain},
		{from + "@" + srvname, to + "@" + domain},
		{fromIP, to + "@" + domain},
		{fromIP, fmt.Sprintf("%s%%%s@[%s]", to, domain, ip)},
		{fromIP, fmt.Sprintf("%s%%%s@%s", to, domain, srvname)},
		{fromIP, fmt.Sprintf("%q", to+"@"+domain)},
		{fromIP, fmt.Sprintf("%q", to+"%"+domain)},
		{fromIP, fmt.Sprintf("%s@%s@[%s]", to, domain, ip)},
		{fromIP, fmt.Sprintf("%q@[%s]", to+"@"+domain, ip)},
		{fromIP, fmt.Sprintf("%s@%s@%s", to, domain, srvname)},
		{fromIP, fmt.Sprintf("@[%s]:%s@%s", ip, to, domain)},
		{fromIP, fmt.Sprintf("@%s:%s@%s", srvname, to, domain)},
		{fromIP, fmt.Sprintf("%s!%s", domain, to)},
		{fromIP, fmt.Sprintf("%s!%s@[%s]", domain, to, ip)},
		{fromIP, fmt.Sprintf("%s!%s@%s", domain, to, srvname)},
	}
}

// runRelayProbes plays the probes on one connection with RSET between
// them, as the script does, and returns the pairs whose RCPT got a 2xx.
// srvname is the relay's smtp.hostname, which its greeting starts with.
func runRelayProbes(t *testing.T, addr, srvname string) []string {
	t.Helper()
	c := dialSMTP(t, addr)
	defer c.close()
	c.cmd(t, "EHLO nmap.scanme.org")
	var open []string
	for _, p := range nmapRelayProbes(srvname, "127.0.0.1") {
		c.cmd(t, "RSET")
		if got := c.cmd(t, "MAIL FROM:<"+p[0]+">"); !strings.HasPrefix(got, "250") {
			continue
		}
		if got := c.cmd(t, "RCPT TO:<"+p[1]+">"); strings.HasPrefix(got, "2") {
			open = append(open, fmt.Sprintf("MAIL FROM:<%s> -> RCPT TO:<%s>", p[0], p[1]))
		}
	}
	c.cmd(t, "QUIT")
	return open
}

// TestOpenRelayRecipientsDefault plays nmap's smtp-open-relay probes
// against two rules an admin might write for the same network: one that
// leaves out recipients, and one that writes recipients ["*"]. Only the
// explicit "*" relays, and then only to the plain address (percent
// hacks, bang paths, quoted and double-@ forms stay refused); a message
// sent through each confirms what reaches the fake Graph.
func TestOpenRelayRecipientsDefault(t *testing.T) {
	t.Parallel()
	wantStar := []string{
		"MAIL FROM:<> -> RCPT TO:<relaytest@nmap.scanme.org>",
		"MAIL FROM:<antispam@nmap.scanme.org> -> RCPT TO:<relaytest@nmap.scanme.org>",
		"MAIL FROM:<antispam@relay.test> -> RCPT TO:<relaytest@nmap.scanme.org>",
		"MAIL FROM:<antispam@[127.0.0.1]> -> RCPT TO:<relaytest@nmap.scanme.org>",
		// go-smtp drops a source route as RFC 5321 section 4.1.1.3 asks,
		// so these name the same mailbox as the plain form.
		"MAIL FROM:<antispam@[127.0.0.1]> -> RCPT TO:<@[127.0.0.1]:relaytest@nmap.scanme.org>",
		"MAIL FROM:<antispam@[127.0.0.1]> -> RCPT TO:<@relay.test:relaytest@nmap.scanme.org>",
	}
	for _, tc := range []struct {
		name       string
		recipients []string
		open       []string
	}{
		{"rule without recipients", nil, nil},
		{"rule with recipients *", []string{"*"}, wantStar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, fake := certRelay(t, func(c *config.Config) {
				c.SMTP.Hostname = "relay.test"
				c.SMTP.Listeners[0].Networks = []string{"127.0.0.0/8"}
				c.DefaultMailbox = ""
				c.Rules = []config.Rule{{Name: "scanners", Networks: []string{"127.0.0.1/32"}, Mailbox: "alerts@company.com",
					From: config.FromRewrite, Recipients: tc.recipients}}
			})
			open := runRelayProbes(t, r.addr, "relay.test")
			if strings.Join(open, "\n") != strings.Join(tc.open, "\n") {
				t.Errorf("open combinations:\n  %s\nwant:\n  %s", strings.Join(open, "\n  "), strings.Join(tc.open, "\n  "))
			}
			if warned := strings.Contains(r.logs.String(), `relays to any domain`); warned != (tc.recipients != nil) {
				t.Errorf("startup warning about \"*\" logged: %v", warned)
			}
			rep := sendNetSMTP(t, r.addr, "scanner@printer.lan", []string{"relaytest@nmap.scanme.org"}, crlf("Subject: relay\n\nx\n"))
			ds := fake.Deliveries()
			if tc.open == nil {
				if rep.code != 550 || !strings.HasPrefix(rep.msg, "5.7.1") || len(ds) != 0 {
					t.Errorf("external recipient: %d %s, %d deliveries; want 550 5.7.1 and none", rep.code, rep.msg, len(ds))
				}
				if rep := sendNetSMTP(t, r.addr, "scanner@printer.lan", []string{"ops@company.com"}, crlf("Subject: inside\n\nx\n")); rep.code != 250 {
					t.Errorf("the mailboxes' own domain refused: %d %s", rep.code, rep.msg)
				}
				return
			}
			if rep.code != 250 || len(ds) != 1 || len(ds[0].Message.Bcc)+len(ds[0].Message.To) != 1 {
				t.Fatalf("\"*\" did not relay: %d %s, deliveries %+v", rep.code, rep.msg, ds)
			}
		})
	}
}

// TestMailboxEscapeEndToEnd is issue #11's escape with real listeners and
// AUTH: bob may send only as bob@company.com (mailbox: sender, sender
// bob@company.com), and writes another allowed mailbox in From. Under
// from: keep the message is refused; under from: rewrite it leaves as bob
// with the From rewritten. It never leaves as the other mailbox.
func TestMailboxEscapeEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from     string
		wantCode int
	}{
		{config.FromKeep, 550},
		{config.FromRewrite, 250},
	} {
		t.Run(tc.from, func(t *testing.T) {
			r, fake := policyRelay(t, func(c *config.Config) {
				c.Mailboxes = append(c.Mailboxes, config.Mailbox{Address: "bob@company.com"}, config.Mailbox{Address: "payroll@company.com"})
				c.Users = append(c.Users, config.User{Name: "bob", PasswordHash: c.Users[0].PasswordHash})
				c.Rules = append([]config.Rule{{Name: "bob", AuthUser: "bob", Sender: "bob@company.com", Mailbox: config.MailboxSender, From: tc.from}}, c.Rules...)
			})
			c := dialSMTP(t, "127.0.0.1:"+port(t, r, "submission"))
			c.cmd(t, "EHLO bob.lan")
			c.startTLS(t)
			c.cmd(t, "EHLO bob.lan")
			if got := c.cmd(t, "AUTH PLAIN "+plainAuth("bob", nasPassword)); !strings.HasPrefix(got, "235") {
				t.Fatalf("AUTH: %s", got)
			}
			for _, line := range []string{"MAIL FROM:<bob@company.com>", "RCPT TO:<staff@company.com>", "DATA"} {
				if got := c.cmd(t, line); got[0] != '2' && got[0] != '3' {
					t.Fatalf("%s: %s", line, got)
				}
			}
			got := c.cmd(t, crlf("From: Payroll <payroll@company.com>\nTo: staff@company.com\nSubject: salary change\n\nPlease update your bank details.\n."))
			if !strings.HasPrefix(got, fmt.Sprint(tc.wantCode)) {
				t.Fatalf("end of DATA: %s, want %d", got, tc.wantCode)
			}
			if tc.wantCode != 250 {
				if !strings.HasPrefix(got, "550 5.7.1") {
					t.Errorf("refusal %q, want 550 5.7.1", got)
				}
				if ds := fake.Deliveries(); len(ds) != 0 {
					t.Fatalf("refused message delivered: %+v", ds)
				}
				return
			}
			ds := fake.WaitDeliveries(1, 10*time.Second)
			if len(ds) != 1 {
				t.Fatalf("%d deliveries", len(ds))
			}
			m := ds[0]
			if m.Mailbox != "bob@company.com" || m.Message.From == nil || m.Message.From.Address != "bob@company.com" {
				t.Errorf("sent as mailbox %q with From %+v, want bob@company.com", m.Mailbox, m.Message.From)
			}
			if len(m.Message.ReplyTo) != 1 || m.Message.ReplyTo[0].Address != "payroll@company.com" {
				t.Errorf("Reply-To %+v, want the original payroll@company.com", m.Message.ReplyTo)
			}
		})
	}
}
