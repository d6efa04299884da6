package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/testlog"
	"github.com/graphrelay/graphrelay/queue"
)

// appCert is an app registration certificate generated for a test.
type appCert struct {
	cert     *x509.Certificate
	key      *rsa.PrivateKey
	certFile string // PEM certificate
	keyFile  string // PEM PKCS#8 key
}

func newAppCert(t *testing.T, cn string) *appCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	c := &appCert{cert: cert, key: key, certFile: filepath.Join(dir, "app.crt"), keyFile: filepath.Join(dir, "app.key")}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	return c
}

// runningRelay is a running App wired to a fake tenant.
type runningRelay struct {
	app  *App
	addr string
	// logs is this relay's own log: a failure shows its last lines
	// and the file holding the rest.
	logs *testlog.Log
	cfg  *config.Config
}

// fakeConfig returns a configuration pointing at fake, with the given
// mailboxes allowed and the first one as default.
func fakeConfig(fake *graphtest.Server, mailboxes ...string) *config.Config {
	cfg := config.Default()
	cfg.Graph.TenantID = fake.TenantID()
	cfg.Graph.ClientID = fake.ClientID()
	cfg.Graph.AuthorityURL = fake.AuthorityURL()
	cfg.Graph.GraphURL = fake.GraphURL()
	cfg.Graph.Timeout = config.Duration(10 * time.Second)
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	// Many Apps run in one test process; each gets its own admin port.
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.SMTP.ShutdownTimeout = config.Duration(5 * time.Second)
	// These tests assert synchronous outcomes (4xx/5xx at DATA); the queue
	// tests set queue mode themselves.
	cfg.Delivery.Mode = config.ModeDirect
	cfg.Mailboxes = nil
	for _, m := range mailboxes {
		addr, id, _ := strings.Cut(m, "=")
		cfg.Mailboxes = append(cfg.Mailboxes, config.Mailbox{Address: addr, ID: id})
	}
	cfg.DefaultMailbox = cfg.Mailboxes[0].Address
	return cfg
}

// startRelay validates cfg as Load would, then starts the App with the
// given HTTP client (which trusts the fake's CA).
func startRelay(t *testing.T, cfg *config.Config, fake *graphtest.Server) *runningRelay {
	t.Helper()
	return startRelayWithClient(t, cfg, fake.HTTPClient())
}

// startRelayWithClient starts the App with hc for Entra and Graph; hc is
// nil for dry-run.
func startRelayWithClient(t *testing.T, cfg *config.Config, hc *http.Client) *runningRelay {
	t.Helper()
	return startApp(t, cfg, hc, nil)
}

// startRelayOnFS starts the App with its spool written through fsys.
func startRelayOnFS(t *testing.T, cfg *config.Config, fake *graphtest.Server, fsys queue.FS) *runningRelay {
	t.Helper()
	return startApp(t, cfg, fake.HTTPClient(), fsys)
}

func startApp(t *testing.T, cfg *config.Config, hc *http.Client, fsys queue.FS) *runningRelay {
	t.Helper()
	if cfg.Queue.Dir == config.Default().Queue.Dir {
		// The default, ./spool, is the package's source directory:
		// direct mode stages each message under it, and tests running
		// in parallel would share it.
		cfg.Queue.Dir = filepath.Join(t.TempDir(), "spool")
	}
	if errs := config.Validate(cfg); len(errs) > 0 {
		t.Fatalf("test configuration invalid: %v", errs)
	}
	logs := testlog.New(t, "relay log")
	app := NewApp(cfg, logs.Logger())
	app.HTTPClient = hc
	app.SpoolFS = fsys
	ctx, cancel := context.WithCancel(context.Background())
	if err := app.Start(ctx); err != nil {
		cancel()
		t.Fatalf("start: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		app.Close()
		cancel()
	})
	return &runningRelay{app: app, addr: app.Addrs()["test"], logs: logs, cfg: cfg}
}

// smtpReply is the final reply to a transaction.
type smtpReply struct {
	code int
	msg  string
}

// sendNetSMTP sends raw with Go's net/smtp client and returns the reply to
// the end of DATA (or to the first refused command).
func sendNetSMTP(t *testing.T, addr, from string, rcpts []string, raw string) smtpReply {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("printer.lan"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail(from); err != nil {
		return replyOf(t, err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return replyOf(t, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return replyOf(t, err)
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		t.Fatalf("write DATA: %v", err)
	}
	if err := w.Close(); err != nil {
		return replyOf(t, err)
	}
	c.Quit()
	// net/smtp hides the 250 text; the daemon's id is in the log instead.
	return smtpReply{code: 250}
}

func replyOf(t *testing.T, err error) smtpReply {
	t.Helper()
	var te *textproto.Error
	if !errors.As(err, &te) {
		t.Fatalf("unexpected client error: %v", err)
	}
	return smtpReply{code: te.Code, msg: te.Msg}
}

// requireClient finds a real client program or skips; in CI
// (GRAPHRELAY_REQUIRE_CLIENTS=1) a missing client fails the test.
func requireClient(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("GRAPHRELAY_REQUIRE_CLIENTS") != "" {
			t.Fatalf("%s is required (install it as .ci/run does): %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// certRelay starts the daemon against a fake tenant that trusts a fresh
// app certificate, with one allowed mailbox, alerts@company.com, which is
// also the default; mutate adjusts the configuration before start.
func certRelay(t *testing.T, mutate func(*config.Config)) (*runningRelay, *graphtest.Server) {
	t.Helper()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	if mutate != nil {
		mutate(cfg)
	}
	return startRelay(t, cfg, fake), fake
}

// noSyncFS is the real filesystem without fsync: for tests that spool
// thousands of messages and whose subject is not durability (the kill -9
// and disk tests keep the real one), where each fsync would otherwise set
// the pace on a busy disk.
type noSyncFS struct{ queue.OSFS }

func (noSyncFS) SyncDir(string) error { return nil }

func (noSyncFS) Create(path string) (queue.File, error) {
	return noSync(queue.OSFS{}.Create(path))
}

func (noSyncFS) Reuse(path string, truncate bool) (queue.File, error) {
	return noSync(queue.OSFS{}.Reuse(path, truncate))
}

func (noSyncFS) Append(path string) (queue.File, error) {
	return noSync(queue.OSFS{}.Append(path))
}

func noSync(f queue.File, err error) (queue.File, error) {
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ queue.File }

func (noSyncFile) Sync() error { return nil }
