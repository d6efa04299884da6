package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.SMTP.Listeners = []config.Listener{{Name: "lan", Address: "0.0.0.0:25"}, {Name: "submission", Address: "0.0.0.0:587"}}
	cfg.Mailboxes = []config.Mailbox{
		{Address: "alerts@company.com"},
		{Address: "Scans@Company.com", ID: "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"},
		{Address: "hr@bücher.example"},
	}
	cfg.DefaultMailbox = ""
	cfg.Rules = []config.Rule{
		{Name: "blocked device", Networks: []string{"10.9.9.9"}, From: "reject"},
		{Name: "scanners", Listener: "lan", Networks: []string{"10.1.0.0/16"}, Mailbox: "scans@company.com", From: "rewrite",
			Recipients: []string{"company.com", "partner@other.example"}, MaxRecipients: 3},
		{Name: "nas", AuthUser: "nas", Sender: "*@company.com", Mailbox: "alerts@company.com", From: "keep", Format: "mime"},
		{Name: "authenticated", AuthUser: "*", Mailbox: "sender", From: "keep"},
		{Name: "idn", Listener: "lan", Networks: []string{"192.168.1.0/24"}, Sender: "*@xn--bcher-kva.example", Mailbox: "hr@xn--bcher-kva.example", From: "rewrite"},
	}
	return cfg
}

type tcase struct {
	name     string
	listener string
	ip       string
	user     string
	sender   string
	rcpts    []string
	from     []Address
	// want
	stage    string // "mail", "rcpt" or "data" where a refusal happens; "" = accepted
	kind     Kind
	mailbox  string
	handling string
	fromName string
	replyTo  string
	format   string
}

