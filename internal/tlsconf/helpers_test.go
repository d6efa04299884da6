package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// testCert is a generated certificate with its key and PEM forms.
type testCert struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

type certOpts struct {
	cn        string
	dnsNames  []string
	key       crypto.Signer // nil: a new RSA 2048 key
	parent    *testCert     // nil: self-signed
	isCA      bool
	notBefore time.Time
	notAfter  time.Time
}

// RSA 2048 generation takes up to a few hundred milliseconds, so the tests
// reuse a small pool of keys, each made at its first use. Consecutive draws
// are distinct keys, which is all a test needs (no test makes more than
// keyPoolSize certificates that must not share a key).
const keyPoolSize = 6

var (
	keyPoolMu   sync.Mutex
	keyPool     [keyPoolSize]*rsa.PrivateKey
	keyPoolNext int
)

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyPoolMu.Lock()
	defer keyPoolMu.Unlock()
	i := keyPoolNext % keyPoolSize
	keyPoolNext++
	if keyPool[i] == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyPool[i] = k
	}
	return keyPool[i]
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCert(t *testing.T, o certOpts) *testCert {
	t.Helper()
	if o.key == nil {
		o.key = newRSAKey(t)
	}
	if o.cn == "" {
		o.cn = "relay.test"
	}
	if o.dnsNames == nil && !o.isCA {
		o.dnsNames = []string{o.cn}
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.cn},
		DNSNames:              o.dnsNames,
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
	}
	if o.isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = nil
	}
	parent, signer := tmpl, o.key
	if o.parent != nil {
		parent, signer = o.parent.cert, o.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, o.key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: o.key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// keyPEM encodes the key in one of the forms found in the field.
func keyPEM(t *testing.T, key crypto.Signer, form string) []byte {
	t.Helper()
	switch form {
	case "pkcs1":
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))})
	case "pkcs8":
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	case "ec":
		der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	case "ec+params":
		// `openssl ecparam -genkey` writes the curve before the key.
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
		return append(params, keyPEM(t, key, "ec")...)
	}
	t.Fatalf("unknown key form %q", form)
	return nil
}

// writeAtomic replaces a file the way certbot and most renewal tools do.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writePair writes a certificate (and its chain) and a PKCS#8 key to
// dir/cert.pem and dir/key.pem and returns the config for them.
func writePair(t *testing.T, dir string, c *testCert, chain ...*testCert) config.TLS {
	t.Helper()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	data := bytes.Clone(c.certPEM)
	for _, ch := range chain {
		data = append(data, ch.certPEM...)
	}
	writeAtomic(t, keyFile, keyPEM(t, c.key, "pkcs8"))
	writeAtomic(t, certFile, data)
	return config.TLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.2"}
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// serve runs a TLS server on loopback with cfg, built once as smtpd builds
// its listeners, that completes the handshake, writes a line and closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(conn, cfg)
				if tc.Handshake() != nil {
					return
				}
				io.WriteString(tc, "220 hello\r\n")
				tc.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with a Go client and returns the connection state.
func dial(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 11)
	if _, err := io.ReadFull(c, line); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

// trusting is a client config that verifies against the given roots.
func trusting(roots ...*testCert) *tls.Config {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r.cert)
	}
	return &tls.Config{RootCAs: pool, ServerName: "relay.test"}
}

// servedFingerprint connects and returns the fingerprint of the leaf the
// server presented.
func servedFingerprint(t *testing.T, addr string) string {
	t.Helper()
	st, err := dial(t, addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return Fingerprint(st.PeerCertificates[0])
}

func newManager(t *testing.T, cfg config.TLS) (*Manager, *logBuffer) {
	t.Helper()
	log, buf := newLogger()
	m, err := New(cfg, "relay.test", log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, buf
}

func mustNotLogKeys(t *testing.T, logs string) {
	t.Helper()
	if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, "-----BEGIN") {
		t.Fatalf("log contains PEM material:\n%s", logs)
	}
}

func timeAgo(hours int) time.Time { return time.Now().Add(-time.Duration(hours) * time.Hour) }
