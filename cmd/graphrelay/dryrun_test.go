package main

import (
	"bufio"
	"encoding/json"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// readOutbox returns the requests the dry-run daemon wrote.
func readOutbox(t *testing.T, dir string) []graph.OutboxEntry {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var out []graph.OutboxEntry
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e graph.OutboxEntry
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, e)
	}
	return out
}

func TestDryRunSwaksWritesGraphJSON(t *testing.T) {
	t.Parallel()
	swaks := requireClient(t, "swaks")
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.OutboxDir = t.TempDir()
	cfg.Queue.Dir = t.TempDir()
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	if cfg.DryRunReason() == "" {
		t.Fatal("the built-in default must be dry-run")
	}
	r := startRelayWithClient(t, cfg, nil)
	host, port, _ := strings.Cut(r.addr, ":")
	out, err := exec.Command(swaks, "--server", host, "--port", port,
		"--from", "scanner@printer.lan", "--to", "alice@example.com,bob@example.com",
		"--header", "Subject: =?ISO-8859-1?Q?Caf=E9?=", "--header", "To: Alice <alice@example.com>",
		"--body", "Dry-run body").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// In queue mode (the default) delivery follows the 250 within
	// milliseconds; wait for it rather than assume it.
	var entries []graph.OutboxEntry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if entries = readOutbox(t, cfg.OutboxDir); len(entries) > 0 {
			break
		}
	}
	if len(entries) != 1 {
		t.Fatalf("outbox holds %d entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Mailbox != "relay@example.com" || e.Method != "POST" || !strings.HasSuffix(e.URL, "/v1.0/users/relay@example.com/sendMail") || e.ContentType != "application/json" {
		t.Errorf("entry = %+v", e)
	}
	var req graph.SendMailRequest
	if err := json.Unmarshal(e.Body, &req); err != nil {
		t.Fatalf("outbox body is not a sendMail request: %v", err)
	}
	m := req.Message
	if m.Subject != "Café" || m.Body.ContentType != graph.BodyText || !strings.Contains(m.Body.Content, "Dry-run body") {
		t.Errorf("message = %+v", m)
	}
	if len(m.ToRecipients) != 1 || m.ToRecipients[0].EmailAddress.Name != "Alice" ||
		len(m.BccRecipients) != 1 || m.BccRecipients[0].EmailAddress.Address != "bob@example.com" {
		t.Errorf("recipients to=%+v bcc=%+v", m.ToRecipients, m.BccRecipients)
	}
	// The line is written after the file, so a busy machine can show the
	// file first: wait for it (the minute only ends a hang).
	e2etest.WaitFor(t, time.Minute, "the outbox path logged", func() bool {
		return strings.Contains(r.logs.String(), "dry-run: wrote the Graph request")
	})
	// The line names the message, as the accepted line does.
	id := regexp.MustCompile(`msg="message accepted".* id=(\S+)`).FindStringSubmatch(r.logs.String())
	if id == nil || !regexp.MustCompile(`msg="dry-run: wrote the Graph request[^"]*" id=`+regexp.QuoteMeta(id[1])+` `).MatchString(r.logs.String()) {
		t.Errorf("the dry-run line does not carry the message id:\n%s", r.logs.String())
	}
}

// TestServeBinaryGracefulShutdown runs the README's first command as a
// real process: dry-run by default, a message accepted, then SIGTERM with
// an idle client still connected, which must not hold the stop until the
// shutdown deadline.
func TestServeBinaryGracefulShutdown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := e2etest.Binary(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GRAPHRELAY_SMTP_LISTENERS=127.0.0.1:0", "GRAPHRELAY_ADMIN_LISTEN=127.0.0.1:0", "GRAPHRELAY_OUTBOX_DIR="+filepath.Join(dir, "outbox"),
		"GRAPHRELAY_QUEUE_DIR="+filepath.Join(dir, "spool"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	addrRE := regexp.MustCompile(`smtp listener ready.*addr=(\S+)`)
	var addr string
	var seen []string
	// The deadlines below only guard against a hang.
	deadline := time.After(60 * time.Second)
	for addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited early:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if m := addrRE.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case <-deadline:
			t.Fatalf("no listener within 60s:\n%s", strings.Join(seen, "\n"))
		}
	}
	if rep := sendNetSMTP(t, addr, "cron@host.lan", []string{"root@example.com"}, crlf("Subject: cron\n\nbackup done\n")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	// Queue mode delivers after the 250; wait for the outbox entry so the
	// stop below tests shutdown, not a race with delivery.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(readOutbox(t, filepath.Join(dir, "outbox"))) > 0 {
			break
		}
	}
	idle, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.Hello("printer.lan"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Wait closes the stderr pipe once the process has exited, which
	// can drop the last lines ("stopped") before the reader has them; so
	// the rest of the log is read to its EOF first, then Wait is called.
	rest := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		var more []string
		for l := range lines {
			more = append(more, l)
		}
		rest <- more
		done <- cmd.Wait()
	}()
	budget := config.Default().SMTP.ShutdownTimeout.D()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(budget + 10*time.Second):
		t.Fatalf("daemon did not stop within smtp.shutdown_timeout (%s) of SIGTERM", budget)
	}
	seen = append(seen, <-rest...)
	all := strings.Join(seen, "\n")
	for _, want := range []string{"dry-run mode", "message accepted", "shutting down", "stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
	// The idle session was closed at once, so nothing waited for the
	// deadline, and no request was cut off.
	for _, bad := range []string{"still open at the shutdown deadline", "aborting them"} {
		if strings.Contains(all, bad) {
			t.Errorf("log has %q:\n%s", bad, all)
		}
	}
	if n := len(readOutbox(t, filepath.Join(dir, "outbox"))); n != 1 {
		t.Errorf("outbox entries = %d, want 1", n)
	}
}

// The README's "Try it first": the built-in defaults accept the example's
// recipient at example.com and refuse another domain with 550 5.7.1, as the
// README explains; the log line says why.
func TestDryRunDefaultsLimitRecipientsToExampleCom(t *testing.T) {
	t.Parallel()
	swaks := requireClient(t, "swaks")
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.OutboxDir = t.TempDir()
	cfg.Queue.Dir = t.TempDir()
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	r := startRelayWithClient(t, cfg, nil)
	host, port, _ := strings.Cut(r.addr, ":")
	// The README's command, on this test's port.
	if out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "scanner@printer.lan",
		"--to", "you@example.com", "--body", "hello").CombinedOutput(); err != nil {
		t.Fatalf("the README's swaks command: %v\n%s", err, out)
	}
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "scanner@printer.lan",
		"--to", "you@gmail.com", "--body", "hello").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "<** 550 5.7.1 Relay not permitted") {
		t.Errorf("another domain: %v\n%s", err, out)
	}
	if !strings.Contains(r.logs.String(), "without rules, only the mailboxes' own domains are allowed") {
		t.Errorf("the refusal's log line does not say why:\n%s", r.logs.String())
	}
}
