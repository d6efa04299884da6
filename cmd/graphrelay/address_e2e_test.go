package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// Issue 11's address and header cases and issue 19's unqualified senders,
// end to end: a real listener, raw SMTP or the sendmail command, the fake
// Graph, and assertions on the reply and on what reached Graph.

// addressRelay runs the daemon in direct mode (the reply to DATA is
// Graph's verdict) with one rule: any loopback client, sent as
// alerts@company.com with the From rewritten, to any recipient.
func addressRelay(t *testing.T, format string, mutate func(*config.Config)) (*runningRelay, *graphtest.Server) {
	t.Helper()
	return certRelay(t, func(c *config.Config) {
		c.Delivery.Format = format
		c.Rules = []config.Rule{{Name: "lan", Networks: []string{"127.0.0.0/8"}, Mailbox: "alerts@company.com",
			From: config.FromRewrite, Recipients: []string{"*"}}}
		if mutate != nil {
			mutate(c)
		}
	})
}

// TestAddressRefusedAtCommand: addresses that cannot be sent as written
// are refused at MAIL or RCPT with the precise code, and nothing of them
// reaches Graph; the canonical form of an accepted address is what Graph
// receives.
func TestAddressRefusedAtCommand(t *testing.T) {
	t.Parallel()
	r, fake := addressRelay(t, config.FormatJSON, nil)
	tests := []struct {
		name, mail, rcpt, want string
	}{
		{"NUL in sender", "cron\x00@host.lan", "", "501 5.1.7"},
		{"control byte in sender", "cron\x07@host.lan", "", "501 5.1.7"},
		{"DEL in sender", "cron\x7f@host.lan", "", "501 5.1.7"},
		{"trailing dot in sender", "cron@host.lan.", "", "553 5.1.7"},
		{"fullwidth sender domain", "cron@ｈｏｓｔ.lan", "", "553 5.1.7"},
		{"NUL in recipient", "cron@host.lan", "ops\x00@company.com", "501 5.1.3"},
		{"escape in recipient", "cron@host.lan", "ops\x1b@company.com", "501 5.1.3"},
		{"C1 control in recipient", "cron@host.lan", "ops\u0085@company.com", "501 5.1.3"},
		{"trailing dot in recipient", "cron@host.lan", "ops@company.com.", "553 5.1.3"},
		{"double dot in recipient", "cron@host.lan", "o..ps@company.com", "553 5.1.3"},
		{"fullwidth recipient domain", "cron@host.lan", "ops@ｃｏｍｐａｎｙ.com", "553 5.1.3"},
		{"soft hyphen in recipient domain", "cron@host.lan", "ops@com\u00adpany.com", "553 5.1.3"},
		{"zero-width space in recipient domain", "cron@host.lan", "ops@com\u200bpany.com", "553 5.1.3"},
		{"fullwidth at sign in recipient", "cron@host.lan", "payroll＠company.com@company.com", "553 5.1.3"},
		{"fullwidth recipient local part", "cron@host.lan", "ｐａｙｒｏｌｌ@company.com", "553 5.1.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSMTP(t, r.addr)
			c.cmd(t, "EHLO printer.lan")
			got := c.cmd(t, "MAIL FROM:<"+tc.mail+"> SMTPUTF8")
			if tc.rcpt != "" {
				if !strings.HasPrefix(got, "250") {
					t.Fatalf("MAIL: %s", got)
				}
				got = c.cmd(t, "RCPT TO:<"+tc.rcpt+">")
			}
			if !strings.HasPrefix(got, tc.want+" ") {
				t.Errorf("reply %q, want %s", got, tc.want)
			}
			if strings.ContainsAny(got, "\x00\x07\x1b\x7f") {
				t.Errorf("the reply echoes control bytes: %q", got)
			}
		})
	}

	// An accepted address goes out in the form that was checked: the
	// domain in lower case, an internationalised one as an A-label, and
	// the header To that names it in U-labels still matches it.
	c := dialSMTP(t, r.addr)
	c.cmd(t, "EHLO printer.lan")
	for _, step := range []struct{ cmd, want string }{
		{"MAIL FROM:<cron@Host.LAN> SMTPUTF8", "250"},
		{"RCPT TO:<Ops@Company.COM>", "250"},
		{"RCPT TO:<hr@bücher.example>", "250"},
		{"DATA", "354"},
		{crlf("From: cron@host.lan\nTo: HR <hr@Bücher.example>\nSubject: addresses\n\nbody\n."), "250"},
	} {
		if got := c.cmd(t, step.cmd); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%q: %s", step.cmd, got)
		}
	}
	ds := fake.WaitDeliveries(1, 10*time.Second)
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want only the valid message", len(ds))
	}
	m := ds[0].Message
	if got := sendmailAddrs(m.To); !slices.Equal(got, []string{"hr@xn--bcher-kva.example"}) {
		t.Errorf("toRecipients = %v", got)
	}
	if got := sendmailAddrs(m.Bcc); !slices.Equal(got, []string{"Ops@company.com"}) {
		t.Errorf("bccRecipients = %v", got)
	}
	if len(m.ReplyTo) != 1 || m.ReplyTo[0].Address != "cron@host.lan" {
		t.Errorf("replyTo = %+v", m.ReplyTo)
	}
}

