package smtpd

// The SMTP conformance cases below are ported, in our own code, from the
// kinds of checks in go-smtp's server tests and OpenSMTPD's regress suite
// (see ../shared/docs/real-clients.md §3). Each asserts the exact reply.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

func TestGreetingAndHello(t *testing.T) {
	addr, _ := testServer(t, nil)
	c := greeted(t, addr)
	expect(t, c.cmd("EHLO"), "501 5.5.2")
	expect(t, c.cmd("HELO"), "501 5.5.2")
	expect(t, c.cmd("HELO printer.lan"), "250 ")
	ehlo := c.cmd("EHLO printer.lan")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "SIZE 1048576", "STARTTLS", "CHUNKING"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH offered on a listener without users:\n%s", ehlo)
	}
	expect(t, c.cmd("QUIT"), "221 2.0.0")
	if got := c.reply(); got != "EOF" {
		t.Errorf("after QUIT the connection is open: %q", got)
	}
}

func TestCommandSequence(t *testing.T) {
	addr, rec := testServer(t, nil)
	c := greeted(t, addr)
	expect(t, c.cmd("MAIL FROM:<a@example.com>"), "502 5.5.1") // before EHLO
	c.ehlo()
	expect(t, c.cmd("RCPT TO:<b@example.com>"), "502 5.5.1") // before MAIL
	expect(t, c.cmd("DATA"), "502 5.5.1")                    // without RCPT
	expect(t, c.cmd("MAIL FROM:<a@example.com>"), "250")
	expect(t, c.cmd("DATA"), "502 5.5.1") // MAIL but no RCPT
	expect(t, c.cmd("RCPT TO:<b@example.com>"), "250")
	expect(t, c.cmd("RSET"), "250")
	expect(t, c.cmd("DATA"), "502 5.5.1") // RSET cleared the transaction
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}

func TestEnvelopeAddresses(t *testing.T) {
	addr, rec := testServer(t, nil)
	c := greeted(t, addr)
	c.ehlo()
	for _, tc := range []struct{ cmd, want string }{
		{"MAIL FROM:<a>", "501 5.5.2"},
		{"MAIL FROM:<a@>", "501 5.5.2"},
		{"MAIL FROM:<@example.com>", "501 5.5.2"},
		{"MAIL FROM:<a@-bad-.example>", "553 5.1.7"},
		{"MAIL FROM:<a@exa_mple.com>", "553 5.1.7"},
		{"MAIL FROM:<a@exa mple.com>", "5"},
		{"MAIL FROM:<a@example.com", "501 5.5.2"},
		{"MAIL FROM:a@example.com>", "500 5.5.4"},
		{"MAIL FROM:<a@example.com> FOO=BAR", "5"},
		{"MAIL FROM:<a@example.com> SIZE=999999999", "552 5.3.4"},
		{"MAIL FROM:<a@example.com> SIZE=abc", "501 5.5.4"},
	} {
		expect(t, c.cmd("%s", tc.cmd), tc.want)
		c.cmd("RSET")
	}
	expect(t, c.cmd("MAIL FROM:<>"), "250") // the null sender is legal
	for _, tc := range []struct{ cmd, want string }{
		{"RCPT TO:<b>", "501 5.5.2"},
		{"RCPT TO:<b@>", "501 5.5.2"},
		{"RCPT TO:<b@bad..example>", "553 5.1.3"},
		{"RCPT TO:<b@example.com", "501 5.5.2"},
		{"RCPT TO:<b@[127.0.0.1]>", "250"},
		{"RCPT TO:<b@[300.0.0.1]>", "553 5.1.3"},
		{"RCPT TO:<b@example.com>", "250"},
	} {
		expect(t, c.cmd("%s", tc.cmd), tc.want)
	}
	expect(t, c.cmd("DATA"), "354")
	expect(t, c.cmd("Subject: null sender\r\n\r\nbounce\r\n."), "250 2.0.0 queued as ")
	msgs := rec.all()
	if len(msgs) != 1 || msgs[0].env.From != "" || strings.Join(msgs[0].env.Recipients, ",") != "b@[127.0.0.1],b@example.com" {
		t.Errorf("delivered %+v", msgs)
	}
}

func TestTooManyInvalidCommandsCloses(t *testing.T) {
	addr, _ := testServer(t, nil)
	c := greeted(t, addr)
	c.ehlo()
	var last string
	for i := 0; i < 10 && last != "EOF"; i++ {
		if _, err := c.conn.Write([]byte("XYZZY\r\n")); err != nil {
			last = "EOF" // the server closed and the write found out
			break
		}
		last = c.reply()
	}
	if last != "EOF" {
		t.Errorf("the connection stayed open after 10 invalid commands: %q", last)
	}
}

