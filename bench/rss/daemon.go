package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

const benchSecret = "bench~secret"

// runDaemon starts graphrelay serve against the fake in delivery mode
// (direct or queue), sends the message over SMTP, waits for the delivery,
// and reads the daemon's memory before and after.
func runDaemon(fake *graphtest.Server, dir, caFile, msgFile, bin, delivery string) (result, error) {
	if bin == "" {
		bin = filepath.Join(dir, "graphrelay")
		build := exec.Command("go", "build", "-o", bin, "./cmd/graphrelay")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return result{}, fmt.Errorf("go build ./cmd/graphrelay (run from the repository root): %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(benchSecret+"\n"), 0o600); err != nil {
		return result{}, err
	}
	cfg := fmt.Sprintf(`log:
  level: info
smtp:
  listeners:
    - name: bench
      address: %s
graph:
  tenant_id: %s
  client_id: %s
  authority_url: %s
  graph_url: %s
  client_secret_file: %s
  ca_file: %s
  timeout: 120s
mailboxes:
  - address: %s
default_mailbox: %s
delivery:
  mode: %s
queue:
  dir: %s
`, addr, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), secretFile, caFile, mailbox, mailbox,
		delivery, filepath.Join(dir, "spool"))
	cfgFile := filepath.Join(dir, "graphrelay.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return result{}, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitListening(addr, cmd); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, tail(logFile.Name()))
	}
	var res result
	if res.idle, err = readMemory(cmd.Process.Pid); err != nil {
		return result{}, err
	}
	res.outcome = sendSMTP(addr, msgFile)
	if delivery == "queue" && strings.HasPrefix(res.outcome, "SMTP 250") {
		// The 250 came after spooling; the worker sends afterwards.
		if len(fake.WaitDeliveries(1, 5*time.Minute)) == 0 {
			res.outcome += "; no delivery within 5 minutes"
		} else {
			res.outcome = "SMTP 250 (spooled), then delivered by the queue worker"
		}
	}
	if res.after, err = readMemory(cmd.Process.Pid); err != nil {
		return result{}, err
	}
	if !strings.HasPrefix(res.outcome, "SMTP 250") {
		res.outcome += "\n" + tail(logFile.Name())
	}
	return res, nil
}

// freeAddr picks a loopback port for the daemon's listener.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitListening waits up to 20 s for the daemon to accept connections.
func waitListening(addr string, cmd *exec.Cmd) error {
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the daemon did not start listening")
}

// sendSMTP sends the message file and returns the final reply.
func sendSMTP(addr, msgFile string) string {
	c, err := smtp.Dial(addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	steps := []func() error{
		func() error { return c.Hello("scanner.lan") },
		func() error { return c.Mail("scanner@mfp.lan") },
		func() error { return c.Rcpt("alice@company.com") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return reply(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return reply(err)
	}
	f, err := os.Open(msgFile)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return "write DATA: " + err.Error()
	}
	if err := w.Close(); err != nil {
		return reply(err)
	}
	c.Quit()
	return "SMTP 250"
}

func reply(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Sprintf("SMTP %d %s", te.Code, te.Msg)
	}
	return err.Error()
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "daemon log (last lines):\n  " + strings.Join(lines, "\n  ")
}