func TestDecisionMatrix(t *testing.T) {
	p, warns, err := New(testConfig(), func(u string) bool { return u == "nas" || u == "scanner" })
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Fatalf("unexpected warnings: %v", warns)
	}
	scanner := func(name string) []Address { return []Address{{Name: name, Address: "scanner@printer.local"}} }
	cases := []tcase{
		{name: "scanner, From rewritten, display name with @", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"alice@company.com"}, from: scanner("MFP 2nd floor scanner@printer.local"),
			mailbox: "Scans@Company.com", handling: FromRewrite, fromName: "MFP 2nd floor scanner at printer.local (scanner at printer.local)", replyTo: "scanner@printer.local", format: "json"},
		{name: "scanner, plain display name", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"ALICE@COMPANY.COM"}, from: scanner("MFP 2nd floor"),
			mailbox: "Scans@Company.com", handling: FromRewrite, fromName: "MFP 2nd floor (scanner at printer.local)", replyTo: "scanner@printer.local", format: "json"},
		{name: "scanner, display name equals address", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"alice@company.com"}, from: scanner("scanner@printer.local"),
			mailbox: "Scans@Company.com", handling: FromRewrite, fromName: "scanner at printer.local", replyTo: "scanner@printer.local", format: "json"},
		{name: "scanner with null sender and no From", listener: "lan", ip: "10.1.2.3", sender: "",
			rcpts: []string{"alice@company.com"}, from: nil,
			mailbox: "Scans@Company.com", handling: FromRewrite, fromName: "", replyTo: "", format: "json"},
		{name: "scanner sending as its mailbox keeps From", listener: "lan", ip: "10.1.2.3", sender: "scans@company.com",
			rcpts: []string{"alice@company.com"}, from: []Address{{Name: "Scans", Address: "SCANS@company.com"}},
			mailbox: "Scans@Company.com", handling: FromKeep, fromName: "Scans", format: "json"},
		{name: "scanner relaying outside allowed domains", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"mallory@evil.example"}, stage: "rcpt", kind: RelayDenied},
		{name: "scanner to an allowed external address", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"Partner@Other.Example"}, from: scanner("MFP"), mailbox: "Scans@Company.com", handling: FromRewrite,
			fromName: "MFP (scanner at printer.local)", replyTo: "scanner@printer.local", format: "json"},
		{name: "scanner over its recipient limit", listener: "lan", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"a@company.com", "b@company.com", "c@company.com", "d@company.com"}, stage: "rcpt", kind: TooManyRecipients},
		{name: "scanner network on the wrong listener", listener: "submission", ip: "10.1.2.3", sender: "scanner@printer.local",
			rcpts: []string{"alice@company.com"}, stage: "mail", kind: AuthRequired},
		{name: "unknown network, no auth: rules for users exist", listener: "lan", ip: "192.168.7.7", sender: "x@home.example",
			stage: "mail", kind: AuthRequired},
		{name: "blocked device refused at MAIL", listener: "lan", ip: "10.9.9.9", user: "nas", sender: "nas@company.com",
			stage: "mail", kind: SenderDenied},
		{name: "nas keeps its From", listener: "submission", ip: "192.168.1.20", user: "nas", sender: "alerts@company.com",
			rcpts: []string{"ops@company.com"}, from: []Address{{Name: "NAS", Address: "Alerts@Company.com"}},
			mailbox: "alerts@company.com", handling: FromKeep, fromName: "NAS", format: "mime"},
		{name: "nas with a foreign From is refused (keep)", listener: "submission", ip: "192.168.1.20", user: "nas", sender: "alerts@company.com",
			rcpts: []string{"ops@company.com"}, from: []Address{{Address: "ceo@company.com"}}, stage: "data", kind: FromDenied},
		{name: "nas with two From addresses is refused (keep)", listener: "submission", ip: "192.168.1.20", user: "nas", sender: "alerts@company.com",
			rcpts: []string{"ops@company.com"}, from: []Address{{Address: "alerts@company.com"}, {Address: "ceo@company.com"}}, stage: "data", kind: FromDenied},
		{name: "nas sender outside its pattern falls to 'authenticated', sender not a mailbox", listener: "submission", ip: "192.168.1.20", user: "nas",
			sender: "nas@nas.lan", rcpts: []string{"ops@company.com"}, from: []Address{{Address: "nas@nas.lan"}}, stage: "mail", kind: SenderDenied},
		{name: "authenticated user sends as the envelope sender mailbox", listener: "submission", ip: "192.168.1.21", user: "scanner",
			sender: "alerts@company.com", rcpts: []string{"ops@company.com"}, from: []Address{{Name: "Alerts", Address: "alerts@company.com"}},
			mailbox: "alerts@company.com", handling: FromKeep, fromName: "Alerts", format: "json"},
		{name: "authenticated user, header From a mailbox but the envelope sender not: refused at MAIL", listener: "submission", ip: "192.168.1.21", user: "scanner",
			sender: "bounce@x.example", rcpts: []string{"ops@company.com"}, from: []Address{{Name: "Alerts", Address: "alerts@company.com"}},
			stage: "mail", kind: SenderDenied},
		{name: "authenticated user, sender not a mailbox", listener: "submission", ip: "192.168.1.21", user: "scanner",
			sender: "me@x.example", rcpts: []string{"ops@company.com"}, from: []Address{{Address: "me@x.example"}}, stage: "mail", kind: SenderDenied},
		{name: "rule without recipients: mailboxes' domains only", listener: "submission", ip: "192.168.1.20", user: "nas", sender: "alerts@company.com",
			rcpts: []string{"someone@gmail.example"}, stage: "rcpt", kind: RelayDenied},
		{name: "rule without recipients: another mailbox domain is fine", listener: "submission", ip: "192.168.1.20", user: "nas", sender: "alerts@company.com",
			rcpts: []string{"staff@xn--bcher-kva.example"}, from: []Address{{Address: "alerts@company.com"}},
			mailbox: "alerts@company.com", handling: FromKeep, format: "mime"},
		{name: "IDN sender and mailbox, unicode and punycode forms", listener: "lan", ip: "192.168.1.30", user: "scanner", sender: "payroll@BÜCHER.example",
			rcpts: []string{"staff@company.com"}, from: []Address{{Name: "Payroll", Address: "payroll@bücher.example"}},
			mailbox: "hr@bücher.example", handling: FromRewrite, fromName: "Payroll (payroll at bücher.example)", replyTo: "payroll@bücher.example", format: "json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, p, tc) })
	}
}