// TestHeaderFromAsTheConverterReadsIt: headers that go-message's strict
// reader gave up on hid the From from the policy, while the converter read
// it. A rule that matches only on the header From now decides on them.
func TestHeaderFromAsTheConverterReadsIt(t *testing.T) {
	t.Parallel()
	for _, format := range []string{config.FormatJSON, config.FormatMIME} {
		t.Run(format, func(t *testing.T) {
			r, fake := certRelay(t, func(c *config.Config) {
				c.Mailboxes = append(c.Mailboxes, config.Mailbox{Address: "scans@company.com"})
				c.Delivery.Format = format
				c.Rules = []config.Rule{{Name: "scanner", Networks: []string{"127.0.0.0/8"}, HeaderFrom: "scans@company.com",
					Mailbox: "scans@company.com", From: config.FromKeep, Recipients: []string{"company.com"}}}
			})
			msgs := []struct{ name, msg string }{
				{"mbox From line", "From scans@company.com Mon Jan  1 00:00:00 2024\nFrom: Scanner <scans@company.com>\nTo: ops@company.com\nSubject: scan 1\n\nbody\n"},
				{"stray non-field line", "Subject: scan 2\nthis line lost its indent\nFrom: Scanner <scans@company.com>\nTo: ops@company.com\n\nbody\n"},
				{"leading blank line", "\nFrom: Scanner <scans@company.com>\nTo: ops@company.com\nSubject: scan 3\n\nbody\n"},
			}
			for i, tc := range msgs {
				if rep := sendNetSMTP(t, r.addr, "scanner@printer.lan", []string{"ops@company.com"}, crlf(tc.msg)); rep.code != 250 {
					t.Fatalf("%s: %d %s", tc.name, rep.code, rep.msg)
				}
				ds := fake.WaitDeliveries(i+1, 10*time.Second)
				if len(ds) != i+1 {
					t.Fatalf("%s: nothing reached Graph", tc.name)
				}
				d := ds[i]
				if d.Mailbox != "scans@company.com" || d.Message.From == nil || d.Message.From.Address != "scans@company.com" {
					t.Errorf("%s: sent as %q, From %+v", tc.name, d.Mailbox, d.Message.From)
				}
			}
			// A From the rule does not allow is still refused after the
			// mbox line, rather than hidden and sent.
			rep := sendNetSMTP(t, r.addr, "scanner@printer.lan", []string{"ops@company.com"},
				crlf("From scans@company.com Mon Jan  1 00:00:00 2024\nFrom: payroll@company.com\nSubject: x\n\nbody\n"))
			if rep.code != 550 || !strings.Contains(rep.msg, "5.7.1") {
				t.Errorf("other From after an mbox line: %d %s", rep.code, rep.msg)
			}
		})
	}
}

