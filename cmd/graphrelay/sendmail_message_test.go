package main

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
)

func TestParseSendmailArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want sendmailOpts
	}{
		{"separate switches", []string{"-t", "-i"}, sendmailOpts{extract: true, ignoreDots: true}},
		{"grouped switches", []string{"-ti"}, sendmailOpts{extract: true, ignoreDots: true}},
		{"-oi", []string{"-oi", "a@x"}, sendmailOpts{ignoreDots: true, rcpts: []string{"a@x"}}},
		{"-O IgnoreDots", []string{"-O", "IgnoreDots=true", "a@x"}, sendmailOpts{ignoreDots: true, rcpts: []string{"a@x"}}},
		{"-f attached", []string{"-froot@h", "a@x"}, sendmailOpts{sender: "root@h", senderSet: true, rcpts: []string{"a@x"}}},
		{"-f separate, null sender", []string{"-f", "<>", "a@x"}, sendmailOpts{sender: "<>", senderSet: true, rcpts: []string{"a@x"}}},
		{"-r is -f", []string{"-r", "s@h", "a@x"}, sendmailOpts{sender: "s@h", senderSet: true, rcpts: []string{"a@x"}}},
		{"switch then value in one word", []string{"-tfs@h"}, sendmailOpts{extract: true, sender: "s@h", senderSet: true}},
		// Debian cron's own invocation.
		{"Debian cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			sendmailOpts{fullName: "CronDaemon", ignoreDots: true, rcpts: []string{"root"}}},
		{"legacy options ignored", []string{"-odi", "-oem", "-bm", "-oQ/var/spool", "-oXfoo", "-N", "never", "-v", "a@x"},
			sendmailOpts{verbose: true, rcpts: []string{"a@x"}}},
		{"long options", []string{"--server=127.0.0.1:25", "--config", "/c.yaml", "a@x"},
			sendmailOpts{server: "127.0.0.1:25", config: "/c.yaml", rcpts: []string{"a@x"}}},
		{"options after recipients", []string{"a@x", "-i"}, sendmailOpts{ignoreDots: true, rcpts: []string{"a@x"}}},
		{"-- ends options", []string{"-i", "--", "-odd@x"}, sendmailOpts{ignoreDots: true, rcpts: []string{"-odd@x"}}},
		{"queue run is a no-op", []string{"-q30m"}, sendmailOpts{noop: true}},
		{"newaliases is a no-op", []string{"-bi"}, sendmailOpts{noop: true}},
		{"-h alone is help", []string{"-h"}, sendmailOpts{help: true}},
		{"-h N is a hop count", []string{"-h", "17", "a@x"}, sendmailOpts{rcpts: []string{"a@x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSendmailArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got.extract != tc.want.extract || got.ignoreDots != tc.want.ignoreDots || got.sender != tc.want.sender ||
				got.senderSet != tc.want.senderSet || got.fullName != tc.want.fullName || got.verbose != tc.want.verbose ||
				got.server != tc.want.server || got.config != tc.want.config || got.noop != tc.want.noop || got.help != tc.want.help ||
				!slices.Equal(got.rcpts, tc.want.rcpts) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
	for _, bad := range [][]string{{"-x"}, {"-f"}, {"--server"}, {"--verbose"}, {"-bp"}, {"-bs"}} {
		if _, err := parseSendmailArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReadSendmailInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in   string
		ignoreDots bool
		want       string
	}{
		{"LF to CRLF", "a\nb\n", false, "a\r\nb\r\n"},
		{"CRLF kept", "a\r\nb\r\n", false, "a\r\nb\r\n"},
		{"bare CR ends a line", "a\rb\n", false, "a\r\nb\r\n"},
		{"last line without newline", "a\nb", false, "a\r\nb\r\n"},
		{"lone dot ends input", "a\n.\nb\n", false, "a\r\n"},
		{"lone dot with CRLF ends input", "a\r\n.\r\nb\r\n", false, "a\r\n"},
		{"-i keeps the dot", "a\n.\nb\n", true, "a\r\n.\r\nb\r\n"},
		{"two dots are text", "a\n..\nb\n", false, "a\r\n..\r\nb\r\n"},
		{"empty", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readSendmailInput(strings.NewReader(tc.in), tc.ignoreDots)
			if err != nil || string(got) != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("read error", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("a\n"), errReader{})
		if _, err := readSendmailInput(r, true); err == nil || errors.Is(err, errInputTooLarge) {
			t.Errorf("err = %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }

func compose(t *testing.T, in string, extract bool) (string, []string) {
	t.Helper()
	raw, err := readSendmailInput(strings.NewReader(in), true)
	if err != nil {
		t.Fatal(err)
	}
	msg, rcpts, err := composeMessage(raw, composeParams{extract: extract,
		fromAddr: "root@host.lan", fullName: "Cron Daemon", host: "host.lan", domain: "host.lan", now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return string(msg), rcpts
}

// TestComposeQualifiesHeaderAddresses: sendmail gives header addresses
// without a domain the qualifying domain, as sendmail(8) does, so the
// relay never sees "From: root".
func TestComposeQualifiesHeaderAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"From: root\n", "From: <root@host.lan>\r\n"},
		{"From: root (Cron Daemon)\n", "From: \"Cron Daemon\" <root@host.lan>\r\n"},
		{"From: mdadm monitoring <root>\n", "From: \"mdadm monitoring\" <root@host.lan>\r\n"},
		{"From: Scanner\n", "From: <Scanner@host.lan>\r\n"},
		{"Reply-To: ops\n", "Reply-To: <ops@host.lan>\r\n"},
		{"To: root, a@x.com\n", "To: <root@host.lan>, <a@x.com>\r\n"},
		{"From: Ops <ops@x.com>\n", "From: Ops <ops@x.com>\r\n"},
	} {
		msg, _ := compose(t, tc.in+"Subject: s\n\nbody\n", false)
		if !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%q became:\n%s", tc.in, msg)
		}
	}
}

func TestComposeMessage(t *testing.T) {
	t.Parallel()
	t.Run("-t collects To, Cc and Bcc and removes every Bcc field", func(t *testing.T) {
		msg, rcpts := compose(t, "To: A <a@x.com>, root\nCc: undisclosed-recipients:;\nBcc: b@x.com,\n c@x.com\nSubject: s\nBCC: d@x.com\n\nbody\nBcc: in the body\n", true)
		if want := []string{"a@x.com", "root@host.lan", "b@x.com", "c@x.com", "d@x.com"}; !slices.Equal(rcpts, want) {
			t.Errorf("rcpts = %v, want %v", rcpts, want)
		}
		hdr, body, _ := strings.Cut(msg, "\r\n\r\n")
		if strings.Contains(strings.ToLower(hdr), "bcc") || strings.Contains(hdr, "c@x.com") {
			t.Errorf("a Bcc field survived:\n%s", hdr)
		}
		if body != "body\r\nBcc: in the body\r\n" {
			t.Errorf("body = %q", body)
		}
	})
	t.Run("without -t no header address is a recipient", func(t *testing.T) {
		msg, rcpts := compose(t, "To: a@x.com\nBcc: b@x.com\n\nbody\n", false)
		if len(rcpts) != 0 || strings.Contains(msg, "b@x.com") {
			t.Errorf("rcpts = %v, msg:\n%s", rcpts, msg)
		}
	})
	t.Run("missing From, Date and Message-ID are added", func(t *testing.T) {
		msg, _ := compose(t, "Subject: s\n\nbody\n", false)
		for _, want := range []string{
			"Subject: s\r\n", `From: "Cron Daemon" <root@host.lan>` + "\r\n",
			"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n", "Message-ID: <1772366400.", "@host.lan>\r\n\r\nbody\r\n",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
	})
	t.Run("present fields are kept, not duplicated", func(t *testing.T) {
		in := "From: Me <me@x.com>\nDate: Mon, 2 Mar 2026 10:00:00 +0100\nMessage-Id: <id@x>\n\nbody\n"
		msg, _ := compose(t, in, false)
		if want := strings.ReplaceAll(in, "\n", "\r\n"); msg != want {
			t.Errorf("got %q\nwant %q", msg, want)
		}
	})
	t.Run("body without a header", func(t *testing.T) {
		msg, _ := compose(t, "just text: not a header because of spaces\nmore\n", false)
		if !strings.HasSuffix(msg, "\r\n\r\njust text: not a header because of spaces\r\nmore\r\n") || !strings.HasPrefix(msg, "From: ") {
			t.Errorf("msg = %q", msg)
		}
	})
	t.Run("header running into the body gets its blank line", func(t *testing.T) {
		msg, _ := compose(t, "Subject: s\nthe body starts here\n", false)
		if !strings.Contains(msg, "Subject: s\r\n") || !strings.HasSuffix(msg, "\r\n\r\nthe body starts here\r\n") {
			t.Errorf("msg = %q", msg)
		}
	})
	t.Run("mbox From line dropped", func(t *testing.T) {
		msg, _ := compose(t, "From root  Sun Mar  1 12:00:00 2026\nSubject: s\n\nb\n", false)
		if strings.Contains(msg, "From root") || !strings.HasPrefix(msg, "Subject: s\r\n") {
			t.Errorf("msg = %q", msg)
		}
	})
	t.Run("-t with an unusable To is EX_DATAERR's error", func(t *testing.T) {
		raw, _ := readSendmailInput(strings.NewReader("To: <>\n\nb\n"), true)
		if _, _, err := composeMessage(raw, composeParams{extract: true, host: "h"}); err == nil {
			t.Error("no error")
		}
	})
}

func TestSubmitErrorExitCode(t *testing.T) {
	t.Parallel()
	smtpErr := func(code int) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "x"}
	}
	for _, tc := range []struct {
		step string
		err  error
		want int
	}{
		{"connect", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, exTempFail},
		{"EHLO", smtpErr(421), exTempFail},
		{"EHLO", smtpErr(554), exUnavailable},
		{"MAIL FROM:<a@x>", smtpErr(550), exUnavailable},
		{"MAIL FROM:<a@x>", smtpErr(451), exTempFail},
		{"RCPT TO:<b@x>", smtpErr(550), exNoUser},
		{"RCPT TO:<b@x>", smtpErr(452), exTempFail},
		{"DATA", smtpErr(554), exUnavailable},
		{"end of DATA", smtpErr(552), exUnavailable},
		{"end of DATA", smtpErr(451), exTempFail},
		{"end of DATA", io.ErrUnexpectedEOF, exTempFail},
		{"DATA", &smtp.SMTPError{Code: 250}, exProtocol},
	} {
		e := &submitError{server: "127.0.0.1:2525", step: tc.step, err: tc.err}
		if got := e.exitCode(); got != tc.want {
			t.Errorf("%s %v: exit %d, want %d", tc.step, tc.err, got, tc.want)
		}
		if strings.Contains(e.Error(), "\n") {
			t.Errorf("message is not one line: %q", e.Error())
		}
	}
	// The one-line message names the step and the reply with its code.
	e := &submitError{server: "s:25", step: "RCPT TO:<b@x>", err: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay not permitted"}}
	if got := e.Error(); got != "s:25 refused RCPT TO:<b@x>: 550 5.7.1 Relay not permitted" {
		t.Errorf("Error() = %q", got)
	}
}

func TestSubmissionTarget(t *testing.T) {
	t.Parallel()
	l := func(addr string, mod ...func(*config.Listener)) config.Listener {
		c := config.Listener{Name: "l", Address: addr}
		for _, m := range mod {
			m(&c)
		}
		return c
	}
	lan := func(c *config.Listener) { c.Networks = []string{"192.168.10.0/24"} }
	withLoop := func(c *config.Listener) { c.Networks = []string{"192.168.10.0/24", "127.0.0.0/8"} }
	authReq := func(c *config.Listener) { c.Auth = config.AuthRequired }
	implicit := func(c *config.Listener) { c.TLS = config.TLSImplicit }
	for _, tc := range []struct {
		name string
		ls   []config.Listener
		want string
	}{
		{"built-in default", config.Default().SMTP.Listeners, "127.0.0.1:2525"},
		{"wildcard dialled on loopback", []config.Listener{l("0.0.0.0:25", withLoop)}, "127.0.0.1:25"},
		{"IPv6 wildcard", []config.Listener{l("[::]:25", func(c *config.Listener) { c.Networks = []string{"::1/128"} })}, "[::1]:25"},
		{"empty host", []config.Listener{l(":2525")}, "127.0.0.1:2525"},
		{"LAN-only and AUTH listeners skipped", []config.Listener{
			l("0.0.0.0:25", lan), l("0.0.0.0:587", withLoop, authReq), l("0.0.0.0:465", withLoop, implicit), l("127.0.0.1:2526")}, "127.0.0.1:2526"},
		{"specific address must admit itself", []config.Listener{l("192.168.10.5:25", lan)}, "192.168.10.5:25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := submissionTarget(tc.ls)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := submissionTarget([]config.Listener{l("0.0.0.0:25", lan), l("127.0.0.1:0")}); err == nil {
		t.Errorf("no usable listener, yet got %q", got)
	}
}

func TestResolveSendmailServer(t *testing.T) {
	old := sendmailDefaultConfig
	t.Cleanup(func() { sendmailDefaultConfig = old })
	dir := t.TempDir()
	pkgConf := dir + "/graphrelay.yaml"
	writeFile := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(pkgConf, "smtp:\n  listeners:\n    - {name: lan, address: \"0.0.0.0:25\", networks: [10.0.0.0/8, 127.0.0.0/8]}\n")
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	resolve := func(o sendmailOpts) string {
		t.Helper()
		got, err := resolveSendmailServer(&o, getenv)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	sendmailDefaultConfig = func() string { return dir + "/absent.yaml" }
	if got := resolve(sendmailOpts{}); got != "127.0.0.1:2525" {
		t.Errorf("no configuration: %q", got)
	}
	sendmailDefaultConfig = func() string { return dir }
	if got, err := resolveSendmailServer(&sendmailOpts{}, getenv); err == nil {
		t.Errorf("an unreadable default configuration gave %q", got)
	}
	sendmailDefaultConfig = func() string { return pkgConf }
	if got := resolve(sendmailOpts{}); got != "127.0.0.1:25" {
		t.Errorf("packaged configuration: %q", got)
	}
	env["GRAPHRELAY_CONFIG"] = dir + "/other.yaml"
	writeFile(env["GRAPHRELAY_CONFIG"], "smtp:\n  listeners:\n    - {name: local, address: \"127.0.0.1:2600\"}\n")
	if got := resolve(sendmailOpts{}); got != "127.0.0.1:2600" {
		t.Errorf("GRAPHRELAY_CONFIG: %q", got)
	}
	if got := resolve(sendmailOpts{config: pkgConf}); got != "127.0.0.1:25" {
		t.Errorf("--config: %q", got)
	}
	env["GRAPHRELAY_SENDMAIL_SERVER"] = "127.0.0.1:2700"
	if got := resolve(sendmailOpts{config: pkgConf}); got != "127.0.0.1:2700" {
		t.Errorf("GRAPHRELAY_SENDMAIL_SERVER: %q", got)
	}
	if got := resolve(sendmailOpts{server: "127.0.0.1:2800"}); got != "127.0.0.1:2800" {
		t.Errorf("--server: %q", got)
	}
}
