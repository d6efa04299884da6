package policy

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzMatcher drives the policy with arbitrary senders, From headers and
// recipients. Beyond not panicking, it checks the invariants that keep the
// relay closed: whatever is accepted leaves as a configured mailbox, with a
// display name free of '@', and only to recipients the deciding rule
// allows.
func FuzzMatcher(f *testing.F) {
	f.Add("scanner@printer.local", "MFP scanner@printer.local", "scanner@printer.local", "alice@company.com", "10.1.2.3", "")
	f.Add("", "", "", "ops@company.com", "127.0.0.1", "nas")
	f.Add("payroll@BÜCHER.example", "Payroll", "payroll@bücher.example", "relay%x@company.com", "192.168.1.30", "scanner")
	f.Add("a@b", "\x00", "@@", "<@a:b@c>", "::1", "*")
	p, _, err := New(testConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, m := range testConfig().Mailboxes {
		allowed[m.Address] = true
	}
	f.Fuzz(func(t *testing.T, sender, fromName, fromAddr, rcpt, ip, user string) {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			addr = netip.MustParseAddr("127.0.0.1")
		}
		for _, listener := range []string{"lan", "submission"} {
			pd, err := p.Mail(Input{Listener: listener, ClientIP: addr, AuthUser: user, Sender: sender})
			if err != nil {
				continue
			}
			if p.Rcpt(pd, rcpt, 1) != nil {
				continue
			}
			d, err := p.Data(pd, []Address{{Name: fromName, Address: fromAddr}}, []string{rcpt})
			if err != nil {
				continue
			}
			if !allowed[d.Mailbox.Address] {
				t.Fatalf("accepted as %q, which is not a configured mailbox", d.Mailbox.Address)
			}
			if strings.Contains(d.FromName, "@") {
				t.Fatalf("display name %q contains @", d.FromName)
			}
			if relayHack(rcpt) {
				t.Fatalf("relay-hack recipient %q accepted", rcpt)
			}
			var rule *rule
			for i := range p.rules {
				if p.rules[i].label == d.Rule {
					rule = &p.rules[i]
				}
			}
			if rule == nil || !rule.recipients.allows(rcpt) {
				t.Fatalf("recipient %q accepted although %s does not allow it", rcpt, d.Rule)
			}
		}
	})
}