// TestDisplayNameAndReplyToCleaned: an at sign or a lookalike in a display
// name never reaches Graph, and a Reply-To that is not an address (an
// encoded word standing in for one) is left out, in both formats.
func TestDisplayNameAndReplyToCleaned(t *testing.T) {
	t.Parallel()
	for _, format := range []string{config.FormatJSON, config.FormatMIME} {
		t.Run(format, func(t *testing.T) {
			r, fake := addressRelay(t, format, nil)
			cases := []struct {
				name, msg, wantName string
				wantReplyTo         []string
			}{
				{"fullwidth at sign", "From: payroll＠company.com <mfp@printer.lan>\nTo: ops@company.com\nSubject: a\n\nx\n",
					"payroll at company.com (mfp at printer.lan)", []string{"mfp@printer.lan"}},
				{"small at sign", "From: ceo﹫company.com <mfp@printer.lan>\nTo: ops@company.com\nSubject: b\n\nx\n",
					"ceo at company.com (mfp at printer.lan)", []string{"mfp@printer.lan"}},
				{"encoded word as Reply-To", "From: MFP <mfp@printer.lan>\nReply-To: =?utf-8?q?Support_Desk?=\nTo: ops@company.com\nSubject: c\n\nx\n",
					"MFP (mfp at printer.lan)", []string{"mfp@printer.lan"}},
				{"unqualified Reply-To", "From: MFP <mfp@printer.lan>\nReply-To: helpdesk\nTo: ops@company.com\nSubject: d\n\nx\n",
					"MFP (mfp at printer.lan)", []string{"helpdesk@printer.lan"}},
			}
			for i, tc := range cases {
				if rep := sendNetSMTP(t, r.addr, "mfp@printer.lan", []string{"ops@company.com"}, crlf(tc.msg)); rep.code != 250 {
					t.Fatalf("%s: %d %s", tc.name, rep.code, rep.msg)
				}
				ds := fake.WaitDeliveries(i+1, 10*time.Second)
				if len(ds) != i+1 {
					t.Fatalf("%s: nothing reached Graph", tc.name)
				}
				m := ds[i].Message
				if m.From == nil || m.From.Name != tc.wantName || m.From.Address != "alerts@company.com" {
					t.Errorf("%s: From = %+v, want name %q", tc.name, m.From, tc.wantName)
				}
				if got := sendmailAddrs(m.ReplyTo); !slices.Equal(got, tc.wantReplyTo) {
					t.Errorf("%s: replyTo = %v, want %v\n%s", tc.name, got, tc.wantReplyTo, ds[i].MIME)
				}
			}
		})
	}
}

// cronOutput is what cron, mdadm, smartd and scripts write: a From
// without a domain.
func cronOutput(from string) string {
	return "From: " + from + "\nTo: ops@company.com\nSubject: Cron <root@web1> /usr/local/bin/backup\n\nbackup: 3 files skipped\n"
}

// TestUnqualifiedFromQualified is issue 19's table: the four From forms in
// JSON and MIME mode, through SMTP, with the envelope sender's domain,
// with smtp.qualify_domain, and with the null sender and nothing to
// qualify with. Reply-To is a qualified address or absent, never "root" or
// "<root@>", and the message is delivered either way.
func TestUnqualifiedFromQualified(t *testing.T) {
	t.Parallel()
	froms := []struct{ from, local, name string }{
		{"root", "root", ""},
		{"root (Cron Daemon)", "root", "Cron Daemon"},
		{"mdadm monitoring <root>", "root", "mdadm monitoring"},
		{"Scanner", "Scanner", ""},
	}
	setups := []struct {
		name, sender, qualify, domain string
		queue                         bool
	}{
		{"envelope sender's domain", "root@host.example", "", "host.example", false},
		{"qualify_domain", "root@host.example", "corp.example", "corp.example", false},
		{"null sender", "", "", "", false},
		// Through the spool: the domain decided at acceptance is recorded
		// in the envelope and used when the message is sent.
		{"queued", "root@host.example", "corp.example", "corp.example", true},
	}
	for _, format := range []string{config.FormatJSON, config.FormatMIME} {
		for _, s := range setups {
			t.Run(format+"/"+s.name, func(t *testing.T) {
				r, fake := addressRelay(t, format, func(c *config.Config) {
					c.SMTP.QualifyDomain = s.qualify
					if s.queue {
						c.Delivery.Mode = config.ModeQueue
						c.Queue.Dir = filepath.Join(t.TempDir(), "spool")
					}
				})
				for i, f := range froms {
					if rep := sendNetSMTP(t, r.addr, s.sender, []string{"ops@company.com"}, crlf(cronOutput(f.from))); rep.code != 250 {
						t.Fatalf("From: %s: %d %s", f.from, rep.code, rep.msg)
					}
					ds := fake.WaitDeliveries(i+1, 10*time.Second)
					if len(ds) != i+1 {
						t.Fatalf("From: %s: nothing reached Graph", f.from)
					}
					m := ds[i].Message
					var want []string
					if s.domain != "" {
						want = []string{f.local + "@" + s.domain}
					}
					if got := sendmailAddrs(m.ReplyTo); !slices.Equal(got, want) {
						t.Errorf("From: %s: replyTo = %v, want %v\n%s", f.from, got, want, ds[i].MIME)
					}
					if strings.Contains(string(ds[i].MIME), "<root@>") {
						t.Errorf("From: %s: the MIME carries <root@>:\n%s", f.from, ds[i].MIME)
					}
					if m.From == nil || m.From.Address != "alerts@company.com" {
						t.Errorf("From: %s: From = %+v", f.from, m.From)
					} else if s.domain != "" && !strings.Contains(m.From.Name, f.local+" at "+s.domain) {
						t.Errorf("From: %s: display name %q does not name %s at %s", f.from, m.From.Name, f.local, s.domain)
					} else if f.name != "" && !strings.HasPrefix(m.From.Name, f.name) {
						t.Errorf("From: %s: display name %q lost %q", f.from, m.From.Name, f.name)
					}
				}
				if !s.queue {
					return
				}
				// The message's own unqualified Reply-To is qualified when
				// the queue sends it, from the spooled envelope.
				msg := "From: root\nReply-To: helpdesk\nTo: ops@company.com\nSubject: x\n\nx\n"
				if rep := sendNetSMTP(t, r.addr, s.sender, []string{"ops@company.com"}, crlf(msg)); rep.code != 250 {
					t.Fatalf("Reply-To: helpdesk: %d %s", rep.code, rep.msg)
				}
				ds := fake.WaitDeliveries(len(froms)+1, 10*time.Second)
				if len(ds) != len(froms)+1 {
					t.Fatal("Reply-To: helpdesk: nothing reached Graph")
				}
				if got := sendmailAddrs(ds[len(froms)].Message.ReplyTo); !slices.Equal(got, []string{"helpdesk@" + s.domain}) {
					t.Errorf("Reply-To: helpdesk: replyTo = %v\n%s", got, ds[len(froms)].MIME)
				}
			})
		}
	}
}

