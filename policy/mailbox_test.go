package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

// contosoConfig is the setup from issue #11: bob may send only as himself,
// yet writes another allowed mailbox into the header From.
func contosoConfig() *config.Config {
	cfg := config.Default()
	cfg.SMTP.Listeners = []config.Listener{{Name: "keep", Address: "0.0.0.0:587", Networks: []string{"0.0.0.0/0"}},
		{Name: "rewrite", Address: "0.0.0.0:25", Networks: []string{"10.0.0.0/8", "192.0.2.0/24"}},
		{Name: "local", Address: "127.0.0.1:25"}, {Name: "local6", Address: "[::1]:25", Networks: []string{"::1", "127.0.0.0/8"}}}
	cfg.Mailboxes = []config.Mailbox{{Address: "bob@contoso.com"}, {Address: "payroll@contoso.com"}, {Address: "alerts@contoso.com"}, {Address: "carol@contoso.com"}}
	cfg.DefaultMailbox = ""
	cfg.Rules = []config.Rule{
		{Name: "bob keep", Listener: "keep", AuthUser: "bob", Sender: "bob@contoso.com", Mailbox: "sender", From: "keep"},
		{Name: "bob rewrite", Listener: "rewrite", AuthUser: "bob", Sender: "bob@contoso.com", Mailbox: "sender", From: "rewrite"},
		{Name: "users", Listener: "keep", AuthUser: "*", Mailbox: "sender", From: "keep"},
		{Name: "lan", Listener: "rewrite", Networks: []string{"10.0.0.0/8"}, Sender: "*@contoso.com", Mailbox: "sender", From: "rewrite"},
		{Name: "open", Listener: "rewrite", Networks: []string{"10.99.0.0/16"}, Mailbox: "alerts@contoso.com", From: "rewrite", Recipients: []string{"*"}},
	}
	return cfg
}

