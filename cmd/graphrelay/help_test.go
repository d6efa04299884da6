package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// --help (and -h) exits 0 with the usage on every command, as it did for
// some and not for serve and health.
func TestHelpExitsZeroEverywhere(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"health", "--help"}, {"check", "--help"},
		{"queue", "--help"}, {"queue", "list", "--help"}, {"queue", "retry", "-h"}, {"keygen", "--help"},
		{"passwd", "--help"}, {"sendmail", "--help"},
	} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != 0 {
			t.Errorf("graphrelay %s exited %d, want 0\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		if !strings.Contains(strings.ToLower(out.String()+errOut.String()), "usage") && !strings.Contains(out.String()+errOut.String(), "-config") {
			t.Errorf("graphrelay %s printed no usage: %q", strings.Join(args, " "), out.String()+errOut.String())
		}
	}
	// A bad flag is still a usage error.
	var out, errOut bytes.Buffer
	if code := run([]string{"health", "--no-such-flag"}, &out, &errOut); code != 2 {
		t.Errorf("health --no-such-flag exited %d, want 2", code)
	}
}

// health without a configuration says which address it asked and how to
// give it the right one.
func TestHealthWithoutConfigNamesConfigFlag(t *testing.T) {
	t.Setenv("GRAPHRELAY_CONFIG", "")
	ln, err := net.Listen("tcp", "127.0.0.1:8025")
	if err == nil {
		// Nothing listens on the default admin port; keep it so during the
		// test. (If something else holds it, the test cannot tell.)
		ln.Close()
	} else {
		t.Skip("127.0.0.1:8025 is in use on this machine")
	}
	var out, errOut bytes.Buffer
	if code := healthCmd(nil, &out, &errOut); code != 1 {
		t.Fatalf("health exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"127.0.0.1:8025", "--config", "GRAPHRELAY_CONFIG"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("health without a configuration says %q; want it to mention %s", errOut.String(), want)
		}
	}
	// With a configuration that cannot be loaded, the error is the
	// configuration's, not a guess at the default address.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("smtp: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := healthCmd([]string{"--config", bad}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), bad) {
		t.Errorf("health with a broken configuration = %d: %s", code, errOut.String())
	}
}

// sendmail that found no configuration says so when the built-in listener
// does not answer.
func TestSendmailWithoutConfigNamesConfigFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:2525")
	if err != nil {
		t.Skip("127.0.0.1:2525 is in use on this machine")
	}
	ln.Close()
	old := sendmailDefaultConfig
	sendmailDefaultConfig = func() string { return filepath.Join(t.TempDir(), "absent.yaml") }
	t.Cleanup(func() { sendmailDefaultConfig = old })
	t.Setenv("GRAPHRELAY_CONFIG", "")
	t.Setenv("GRAPHRELAY_SENDMAIL_SERVER", "")
	var out, errOut bytes.Buffer
	code := sendmailCmd([]string{"ops@company.com"}, strings.NewReader("Subject: x\n\nbody\n"), &out, &errOut)
	if code != 75 {
		t.Fatalf("sendmail exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"127.0.0.1:2525", "--config", "GRAPHRELAY_CONFIG"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("sendmail without a configuration says %q; want it to mention %s", errOut.String(), want)
		}
	}
}

// A TCP health probe connects and closes (often with a reset); the daemon
// must not log a warning for each one.
func TestTCPProbeIsNotWarned(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.ClientSecret = "probe-secret"
	r := startRelay(t, cfg, fake)
	for _, reset := range []bool{false, true, false, true} {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	// A full session after the probes: its log line shows the probes'
	// were written before it.
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, crlf("Subject: m\n\nbody\n")); rep.code != 250 && rep.code != 451 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	if strings.Contains(r.logs.String(), "smtp protocol error") {
		t.Errorf("a TCP probe was logged as a protocol error:\n%s", r.logs.String())
	}
}

// Direct mode stages each message under queue.dir, not in the temporary
// directory, which the shipped container and Kubernetes manifests mount
// read-only: with an unusable TMPDIR, mail still goes out.
func TestDirectModeDoesNotNeedTempDir(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing", "tmp"))
	fake := graphtest.New(t, graphtest.Config{Secrets: []graphtest.Secret{{Value: "direct-secret"}}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.ClientSecret = "direct-secret"
	cfg.Queue.Dir = filepath.Join(t.TempDir(), "spool")
	r := startRelay(t, cfg, fake)
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, crlf("Subject: m\n\nbody\n")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	if len(fake.Deliveries()) != 1 {
		t.Errorf("%d deliveries, want 1", len(fake.Deliveries()))
	}
	// Nothing is left behind in the staging directory.
	if entries, err := os.ReadDir(cfg.DirectStagingDir()); err != nil || len(entries) != 0 {
		t.Errorf("staging directory: %v, %v", entries, err)
	}
}