// TestCronThroughSendmailAndSMTP pipes cron-style output through
// "graphrelay sendmail -t" and the same output through SMTP, and checks
// that both reach Graph with a qualified Reply-To: sendmail from the
// configured qualify_domain it reads, SMTP from the envelope sender.
func TestCronThroughSendmailAndSMTP(t *testing.T) {
	t.Parallel()
	for _, format := range []string{config.FormatJSON, config.FormatMIME} {
		t.Run(format, func(t *testing.T) {
			r, fake := addressRelay(t, format, nil)
			cfgFile := filepath.Join(t.TempDir(), "graphrelay.yaml")
			if err := os.WriteFile(cfgFile, []byte("smtp:\n  qualify_domain: web1.corp.example\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runSendmail(t, cronOutput("root (Cron Daemon)"), "-t", "-i", "--config", cfgFile, "--server", r.addr)
			if code != 0 {
				t.Fatalf("sendmail exit %d: %s", code, stderr)
			}
			d := oneDelivery(t, fake)
			if got := sendmailAddrs(d.Message.ReplyTo); !slices.Equal(got, []string{"root@web1.corp.example"}) {
				t.Errorf("sendmail: replyTo = %v\n%s", got, d.MIME)
			}
			if d.Message.From == nil || d.Message.From.Name != "Cron Daemon (root at web1.corp.example)" {
				t.Errorf("sendmail: From = %+v", d.Message.From)
			}
			if !strings.Contains(r.logs.String(), "@web1.corp.example") {
				t.Errorf("sendmail did not qualify the envelope sender with qualify_domain:\n%s", r.logs)
			}

			if rep := sendNetSMTP(t, r.addr, "root@web2.corp.example", []string{"ops@company.com"}, crlf(cronOutput("root (Cron Daemon)"))); rep.code != 250 {
				t.Fatalf("SMTP: %d %s", rep.code, rep.msg)
			}
			ds := fake.WaitDeliveries(2, 10*time.Second)
			if len(ds) != 2 {
				t.Fatal("SMTP: nothing reached Graph")
			}
			if got := sendmailAddrs(ds[1].Message.ReplyTo); !slices.Equal(got, []string{"root@web2.corp.example"}) {
				t.Errorf("SMTP: replyTo = %v\n%s", got, ds[1].MIME)
			}
		})
	}
}