// TestMailboxSenderIsWhatTheRuleVerified: "mailbox: sender" is the
// authenticated user's own address or the envelope sender the rule
// matched, never the header From. A different header From is handled by
// the rule's From setting: keep refuses, rewrite rewrites.
func TestMailboxSenderIsWhatTheRuleVerified(t *testing.T) {
	p, _, err := New(contosoConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	from := func(addrs ...string) []Address {
		var out []Address
		for _, a := range addrs {
			out = append(out, Address{Address: a})
		}
		return out
	}
	rcpt := []string{"staff@contoso.com"}
	cases := []tcase{
		// The escape: bob, MAIL FROM his own address, From payroll@.
		{name: "escape, keep: header From another allowed mailbox is refused", listener: "keep", ip: "192.0.2.1", user: "bob",
			sender: "bob@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "data", kind: FromDenied},
		{name: "escape, rewrite: sent as bob with the From rewritten", listener: "rewrite", ip: "192.0.2.1", user: "bob",
			sender: "bob@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"),
			mailbox: "bob@contoso.com", handling: FromRewrite, fromName: "payroll at contoso.com", replyTo: "payroll@contoso.com", format: "json"},
		{name: "escape, keep: his own From plus another is refused", listener: "keep", ip: "192.0.2.1", user: "bob",
			sender: "bob@contoso.com", rcpts: rcpt, from: from("bob@contoso.com", "payroll@contoso.com"), stage: "data", kind: FromDenied},
		{name: "escape, rewrite: his own From plus another is rewritten", listener: "rewrite", ip: "192.0.2.1", user: "bob",
			sender: "bob@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com", "bob@contoso.com"),
			mailbox: "bob@contoso.com", handling: FromRewrite, fromName: "payroll at contoso.com", replyTo: "payroll@contoso.com", format: "json"},
		{name: "bob as himself keeps his From", listener: "keep", ip: "192.0.2.1", user: "bob",
			sender: "BOB@contoso.com", rcpts: rcpt, from: []Address{{Name: "Bob", Address: "bob@CONTOSO.com"}},
			mailbox: "bob@contoso.com", handling: FromKeep, fromName: "Bob", format: "json"},
		{name: "bob, keep, no header From is refused", listener: "keep", ip: "192.0.2.1", user: "bob",
			sender: "bob@contoso.com", rcpts: rcpt, stage: "data", kind: FromDenied},
		// The user name is itself an allowed mailbox: that address is the
		// verified identity, whatever MAIL FROM claims.
		{name: "user carol@ claims payroll@ at MAIL and in From: sent as carol, so keep refuses", listener: "keep", ip: "192.0.2.2", user: "carol@contoso.com",
			sender: "payroll@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "data", kind: FromDenied},
		{name: "user carol@ as herself", listener: "keep", ip: "192.0.2.2", user: "carol@contoso.com",
			sender: "carol@contoso.com", rcpts: rcpt, from: from("carol@contoso.com"),
			mailbox: "carol@contoso.com", handling: FromKeep, format: "json"},
		{name: "user carol@ with the null sender", listener: "keep", ip: "192.0.2.2", user: "carol@contoso.com",
			sender: "", rcpts: rcpt, from: from("carol@contoso.com"),
			mailbox: "carol@contoso.com", handling: FromKeep, format: "json"},
		// A user name that is no address: the envelope sender the rule's
		// pattern ("*" here) matched.
		{name: "user dave sends as the envelope sender mailbox", listener: "keep", ip: "192.0.2.3", user: "dave",
			sender: "alerts@contoso.com", rcpts: rcpt, from: from("alerts@contoso.com"),
			mailbox: "alerts@contoso.com", handling: FromKeep, format: "json"},
		{name: "user dave, envelope alerts@, From payroll@: keep refuses", listener: "keep", ip: "192.0.2.3", user: "dave",
			sender: "alerts@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "data", kind: FromDenied},
		{name: "user dave, envelope sender no mailbox, From payroll@: refused at MAIL", listener: "keep", ip: "192.0.2.3", user: "dave",
			sender: "dave@home.example", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "mail", kind: SenderDenied},
		// Network rule matching the envelope sender pattern.
		{name: "lan: envelope alerts@, From payroll@: sent as alerts, rewritten", listener: "rewrite", ip: "10.1.1.1",
			sender: "alerts@contoso.com", rcpts: rcpt, from: []Address{{Name: "Payroll", Address: "payroll@contoso.com"}},
			mailbox: "alerts@contoso.com", handling: FromRewrite, fromName: "Payroll (payroll at contoso.com)", replyTo: "payroll@contoso.com", format: "json"},
		{name: "lan: envelope and From the same mailbox", listener: "rewrite", ip: "10.1.1.1",
			sender: "payroll@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"),
			mailbox: "payroll@contoso.com", handling: FromKeep, format: "json"},
		{name: "lan: envelope sender in the domain but no mailbox: refused at MAIL", listener: "rewrite", ip: "10.1.1.1",
			sender: "nobody@contoso.com", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "mail", kind: SenderDenied},
		{name: "lan: envelope sender outside the pattern, From a mailbox: refused at MAIL", listener: "rewrite", ip: "10.1.1.1",
			sender: "scanner@printer.local", rcpts: rcpt, from: from("payroll@contoso.com"), stage: "mail", kind: SenderDenied},
		// Recipients: written rules without recipients get the mailboxes'
		// domains; only an explicit "*" relays.
		{name: "rule without recipients refuses another domain", listener: "rewrite", ip: "10.1.1.1",
			sender: "alerts@contoso.com", rcpts: []string{"relay@nmap.scanme.org"}, stage: "rcpt", kind: RelayDenied},
		{name: "rule with \"*\" relays to another domain", listener: "rewrite", ip: "10.99.1.1",
			sender: "printer@lan", rcpts: []string{"relay@nmap.scanme.org"}, from: from("printer@lan"),
			mailbox: "alerts@contoso.com", handling: FromRewrite, fromName: "printer at lan", replyTo: "printer@lan", format: "json"},
		{name: "rule with \"*\" still refuses percent hacks", listener: "rewrite", ip: "10.99.1.1",
			sender: "printer@lan", rcpts: []string{"relay%nmap.scanme.org@contoso.com"}, stage: "rcpt", kind: RelayDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, p, tc) })
	}
}

// TestDataRechecksRecipients: at RCPT a recipient passes when any candidate
// rule allows it; the rule that finally decides must allow every one.
func TestDataRechecksRecipients(t *testing.T) {
	cfg := contosoConfig()
	cfg.Rules = []config.Rule{
		{Name: "narrow", Networks: []string{"10.0.0.0/8"}, Sender: "*@contoso.com", HeaderFrom: "alerts@contoso.com", Mailbox: "alerts@contoso.com", From: "keep"},
		{Name: "wide", Networks: []string{"10.0.0.0/8"}, Sender: "*@contoso.com", Mailbox: "payroll@contoso.com", From: "rewrite", Recipients: []string{"*"}},
	}
	p, _, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCase(t, p, tcase{name: "narrow rule decides, external recipient", ip: "10.0.0.1", sender: "x@contoso.com",
		rcpts: []string{"a@outside.example"}, from: []Address{{Address: "alerts@contoso.com"}}, stage: "data", kind: RelayDenied})
	runCase(t, p, tcase{name: "wide rule decides", ip: "10.0.0.1", sender: "x@contoso.com",
		rcpts: []string{"a@outside.example"}, from: []Address{{Address: "y@contoso.com"}},
		mailbox: "payroll@contoso.com", handling: FromRewrite, fromName: "y at contoso.com", replyTo: "y@contoso.com", format: "json"})
}

