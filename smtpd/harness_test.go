package smtpd

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/policy"
)

// recorder is a Deliverer that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []recorded
}

type recorded struct {
	env  envelope.Envelope
	body []byte
}

func (r *recorder) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	b, err := io.ReadAll(msg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, recorded{env: *env, body: b})
	return nil
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.msgs...)
}

func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// testServer runs a Server with one STARTTLS-capable listener on
// 127.0.0.1:0, a rule that relays anything as relay@example.com, and a
// recording Deliverer.
func testServer(t testing.TB, mutate func(*config.Config)) (string, *recorder) {
	t.Helper()
	return testServerWith(t, mutate, nil)
}

// testServerWith is testServer with a last say on the Options (users,
// throttle) after they are built from the configuration.
func testServerWith(t testing.TB, mutate func(*config.Config), mutateOpts func(*Options)) (string, *recorder) {
	t.Helper()
	cfg := config.Default()
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0", TLS: config.TLSStartTLS}}
	cfg.SMTP.MaxMessageBytes = 1 << 20
	// The TLS configuration is built here; this only satisfies validation.
	cfg.TLS.SelfSigned = true
	cfg.SMTP.ReadTimeout = config.Duration(5 * time.Second)
	cfg.Rules = []config.Rule{{Name: "all", Mailbox: "relay@example.com", From: "rewrite", Recipients: []string{"*"}}}
	if mutate != nil {
		mutate(cfg)
	}
	if errs := config.Validate(cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	pol, _, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	opts := Options{SMTP: cfg.SMTP, Auth: cfg.Auth, Hostname: "relay.test", TLS: selfSignedTLS(t),
		Deliverer: rec, Policy: pol, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mutateOpts != nil {
		mutateOpts(&opts)
	}
	srv := New(opts)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return srv.Addrs()["test"], rec
}

// client is a line-level SMTP client that can send anything, including
// what well-behaved clients never would.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	return c
}

// greeted dials and reads the 220 greeting.
func greeted(t testing.TB, addr string) *client {
	c := dial(t, addr)
	if g := c.reply(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole reply; "EOF" when the server closed.
func (c *client) reply() string {
	c.t.Helper()
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if b.Len() == 0 && line == "" {
				return "EOF"
			}
			return b.String() + line
		}
		b.WriteString(line)
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(b.String(), "\r\n")
		}
	}
}

func (c *client) cmd(format string, args ...any) string {
	c.t.Helper()
	c.write(fmt.Sprintf(format, args...) + "\r\n")
	return c.reply()
}

func (c *client) ehlo() string {
	c.t.Helper()
	r := c.cmd("EHLO client.test")
	if !strings.HasPrefix(r, "250") {
		c.t.Fatalf("EHLO: %q", r)
	}
	return r
}

func (c *client) startTLS() {
	c.t.Helper()
	if r := c.cmd("STARTTLS"); !strings.HasPrefix(r, "220") {
		c.t.Fatalf("STARTTLS: %q", r)
	}
	c.startTLSHandshakeOnly()
}

func (c *client) startTLSHandshakeOnly() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func expect(t testing.TB, got, wantPrefix string) {
	t.Helper()
	if !strings.HasPrefix(got, wantPrefix) {
		t.Errorf("reply %q, want %q", got, wantPrefix)
	}
}
