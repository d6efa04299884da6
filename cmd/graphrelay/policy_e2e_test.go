package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// writeServerCert writes a self-signed server certificate for 127.0.0.1
// and returns its files and SHA-256 fingerprint.
func writeServerCert(t *testing.T, dir, cn string) (certFile, keyFile, fingerprint string) {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	// Write through temporary names so a watcher never sees half a pair.
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	sum := sha256.Sum256(der)
	return certFile, keyFile, hex.EncodeToString(sum[:])
}

const nasPassword = "n4s-Pa55word!"

// policyRelay starts a relay with the listeners and rules an admin would
// write for a LAN: STARTTLS submission and implicit TLS with AUTH
// required, a scanner network without AUTH, and a listener whose networks
// exclude loopback.
func policyRelay(t *testing.T, mutate func(*config.Config)) (*runningRelay, *graphtest.Server) {
	t.Helper()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com", "scans@company.com", "ups@company.com")
	cfg.DefaultMailbox = ""
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	cfg.TLS.CertFile, cfg.TLS.KeyFile, _ = writeServerCert(t, t.TempDir(), "relay.company.test")
	loop := []string{"127.0.0.0/8"}
	// 0.0.0.0 makes these listeners non-loopback, so AUTH in clear text is
	// refused as it would be on a LAN; their networks still admit only
	// loopback clients, and the tests only ever connect to 127.0.0.1.
	cfg.SMTP.Listeners = []config.Listener{
		{Name: "submission", Address: "0.0.0.0:0", TLS: "starttls", Auth: "required", Networks: loop},
		{Name: "smtps", Address: "0.0.0.0:0", TLS: "implicit", Auth: "required", Networks: loop},
		{Name: "scanners", Address: "127.0.0.1:0", Networks: loop},
		{Name: "vlan", Address: "127.0.0.1:0", Networks: []string{"10.20.0.0/16"}},
	}
	// The daemon verifies any bcrypt cost; the minimum keeps each AUTH
	// from costing seconds under the race detector.
	hash, err := bcrypt.GenerateFromPassword([]byte(nasPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []config.User{{Name: "nas", PasswordHash: string(hash)}, {Name: "ups", PasswordHash: string(hash)}}
	cfg.Auth.FailureDelay = config.Duration(10 * time.Millisecond)
	cfg.Rules = []config.Rule{
		{Name: "nas", AuthUser: "nas", Mailbox: "alerts@company.com", From: "rewrite", Recipients: []string{"company.com"}},
		{Name: "ups", AuthUser: "ups", Mailbox: "ups@company.com", From: "keep"},
		{Name: "scanners", Listener: "scanners", Networks: []string{"127.0.0.0/8"}, Mailbox: "scans@company.com", From: "rewrite", Recipients: []string{"company.com"}},
	}
	if mutate != nil {
		mutate(cfg)
	}
	config.Validate(cfg)
	r := startRelay(t, cfg, fake)
	return r, fake
}

func port(t *testing.T, r *runningRelay, listener string) string {
	_, p, err := net.SplitHostPort(r.app.Addrs()[listener])
	if err != nil {
		t.Fatalf("listener %s: %v", listener, err)
	}
	return p
}

func nasMessage(replyTo string) string {
	m := "From: NAS box <nas@nas.lan>\nTo: ops@company.com\nSubject: RAID degraded\n"
	if replyTo != "" {
		m += "Reply-To: " + replyTo + "\n"
	}
	return crlf(m + "\nDisk 3 failed.\n")
}

func TestPolicyAuthWithRealClients(t *testing.T) {
	t.Parallel()
	swaks := requireClient(t, "swaks")
	py := requireClient(t, "python3")
	r, fake := policyRelay(t, nil)
	msgFile := filepath.Join(t.TempDir(), "nas.eml")
	os.WriteFile(msgFile, []byte(nasMessage("")), 0o644)

	for _, tc := range []struct{ name, listener, mech string }{
		{"swaks STARTTLS PLAIN", "submission", "PLAIN"},
		{"swaks STARTTLS LOGIN", "submission", "LOGIN"},
		{"swaks implicit TLS PLAIN", "smtps", "PLAIN"},
		{"swaks implicit TLS LOGIN", "smtps", "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Reset()
			tlsFlag := "-tls"
			if tc.listener == "smtps" {
				tlsFlag = "--tls-on-connect"
			}
			out, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", port(t, r, tc.listener), tlsFlag,
				"--auth", tc.mech, "--auth-user", "nas", "--auth-password", nasPassword,
				"--from", "nas@nas.lan", "--to", "ops@company.com", "--data", msgFile).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "235 2.0.0") {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			checkRewritten(t, fake, "nas@nas.lan")
		})
	}
	for _, tc := range []struct{ name, listener string }{{"smtplib STARTTLS", "submission"}, {"smtplib SMTP_SSL", "smtps"}} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Reset()
			script := `import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
port, implicit = int(sys.argv[1]), sys.argv[2] == "smtps"
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx) if implicit else smtplib.SMTP("127.0.0.1", port)
if not implicit:
    s.starttls(context=ctx)
s.login("nas", sys.argv[3])
s.sendmail("nas@nas.lan", ["ops@company.com"], open(sys.argv[4], "rb").read())
s.quit()
`
			out, err := exec.Command(py, "-c", script, port(t, r, tc.listener), tc.listener, nasPassword, msgFile).CombinedOutput()
			if err != nil {
				t.Fatalf("smtplib: %v\n%s", err, out)
			}
			checkRewritten(t, fake, "nas@nas.lan")
		})
	}
	t.Run("user name in another case matches the rule", func(t *testing.T) {
		fake.Reset()
		out, err := exec.Command(swaks, "--server", "127.0.0.1", "--port", port(t, r, "submission"), "-tls",
			"--auth", "LOGIN", "--auth-user", "NAS", "--auth-password", nasPassword,
			"--from", "nas@nas.lan", "--to", "ops@company.com", "--data", msgFile).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks as NAS: %v\n%s", err, out)
		}
		checkRewritten(t, fake, "nas@nas.lan")
	})
	t.Run("wrong password", func(t *testing.T) {
		out, _ := exec.Command(swaks, "--server", "127.0.0.1", "--port", port(t, r, "submission"), "-tls",
			"--auth", "LOGIN", "--auth-user", "nas", "--auth-password", "wrong",
			"--from", "nas@nas.lan", "--to", "ops@company.com").CombinedOutput()
		if !strings.Contains(string(out), "535 5.7.8") {
			t.Errorf("wrong password did not get 535 5.7.8:\n%s", out)
		}
		if strings.Contains(r.logs.String(), "wrong\"") || strings.Contains(r.logs.String(), nasPassword) {
			t.Error("a password appears in the log")
		}
	})
	t.Run("AUTH over plain text refused", func(t *testing.T) {
		c := dialSMTP(t, "127.0.0.1:"+port(t, r, "submission"))
		ehlo := c.cmd(t, "EHLO nas.lan")
		if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("EHLO before STARTTLS must offer STARTTLS and not AUTH:\n%s", ehlo)
		}
		if got := c.cmd(t, "AUTH PLAIN AG5hcwBuNHMtUGE1NXdvcmQh"); !strings.HasPrefix(got, "5") {
			t.Errorf("AUTH in clear text answered %q", got)
		}
		if got := c.cmd(t, "MAIL FROM:<nas@nas.lan>"); !strings.HasPrefix(got, "530 5.7.0") {
			t.Errorf("MAIL without AUTH answered %q, want 530 5.7.0", got)
		}
	})
}