func runCase(t *testing.T, p *Policy, tc tcase) {
	t.Helper()
	in := Input{Listener: tc.listener, ClientIP: netip.MustParseAddr(tc.ip), AuthUser: tc.user, Sender: tc.sender}
	pd, err := p.Mail(in)
	if stop(t, tc, "mail", err) {
		return
	}
	for i, r := range tc.rcpts {
		if err := p.Rcpt(pd, r, i+1); err != nil {
			stop(t, tc, "rcpt", err)
			return
		}
	}
	if tc.stage == "rcpt" {
		t.Fatalf("all recipients accepted, want %v at RCPT", tc.kind)
	}
	d, err := p.Data(pd, tc.from, tc.rcpts)
	if stop(t, tc, "data", err) {
		return
	}
	if tc.stage != "" {
		t.Fatalf("accepted as %s, want refusal at %s", d.Mailbox.Address, tc.stage)
	}
	if d.Mailbox.Address != tc.mailbox || d.From != tc.handling || d.FromName != tc.fromName || d.ReplyTo != tc.replyTo || d.Format != tc.format {
		t.Errorf("decision = mailbox %q from %s name %q replyTo %q format %s (%s)\nwant      mailbox %q from %s name %q replyTo %q format %s",
			d.Mailbox.Address, d.From, d.FromName, d.ReplyTo, d.Format, d.Rule, tc.mailbox, tc.handling, tc.fromName, tc.replyTo, tc.format)
	}
	if strings.Contains(d.FromName, "@") {
		t.Errorf("display name %q contains @", d.FromName)
	}
}

// stop checks err against the case at stage and reports whether the
// transaction ended there.
func stop(t *testing.T, tc tcase, stage string, err error) bool {
	t.Helper()
	if err == nil {
		if tc.stage == stage {
			t.Fatalf("accepted at %s, want %v", stage, tc.kind)
		}
		return false
	}
	pe, ok := As(err)
	if !ok {
		t.Fatalf("%s: error %v is not a policy error", stage, err)
	}
	if tc.stage != stage || pe.Kind != tc.kind {
		t.Fatalf("refused at %s with kind %d (%v), want stage %q kind %d", stage, pe.Kind, err, tc.stage, tc.kind)
	}
	return true
}

func TestImplicitRules(t *testing.T) {
	cfg := config.Default()
	cfg.Mailboxes = []config.Mailbox{{Address: "alerts@company.com"}, {Address: "scans@company.com"}}
	cfg.DefaultMailbox = "alerts@company.com"
	p, _, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []tcase{
		{name: "header From is a mailbox, the envelope sender not: default mailbox, From rewritten", ip: "127.0.0.1", sender: "printer@lan", rcpts: []string{"ops@company.com"},
			from: []Address{{Name: "Scans", Address: "scans@company.com"}}, mailbox: "alerts@company.com", handling: FromRewrite,
			fromName: "Scans (scans at company.com)", replyTo: "scans@company.com", format: "json"},
		{name: "envelope sender and From are the same mailbox", ip: "127.0.0.1", sender: "scans@company.com", rcpts: []string{"ops@company.com"},
			from: []Address{{Name: "Scans", Address: "scans@company.com"}}, mailbox: "scans@company.com", handling: FromKeep, fromName: "Scans", format: "json"},
		{name: "envelope sender a mailbox, From another: rewritten, not switched", ip: "127.0.0.1", sender: "scans@company.com", rcpts: []string{"ops@company.com"},
			from: []Address{{Address: "alerts@company.com"}}, mailbox: "scans@company.com", handling: FromRewrite,
			fromName: "alerts at company.com", replyTo: "alerts@company.com", format: "json"},
		{name: "envelope sender is an allowed mailbox, From rewritten", ip: "127.0.0.1", sender: "SCANS@company.com", rcpts: []string{"ops@company.com"},
			from: []Address{{Name: "MFP", Address: "mfp@printer.lan"}}, mailbox: "scans@company.com", handling: FromRewrite, fromName: "MFP (mfp at printer.lan)", replyTo: "mfp@printer.lan", format: "json"},
		{name: "neither: default mailbox, From rewritten", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"ops@company.com"},
			from: []Address{{Address: "root@host"}}, mailbox: "alerts@company.com", handling: FromRewrite, fromName: "root at host", replyTo: "root@host", format: "json"},
	}
	cases = append(cases,
		tcase{name: "external recipient without a written rule", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"relay@nmap.scanme.org"}, stage: "rcpt", kind: RelayDenied},
		tcase{name: "percent hack", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"relay%nmap.scanme.org@company.com"}, stage: "rcpt", kind: RelayDenied},
		tcase{name: "bang path", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"nmap.scanme.org!relay@company.com"}, stage: "rcpt", kind: RelayDenied},
		tcase{name: "quoted inner @", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{`"relay@nmap.scanme.org"@company.com`}, stage: "rcpt", kind: RelayDenied},
		tcase{name: "source route", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"@company.com:relay@nmap.scanme.org"}, stage: "rcpt", kind: RelayDenied},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, p, tc) })
	}
	cfg.DefaultMailbox = ""
	p, _, _ = New(cfg, nil)
	runCase(t, p, tcase{name: "no default: refused", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"ops@company.com"},
		from: []Address{{Address: "root@host"}}, stage: "mail", kind: SenderDenied})
	runCase(t, p, tcase{name: "no default, header From a mailbox: still refused", ip: "127.0.0.1", sender: "cron@host", rcpts: []string{"ops@company.com"},
		from: []Address{{Address: "scans@company.com"}}, stage: "mail", kind: SenderDenied})
}