func TestLongLines(t *testing.T) {
	addr, rec := testServer(t, nil)
	t.Run("command over the limit closes", func(t *testing.T) {
		c := greeted(t, addr)
		c.ehlo()
		expect(t, c.cmd("MAIL FROM:<%s@example.com>", strings.Repeat("a", 20000)), "500 5.4.0")
		if got := c.reply(); got != "EOF" {
			t.Errorf("connection open after a too-long line: %q", got)
		}
	})
	t.Run("DATA line of 5000 octets is accepted intact", func(t *testing.T) {
		c := greeted(t, addr)
		c.ehlo()
		c.cmd("MAIL FROM:<a@example.com>")
		c.cmd("RCPT TO:<b@example.com>")
		expect(t, c.cmd("DATA"), "354")
		long := strings.Repeat("x", 5000)
		expect(t, c.cmd("Subject: long\r\n\r\n%s\r\n.", long), "250")
		msgs := rec.all()
		if len(msgs) != 1 || !bytes.Contains(msgs[0].body, []byte("\r\n"+long+"\r\n")) {
			t.Errorf("the long line was not delivered intact")
		}
	})
	t.Run("DATA line over the limit is refused, nothing delivered", func(t *testing.T) {
		before := len(rec.all())
		c := greeted(t, addr)
		c.ehlo()
		c.cmd("MAIL FROM:<a@example.com>")
		c.cmd("RCPT TO:<b@example.com>")
		expect(t, c.cmd("DATA"), "354")
		expect(t, c.cmd("Subject: long\r\n\r\n%s\r\n.", strings.Repeat("y", 20000)), "500 5.4.0")
		if len(rec.all()) != before {
			t.Error("a message with a too-long line was delivered")
		}
	})
}

func TestPipelining(t *testing.T) {
	addr, rec := testServer(t, nil)
	c := greeted(t, addr)
	c.ehlo()
	c.write("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "250", "354"} {
		expect(t, c.reply(), want)
	}
	c.write("Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<d@example.com>\r\nRCPT TO:<e@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250 2.0.0", "250", "250", "354"} {
		expect(t, c.reply(), want)
	}
	expect(t, c.cmd("Subject: second\r\n\r\nbody\r\n."), "250 2.0.0")
	msgs := rec.all()
	if len(msgs) != 2 || strings.Join(msgs[0].env.Recipients, ",") != "b@example.com,c@example.com" ||
		strings.Join(msgs[1].env.Recipients, ",") != "e@example.com" || msgs[1].env.From != "d@example.com" {
		t.Errorf("transactions leaked into each other: %+v", msgs)
	}
}

func TestSTARTTLS(t *testing.T) {
	addr, _ := testServer(t, nil)
	t.Run("twice", func(t *testing.T) {
		c := greeted(t, addr)
		c.ehlo()
		c.startTLS()
		ehlo := c.ehlo()
		if strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("STARTTLS offered again after TLS:\n%s", ehlo)
		}
		expect(t, c.cmd("STARTTLS"), "502 5.5.1")
	})
	t.Run("pipelined commands after STARTTLS are discarded", func(t *testing.T) {
		c := greeted(t, addr)
		c.ehlo()
		// The injected MAIL rides in the same packet as STARTTLS, in clear
		// text; it must not survive into the TLS session (CVE-2011-0411).
		c.write("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
		expect(t, c.reply(), "220")
		tc := tlsClient(t, c)
		tc.ehlo()
		expect(t, tc.cmd("RCPT TO:<b@example.com>"), "502 5.5.1")
	})
	t.Run("a plain session cannot STARTTLS on a listener without TLS", func(t *testing.T) {
		plain, _ := testServer(t, func(cfg *config.Config) { cfg.SMTP.Listeners[0].TLS = config.TLSNone })
		c := greeted(t, plain)
		if ehlo := c.ehlo(); strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("STARTTLS offered without TLS:\n%s", ehlo)
		}
		expect(t, c.cmd("STARTTLS"), "502 5.5.1")
	})
}

func tlsClient(t *testing.T, c *client) *client {
	t.Helper()
	before := c.r.Buffered()
	if before != 0 {
		t.Fatalf("%d bytes of unexpected reply after 220", before)
	}
	c.startTLSHandshakeOnly()
	return c
}

func TestSMTPUTF8And8BITMIME(t *testing.T) {
	addr, rec := testServer(t, nil)
	c := greeted(t, addr)
	c.ehlo()
	expect(t, c.cmd("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8 BODY=8BITMIME"), "250")
	expect(t, c.cmd("RCPT TO:<用户@例子.广告>"), "250")
	expect(t, c.cmd("DATA"), "354")
	body := "Subject: Grüße\r\n\r\nÄrger mit dem Drucker, 8-bit body: é\xe9\r\n"
	expect(t, c.cmd("%s.", body), "250")
	msgs := rec.all()
	// The envelope keeps the local parts as written and carries the
	// domains as A-labels, the form every hop accepts (mailhdr.Canonical).
	if len(msgs) != 1 || msgs[0].env.From != "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp" || msgs[0].env.Recipients[0] != "用户@xn--fsqu00a.xn--4rr70v" {
		t.Fatalf("envelope = %+v", msgs)
	}
	if string(msgs[0].body) != body {
		t.Errorf("8-bit body altered: %q", msgs[0].body)
	}
}

func TestBDAT(t *testing.T) {
	addr, rec := testServer(t, nil)
	c := greeted(t, addr)
	c.ehlo()
	c.cmd("MAIL FROM:<a@example.com>")
	c.cmd("RCPT TO:<b@example.com>")
	part1, part2 := "Subject: chunked\r\n\r\n", "line one\r\n.line with a dot\r\n"
	c.write("BDAT " + itoa(len(part1)) + "\r\n" + part1)
	expect(t, c.reply(), "250")
	c.write("BDAT " + itoa(len(part2)) + " LAST\r\n" + part2)
	expect(t, c.reply(), "250 2.0.0 queued as ")
	msgs := rec.all()
	if len(msgs) != 1 || string(msgs[0].body) != part1+part2 {
		t.Errorf("BDAT message = %+v", msgs)
	}
}
