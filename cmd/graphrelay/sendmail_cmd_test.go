package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// runSendmail runs the sendmail command as a program would: arguments and
// a message on stdin, written with LF line endings.
func runSendmail(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = sendmailCmd(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func sendmailAddrs(as []graphtest.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Address)
	}
	slices.Sort(out)
	return out
}

func oneDelivery(t *testing.T, fake *graphtest.Server) graphtest.Delivery {
	t.Helper()
	ds := fake.WaitDeliveries(1, 10*time.Second)
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(ds))
	}
	return ds[0]
}

const backupReport = "To: Ops <ops@company.com>\nCc: cc@company.com\nBcc: hidden@company.com\nSubject: nightly backup\n\nBackup finished.\n"

// TestSendmailTThroughDaemon is issue 6's "sendmail -t test through the
// daemon": recipients from the header plus the command line, the Bcc
// recipient delivered but invisible.
func TestSendmailTThroughDaemon(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, nil)
	code, _, stderr := runSendmail(t, backupReport, "-t", "-i", "--server", r.addr, "extra@company.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := oneDelivery(t, fake).Message
	if got := sendmailAddrs(m.To); !slices.Equal(got, []string{"ops@company.com"}) {
		t.Errorf("toRecipients = %v", got)
	}
	if got := sendmailAddrs(m.Cc); !slices.Equal(got, []string{"cc@company.com"}) {
		t.Errorf("ccRecipients = %v", got)
	}
	// The relay turns envelope recipients absent from To and Cc into
	// bccRecipients: the header Bcc and the command-line address.
	if got := sendmailAddrs(m.Bcc); !slices.Equal(got, []string{"extra@company.com", "hidden@company.com"}) {
		t.Errorf("bccRecipients = %v", got)
	}
	if m.Subject != "nightly backup" || !strings.Contains(m.Body, "Backup finished.") {
		t.Errorf("message = %+v", m)
	}
	if !strings.Contains(r.logs.String(), "rcpts=4") {
		t.Errorf("the relay did not receive 4 envelope recipients:%s", r.logs)
	}
}

// TestSendmailRemovesBcc checks the message as it reached the relay: in
// MIME passthrough the relay counts the Bcc fields it had to drop, which
// must be none, and the Bcc it adds itself names both hidden recipients.
func TestSendmailRemovesBcc(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, func(c *config.Config) { c.Delivery.Format = config.FormatMIME })
	code, _, stderr := runSendmail(t, backupReport, "-t", "--server", r.addr, "extra@company.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d := oneDelivery(t, fake)
	if !strings.Contains(r.logs.String(), "bcc_dropped=0") {
		t.Errorf("the message reached the relay with a Bcc field:%s", r.logs)
	}
	if got := sendmailAddrs(d.Message.Bcc); !slices.Equal(got, []string{"extra@company.com", "hidden@company.com"}) {
		t.Errorf("Bcc = %v\n%s", got, d.MIME)
	}
}

// TestSendmailAddsMissingHeaders: -F names the sender of a message without
// From, and Date and Message-ID are added as sendmail adds them.
func TestSendmailAddsMissingHeaders(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, func(c *config.Config) { c.Delivery.Format = config.FormatMIME })
	code, _, stderr := runSendmail(t, "Subject: SMART error on /dev/sda\n\nReallocated sectors: 12\n",
		"-F", "Backup Job", "-f", "backup@nas.lan", "--server", r.addr, "ops@company.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d := oneDelivery(t, fake)
	m := d.Message
	// The relay rewrites From to the mailbox, keeping the display name and
	// naming the original address after it, which also becomes Reply-To.
	if m.From == nil || !strings.HasPrefix(m.From.Name, "Backup Job (backup at nas.lan)") || m.From.Address != "alerts@company.com" {
		t.Errorf("From = %+v", m.From)
	}
	if got := sendmailAddrs(m.ReplyTo); !slices.Equal(got, []string{"backup@nas.lan"}) {
		t.Errorf("Reply-To = %v", got)
	}
	mime := string(d.MIME)
	for _, want := range []string{"\r\nDate: ", "\r\nMessage-ID: <"} {
		if !strings.Contains(mime, want) {
			t.Errorf("delivered MIME lacks %q:\n%s", want, mime)
		}
	}
	if !strings.Contains(r.logs.String(), "from=backup@nas.lan") {
		t.Errorf("-f did not set the envelope sender:%s", r.logs)
	}
}

// TestSendmailLoneDot: without -i a line holding "." ends the message, as
// it always has; with -i it is text, and SMTP dot-stuffing carries it.
func TestSendmailLoneDot(t *testing.T) {
	t.Parallel()
	const msg = "Subject: dots\n\nbefore\n.\nafter\n"
	for _, tc := range []struct {
		name      string
		args      []string
		want, not string
	}{
		{"without -i", nil, "before", "after"},
		{"with -i", []string{"-i"}, "before\n.\nafter", ""},
		{"with -oi", []string{"-oi"}, "before\n.\nafter", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, fake := certRelay(t, nil)
			args := append(append([]string{}, tc.args...), "--server", r.addr, "ops@company.com")
			if code, _, stderr := runSendmail(t, msg, args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			body := strings.ReplaceAll(oneDelivery(t, fake).Message.Body, "\r\n", "\n")
			if !strings.Contains(body, tc.want) || (tc.not != "" && strings.Contains(body, tc.not)) {
				t.Errorf("body = %q, want %q and not %q", body, tc.want, tc.not)
			}
		})
	}
}