func TestValidation(t *testing.T) {
	cfg := testConfig()
	cfg.Rules = append(cfg.Rules,
		config.Rule{Name: "typo", Listener: "lna", Mailbox: "nobody@company.com", From: "rewrite"},
		config.Rule{Name: "bad", Sender: "*.company.com", Networks: []string{"10.0.0.0/33"}, From: "maybe", Format: "eml", Mailbox: "alerts@company.com"},
	)
	_, _, err := New(cfg, nil)
	if err == nil {
		t.Fatal("invalid rules accepted")
	}
	for _, want := range []string{
		`rules[5] (typo): listener "lna" is not a configured listener`,
		`rules[5] (typo): mailbox nobody@company.com is not in mailboxes`,
		`rules[6] (bad): "10.0.0.0/33" is not a network`,
		`rules[6] (bad): sender: "*.company.com" is not an address pattern`,
		`rules[6] (bad): from must be keep, rewrite or reject`,
		`rules[6] (bad): format must be json or mime`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestWarnings(t *testing.T) {
	cfg := testConfig()
	cfg.Rules = []config.Rule{
		{Name: "lan", Networks: []string{"10.0.0.0/8", "10.1.0.0/16"}, Mailbox: "alerts@company.com", From: "rewrite"},
		{Name: "printers", Networks: []string{"10.1.2.0/24"}, Mailbox: "scans@company.com", From: "rewrite"},
		{Name: "ghost", AuthUser: "ghost", Mailbox: "alerts@company.com"},
		{Name: "partial", Networks: []string{"10.0.0.0/7"}, Sender: "*@x.example", Mailbox: "scans@company.com"},
	}
	_, warns, err := New(cfg, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	for _, want := range []string{
		"rules[0] (lan): networks 10.0.0.0/8 and 10.1.0.0/16 overlap",
		"rules[1] (printers) is unreachable: rules[0] (lan) matches every message it would match",
		`rules[2] (ghost): auth_user "ghost" is not a configured user`,
		"rules[0] (lan) and rules[3] (partial) have overlapping networks",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Alerts@Company.COM":       "alerts@company.com",
		"<alerts@company.com>":     "alerts@company.com",
		"hr@Bücher.example":        "hr@xn--bcher-kva.example",
		"hr@xn--bcher-kva.example": "hr@xn--bcher-kva.example",
		"":                         "",
		// Forms smtpd refuses compare equal to nothing else: a trailing
		// dot, a fullwidth domain.
		"user@company.com.": "user@company.com.",
		"user@ｃｏｍｐａｎｙ.com":  "user@ｃｏｍｐａｎｙ.com",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