// checkRewritten asserts the single delivery was sent as alerts@ with the
// NAS's name kept and its address in Reply-To.
func checkRewritten(t *testing.T, fake *graphtest.Server, orig string) {
	t.Helper()
	ds := fake.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d", len(ds))
	}
	m := ds[0].Message
	if ds[0].Mailbox != "alerts@company.com" || m.From == nil || m.From.Address != "alerts@company.com" || m.From.Name != "NAS box (nas at nas.lan)" {
		t.Errorf("sent as %s with from %+v", ds[0].Mailbox, m.From)
	}
	if len(m.ReplyTo) != 1 || m.ReplyTo[0].Address != orig {
		t.Errorf("replyTo = %+v, want %s", m.ReplyTo, orig)
	}
}

func TestPolicyRefusals(t *testing.T) {
	t.Parallel()
	r, fake := policyRelay(t, nil)
	scanners := r.app.Addrs()["scanners"]
	t.Run("scanner: From rewritten, existing Reply-To kept", func(t *testing.T) {
		fake.Reset()
		raw := crlf("From: \"MFP 2nd floor\" <scanner@printer.local>\nReply-To: helpdesk@company.com\nTo: alice@company.com\nSubject: Scan\n\nscan\n")
		if rep := sendNetSMTP(t, scanners, "scanner@printer.local", []string{"alice@company.com"}, raw); rep.code != 250 {
			t.Fatalf("reply %d %s", rep.code, rep.msg)
		}
		m := fake.Deliveries()[0].Message
		if m.From == nil || m.From.Address != "scans@company.com" || m.From.Name != "MFP 2nd floor (scanner at printer.local)" {
			t.Errorf("from = %+v", m.From)
		}
		if len(m.ReplyTo) != 1 || m.ReplyTo[0].Address != "helpdesk@company.com" {
			t.Errorf("the message's own Reply-To must be kept: %+v", m.ReplyTo)
		}
	})
	t.Run("recipient outside the allowed domains", func(t *testing.T) {
		rep := sendNetSMTP(t, scanners, "scanner@printer.local", []string{"mallory@evil.example"}, crlf("Subject: x\n\nx\n"))
		if rep.code != 550 || !strings.HasPrefix(rep.msg, "5.7.1 Relay not permitted") {
			t.Errorf("reply %d %s", rep.code, rep.msg)
		}
	})
	t.Run("From not allowed by a keep rule", func(t *testing.T) {
		c := dialSMTP(t, "127.0.0.1:"+port(t, r, "submission"))
		c.cmd(t, "EHLO ups.lan")
		c.startTLS(t)
		c.cmd(t, "EHLO ups.lan")
		if got := c.cmd(t, "AUTH PLAIN "+plainAuth("ups", nasPassword)); !strings.HasPrefix(got, "235") {
			t.Fatalf("AUTH: %s", got)
		}
		c.cmd(t, "MAIL FROM:<ups@company.com>")
		c.cmd(t, "RCPT TO:<ops@company.com>")
		c.cmd(t, "DATA")
		got := c.cmd(t, strings.TrimSuffix(crlf("From: CEO <ceo@company.com>\nSubject: wire money\n\nnow\n.\n"), "\r\n"))
		if !strings.HasPrefix(got, "550 5.7.1 From not permitted") {
			t.Errorf("foreign From answered %q", got)
		}
	})
	t.Run("client network not allowed", func(t *testing.T) {
		conn, err := net.Dial("tcp", r.app.Addrs()["vlan"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if !strings.HasPrefix(line, "554 5.7.1 Client 127.0.0.1 is not permitted") {
			t.Errorf("greeting = %q", line)
		}
		if !strings.Contains(r.logs.String(), "client network not allowed on this listener") {
			t.Error("the refusal is not logged with its cause")
		}
	})
	if n := len(fake.Deliveries()); n != 1 {
		t.Errorf("deliveries = %d; refused messages must not be sent", n)
	}
}

func TestBruteForceThrottled(t *testing.T) {
	t.Parallel()
	r, _ := policyRelay(t, func(cfg *config.Config) {
		cfg.Auth.MaxFailures, cfg.Auth.Window, cfg.Auth.Lockout = 3, config.Duration(time.Minute), config.Duration(time.Minute)
	})
	addr := "127.0.0.1:" + port(t, r, "submission")
	c := dialSMTP(t, addr)
	c.cmd(t, "EHLO attacker")
	c.startTLS(t)
	c.cmd(t, "EHLO attacker")
	for i := 0; i < 3; i++ {
		if got := c.cmd(t, "AUTH PLAIN "+plainAuth("nas", fmt.Sprintf("guess%d", i))); !strings.HasPrefix(got, "535 5.7.8") {
			t.Fatalf("attempt %d answered %q", i, got)
		}
	}
	// Even the right password is refused during the lockout.
	if got := c.cmd(t, "AUTH PLAIN "+plainAuth("nas", nasPassword)); !strings.HasPrefix(got, "454 4.7.0") {
		t.Errorf("AUTH during lockout answered %q, want 454 4.7.0", got)
	}
	// A new connection is refused at once.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.HasPrefix(line, "421 4.7.0 Too many authentication failures") {
		t.Errorf("new connection during lockout got %q", line)
	}
	if !strings.Contains(r.logs.String(), "brute-force protection: client locked out") {
		t.Error("the lockout is not logged")
	}
}

func TestTLSCertificateReload(t *testing.T) {
	openssl := requireClient(t, "openssl")
	dir := t.TempDir()
	r, _ := policyRelay(t, func(cfg *config.Config) {
		var fp string
		cfg.TLS.CertFile, cfg.TLS.KeyFile, fp = writeServerCert(t, dir, "first.company.test")
		t.Setenv("FIRST_FP", fp)
	})
	served := func() string {
		out, _ := exec.Command(openssl, "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:"+port(t, r, "submission"), "-servername", "localhost").CombinedOutput()
		block, _ := pem.Decode(out[strings.Index(string(out), "-----BEGIN CERTIFICATE-----"):])
		if block == nil {
			t.Fatalf("openssl s_client showed no certificate:\n%s", out)
		}
		sum := sha256.Sum256(block.Bytes)
		return hex.EncodeToString(sum[:])
	}
	if got := served(); got != os.Getenv("FIRST_FP") {
		t.Fatalf("served %s, want the first certificate %s", got, os.Getenv("FIRST_FP"))
	}
	_, _, second := writeServerCert(t, dir, "second.company.test")
	r.app.Reload() // what SIGHUP does
	if got := served(); got != second {
		t.Errorf("after reload served %s, want the renewed certificate %s", got, second)
	}
	// A half-written renewal must not replace a good certificate.
	os.WriteFile(r.cfg.TLS.KeyFile, []byte("garbage"), 0o600)
	r.app.Reload()
	if got := served(); got != second {
		t.Errorf("a broken key replaced the served certificate")
	}
	if !strings.Contains(r.logs.String(), "TLS certificate reload failed") {
		t.Error("the failed reload is not logged")
	}
}

// TestNoOpenRelay runs the probes of nmap's smtp-open-relay script against
// the built-in default configuration (dry-run, loopback listener): every
// combination of sender and relay-hack recipient must be refused.
func TestNoOpenRelay(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.OutboxDir = t.TempDir()
	cfg.Queue.Dir = t.TempDir()
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	config.Validate(cfg)
	r := startRelayWithClient(t, cfg, nil)
	senders := []string{"<>", "<antispam@nmap.scanme.org>", "<antispam@[127.0.0.1]>", "<antispam@example.com>", "<relay@example.com>"}
	rcpts := []string{
		"<relaytest@nmap.scanme.org>",
		"<relaytest%nmap.scanme.org@[127.0.0.1]>",
		"<relaytest%nmap.scanme.org@example.com>",
		"<\"relaytest@nmap.scanme.org\">",
		"<\"relaytest%nmap.scanme.org\">",
		"<relaytest@nmap.scanme.org@[127.0.0.1]>",
		"<\"relaytest@nmap.scanme.org\"@[127.0.0.1]>",
		"<relaytest@nmap.scanme.org@example.com>",
		"<@[127.0.0.1]:relaytest@nmap.scanme.org>",
		"<@example.com:relaytest@nmap.scanme.org>",
		"<nmap.scanme.org!relaytest>",
		"<nmap.scanme.org!relaytest@[127.0.0.1]>",
		"<nmap.scanme.org!relaytest@example.com>",
		"<relaytest%nmap.scanme.org>",
	}
	for _, from := range senders {
		c := dialSMTP(t, r.addr)
		c.cmd(t, "EHLO nmap.scanme.org")
		if got := c.cmd(t, "MAIL FROM:"+from); !strings.HasPrefix(got, "250") {
			c.close()
			continue // refusing the sender is also fine
		}
		for _, rcpt := range rcpts {
			if got := c.cmd(t, "RCPT TO:"+rcpt); strings.HasPrefix(got, "2") {
				t.Errorf("open relay: MAIL FROM:%s RCPT TO:%s answered %q", from, rcpt, got)
			}
		}
		c.close()
	}
	// The relay still delivers inside its own domain.
	if rep := sendNetSMTP(t, r.addr, "cron@host.lan", []string{"ops@example.com"}, crlf("Subject: x\n\nx\n")); rep.code != 250 {
		t.Errorf("internal delivery refused: %d %s", rep.code, rep.msg)
	}
}

// rawSMTP is a line-level client for exchanges net/smtp cannot express.
type rawSMTP struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) *rawSMTP {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawSMTP{conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(c.close)
	if greet := c.read(t); !strings.HasPrefix(greet, "220") {
		t.Fatalf("greeting %q", greet)
	}
	return c
}

func (c *rawSMTP) close() { c.conn.Close() }

// read returns a whole (possibly multi-line) reply.
func (c *rawSMTP) read(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read reply: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(b.String(), "\r\n")
		}
	}
}

func (c *rawSMTP) cmd(t *testing.T, line string) string {
	t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		t.Fatal(err)
	}
	return c.read(t)
}

func (c *rawSMTP) startTLS(t *testing.T) {
	t.Helper()
	if got := c.cmd(t, "STARTTLS"); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS: %s", got)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func plainAuth(user, pass string) string {
	return b64("\x00" + user + "\x00" + pass)
}