// TestSendmailExitCodes drives each refusal the relay can give and checks
// the sysexits code that tells cron and PHP whether to retry.
func TestSendmailExitCodes(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, func(c *config.Config) {
		c.DefaultMailbox = ""
		c.Rules = []config.Rule{{Name: "nas", Sender: "*@nas.lan", Mailbox: "alerts@company.com",
			From: config.FromRewrite, Recipients: []string{"company.com"}}}
	})
	const msg = "Subject: test\n\nbody\n"
	t.Run("sender outside the rules: 5xx to MAIL is EX_UNAVAILABLE", func(t *testing.T) {
		code, _, stderr := runSendmail(t, msg, "-f", "cron@other.lan", "--server", r.addr, "ops@company.com")
		if code != exUnavailable || !strings.Contains(stderr, "MAIL FROM:<cron@other.lan>: 550 5.7.1") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("recipient outside the rule: 5xx to RCPT is EX_NOUSER", func(t *testing.T) {
		code, _, stderr := runSendmail(t, msg, "-f", "nas@nas.lan", "--server", r.addr, "ops@company.com", "x@elsewhere.org")
		if code != exNoUser || !strings.Contains(stderr, "RCPT TO:<x@elsewhere.org>: 550") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if n := len(fake.Deliveries()); n != 0 {
			t.Errorf("%d deliveries after a refused recipient; the transaction must be abandoned", n)
		}
	})
	t.Run("Graph unavailable: 4xx is EX_TEMPFAIL", func(t *testing.T) {
		fake.SetGraphOutage(&graphtest.Fault{Status: 503})
		defer fake.SetGraphOutage(nil)
		code, _, stderr := runSendmail(t, msg, "-f", "nas@nas.lan", "--server", r.addr, "ops@company.com")
		if code != exTempFail || !strings.Contains(stderr, "deferred (try again later) end of DATA: 451") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("relay stopped: EX_TEMPFAIL", func(t *testing.T) {
		code, _, stderr := runSendmail(t, msg, "--server", closedPort(t), "ops@company.com")
		if code != exTempFail || !strings.Contains(stderr, "cannot reach graphrelay") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("no recipients: EX_USAGE", func(t *testing.T) {
		code, _, stderr := runSendmail(t, msg, "-t", "--server", r.addr)
		if code != exUsage || !strings.Contains(stderr, "no recipients") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("mailq: EX_USAGE", func(t *testing.T) {
		if code, _, _ := runSendmail(t, "", "-bp"); code != exUsage {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("unreadable configuration: EX_CONFIG", func(t *testing.T) {
		code, _, stderr := runSendmail(t, msg, "--config", filepath.Join(t.TempDir(), "missing.yaml"), "ops@company.com")
		if code != exConfig || !strings.Contains(stderr, "--server") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSendmailFindsRelayFromConfig: with GRAPHRELAY_CONFIG set, as the
// packages set it for cron, sendmail dials the first listener that admits
// loopback, with 0.0.0.0 dialled as 127.0.0.1.
func TestSendmailFindsRelayFromConfig(t *testing.T) {
	r, fake := certRelay(t, nil)
	_, port, _ := net.SplitHostPort(r.addr)
	cfgFile := filepath.Join(t.TempDir(), "graphrelay.yaml")
	yaml := fmt.Sprintf(`smtp:
  listeners:
    - {name: lan, address: "0.0.0.0:%s", networks: [192.0.2.0/24]}
    - {name: all, address: "0.0.0.0:%s", networks: [192.0.2.0/24, 127.0.0.0/8]}
`, closedPortNumber(t), port)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GRAPHRELAY_SENDMAIL_SERVER", "")
	t.Setenv("GRAPHRELAY_CONFIG", cfgFile)
	if code, _, stderr := runSendmail(t, backupReport, "-t"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oneDelivery(t, fake)
}

func closedPortNumber(t *testing.T) string {
	_, p, _ := net.SplitHostPort(closedPort(t))
	return p
}

// TestSendmailSymlinkBinary installs the built binary as "sendmail" the way
// docs/deploy.md says (a symlink) and runs "sendmail -t" as cron would:
// server from the environment, exit code from the process.
func TestSendmailSymlinkBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := e2etest.Binary(t)
	link := filepath.Join(dir, "sendmail")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	r, fake := certRelay(t, nil)
	sendmail := func(server string) (int, string) {
		cmd := exec.Command(link, "-t")
		cmd.Env = append(os.Environ(), "GRAPHRELAY_SENDMAIL_SERVER="+server, "GRAPHRELAY_CONFIG=")
		cmd.Stdin = strings.NewReader(backupReport)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := sendmail(r.addr); code != 0 {
		t.Fatalf("sendmail -t: exit %d\n%s", code, out)
	}
	if got := sendmailAddrs(oneDelivery(t, fake).Message.Bcc); !slices.Equal(got, []string{"hidden@company.com"}) {
		t.Errorf("bccRecipients = %v", got)
	}
	if code, out := sendmail(closedPort(t)); code != exTempFail {
		t.Errorf("against a stopped relay: exit %d, want %d\n%s", code, exTempFail, out)
	}
}