// TestTooManyRecipientsAtData: RCPT accepts up to the largest limit of
// the candidate rules; the deciding rule's lower limit refuses at the end
// of DATA, marked AtData so the reply is permanent.
func TestTooManyRecipientsAtData(t *testing.T) {
	cfg := contosoConfig()
	cfg.Rules = []config.Rule{
		{Name: "one", Networks: []string{"10.0.0.0/8"}, HeaderFrom: "alerts@contoso.com", Mailbox: "alerts@contoso.com", From: "keep", MaxRecipients: 1},
		{Name: "five", Networks: []string{"10.0.0.0/8"}, Mailbox: "payroll@contoso.com", From: "rewrite", MaxRecipients: 5},
	}
	p, _, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Listener: "rewrite", ClientIP: netip.MustParseAddr("10.0.0.1"), Sender: "dev@lan"}
	pd, err := p.Mail(in)
	if err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"a@contoso.com", "b@contoso.com"}
	for i, r := range rcpts {
		if err := p.Rcpt(pd, r, i+1); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	if err := p.Rcpt(pd, "f@contoso.com", 6); err == nil {
		t.Error("a sixth RCPT was accepted")
	} else if pe, _ := As(err); pe.Kind != TooManyRecipients || pe.AtData {
		t.Errorf("sixth RCPT: %+v, want TooManyRecipients not at DATA", pe)
	}
	_, err = p.Data(pd, []Address{{Address: "alerts@contoso.com"}}, rcpts)
	if pe, ok := As(err); !ok || pe.Kind != TooManyRecipients || !pe.AtData {
		t.Fatalf("Data = %v, want TooManyRecipients at DATA", err)
	}
	if _, err := p.Data(pd, []Address{{Address: "x@lan"}}, rcpts); err != nil {
		t.Errorf("the five-recipient rule refused: %v", err)
	}
}

func TestTrustWarnings(t *testing.T) {
	cfg := contosoConfig()
	cfg.Rules = []config.Rule{
		{Name: "open", Networks: []string{"10.0.0.0/8"}, Mailbox: "alerts@contoso.com", From: "rewrite", Recipients: []string{"contoso.com", "*"}},
		{Name: "claimed sender", Sender: "ceo@contoso.com", Mailbox: "sender", From: "keep"},
		{Name: "claimed from", Listener: "keep", HeaderFrom: "*@contoso.com", Mailbox: "payroll@contoso.com", From: "keep"},
		{Name: "anyone", Listener: "rewrite", Mailbox: "bob@contoso.com", From: "rewrite"},
		{Name: "fine", Networks: []string{"192.0.2.0/24"}, Sender: "*@contoso.com", Mailbox: "sender"},
		{Name: "fine too", AuthUser: "*", Mailbox: "sender"},
		{Name: "reject", Sender: "spam@contoso.com", From: "reject"},
		{Name: "loopback only", Listener: "local", Sender: "cron@contoso.com", Mailbox: "alerts@contoso.com"},
		{Name: "loopback v6", Listener: "local6", Mailbox: "alerts@contoso.com"},
	}
	_, warns, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, want := range []string{
		`rules[0] (open): recipients "*" relays to any domain: every client the rule matches can send to the whole internet as alerts@contoso.com`,
		"rules[1] (claimed sender) matches on the claimed envelope sender ceo@contoso.com, which any client can claim",
		"rules[2] (claimed from) matches on the claimed header From *@contoso.com, which any client can claim",
		"rules[3] (anyone) matches on nothing: it matches every client that reaches the listener",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, quiet := range []string{"(fine)", "(fine too)", "(reject)", "(loopback only)", "(loopback v6)"} {
		if strings.Contains(all, quiet) {
			t.Errorf("warning about %s:\n%s", quiet, all)
		}
	}
	cfg.Rules = nil
	if _, warns, _ := New(cfg, nil); len(warns) != 0 {
		t.Errorf("implicit rules warned: %v", warns)
	}
}
