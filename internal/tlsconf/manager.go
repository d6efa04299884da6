// Package tlsconf is the SMTP server's TLS configuration and certificate
// lifecycle: loading the certificate and key from PEM files (or a
// self-signed pair for LAN use), the tls.Config the STARTTLS and implicit-TLS
// listeners share, and reloading on SIGHUP or when the files change, so a
// Let's Encrypt renewal needs no restart.
//
// The tls.Config hands out the current certificate through GetCertificate,
// so a reload takes effect at the next handshake without rebuilding any
// listener, and a failed reload leaves the previous certificate in service.
//
// Old devices, on Go 1.26 (each point is pinned by a test):
//   - tls.min_version 1.0 or 1.1 is enough: the server negotiates TLS 1.0
//     and 1.1 with no GODEBUG, because Config.MinVersion is set explicitly
//     (GODEBUG tls10server=1 only changes the default used when it is 0).
//     Go's default suites then still include ECDHE-RSA with AES-CBC-SHA.
//   - legacy_ciphers adds RSA key exchange and 3DES for this server only,
//     again with no GODEBUG (tlsrsakex and tls3des only govern the default
//     list). Devices that send no elliptic-curve extension need it.
//   - GODEBUG=fips140=on removes TLS 1.0/1.1 and those suites; New then
//     refuses such a configuration rather than fail every handshake.
//   - A TLS 1.2 client offering only SHA-1 signature algorithms is refused
//     since Go 1.25 (RFC 9155), legacy_ciphers or not. Only the
//     process-wide GODEBUG=tlssha1=1 admits it: in the service's
//     environment, or as a //go:debug tlssha1=1 line in package main.
package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// Manager owns the server certificate. It is safe for concurrent use: the
// handshakes read the current certificate without locking while Reload or
// Watch replaces it.
type Manager struct {
	log        *slog.Logger
	certFile   string
	keyFile    string
	minVersion uint16
	suites     []uint16 // nil: Go's defaults

	current atomic.Pointer[loaded]

	// mu serialises Reload and Watch's polls, so a SIGHUP arriving during
	// a poll cannot interleave two reads of half-written files, and
	// applied always describes the files current was read from.
	mu      sync.Mutex
	applied stamp
}

// loaded is one certificate in service, with what the logs show of it.
type loaded struct {
	cert        *tls.Certificate // Leaf is always set
	fingerprint string
}

// New loads the configured certificate, or the self-signed one, and
// prepares the server configuration. See the package documentation.
//
// A certificate file with key_file empty is read as a combined PEM holding
// both, as haproxy and some NAS exports write them.
func New(cfg config.TLS, hostname string, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	minVersion, err := parseMinVersion(cfg.MinVersion)
	if err != nil {
		return nil, err
	}
	// GODEBUG=fips140=on makes crypto/tls drop TLS 1.0/1.1, 3DES and RSA
	// key exchange without an error at configuration time; the printers
	// would only see failed handshakes. Refuse the combination instead.
	if fips140.Enabled() && (minVersion < tls.VersionTLS12 || cfg.LegacyCiphers) {
		return nil, errors.New("tlsconf: FIPS 140-3 mode (GODEBUG fips140) allows only TLS 1.2 and 1.3 with approved suites: set tls.min_version to 1.2 or higher and legacy_ciphers to false, or run without fips140")
	}
	m := &Manager{
		log:        log,
		minVersion: minVersion,
		suites:     cipherSuites(cfg.LegacyCiphers),
	}

	selfSigned := false
	switch {
	case cfg.CertFile != "":
		m.certFile, m.keyFile = cfg.CertFile, cfg.KeyFile
		if m.keyFile == "" {
			m.keyFile = m.certFile
		}
		if cfg.SelfSigned {
			log.Info("tls.cert_file is set; tls.self_signed is ignored", "cert_file", cfg.CertFile)
		}
	case cfg.KeyFile != "":
		return nil, errors.New("tlsconf: tls.key_file is set without tls.cert_file")
	case cfg.SelfSigned:
		m.certFile, m.keyFile, err = ensureSelfSigned(cfg.SelfSignedDir, hostname, log)
		if err != nil {
			return nil, err
		}
		selfSigned = true
	default:
		return nil, errors.New("tlsconf: no certificate: set tls.cert_file and tls.key_file, or tls.self_signed: true for LAN-only use")
	}

	// Stat before reading: a file that changes after the read then differs
	// from applied and Watch picks it up.
	st := statPair(m.certFile, m.keyFile)
	l, err := loadPair(m.certFile, m.keyFile)
	if err != nil {
		return nil, err
	}
	m.current.Store(l)
	m.applied = st
	m.logCert(slog.LevelInfo, "tls certificate loaded", l)

	if selfSigned {
		log.Warn("tls certificate is self-signed: for LAN use only; clients that verify certificates (Go net/smtp tools, sendEmail) will refuse STARTTLS with it, install a CA-issued certificate for those",
			"cert_file", m.certFile, "sha256", l.fingerprint)
	}
	if minVersion < tls.VersionTLS12 {
		log.Warn("tls versions below 1.2 are enabled for old devices", "min_version", versionName(minVersion))
		if _, ok := l.cert.Leaf.PublicKey.(*rsa.PublicKey); !ok {
			log.Warn("the certificate's key is not RSA; TLS 1.0-era devices often support only RSA certificates", "key", keyKind(l.cert.Leaf))
		}
	}
	if cfg.LegacyCiphers {
		log.Warn("legacy tls cipher suites are enabled for old devices (RSA key exchange, 3DES)", "added", suiteNames(legacySuites))
	}
	return m, nil
}

// ServerConfig returns a new *tls.Config for an SMTP listener; each call
// returns its own copy, so a caller may adjust it. Every copy serves the
// Manager's current certificate, reloads included.
func (m *Manager) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   m.minVersion,
		CipherSuites: slices.Clone(m.suites),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.current.Load().cert, nil
		},
	}
}

// Certificate returns the leaf certificate in service.
func (m *Manager) Certificate() *x509.Certificate {
	return m.current.Load().cert.Leaf
}

// Reload re-reads the certificate and key files. On failure the previous
// certificate stays in service and the error says so; the caller logs it.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked()
}

func (m *Manager) reloadLocked() error {
	st := statPair(m.certFile, m.keyFile)
	l, err := loadPair(m.certFile, m.keyFile)
	if err != nil {
		return fmt.Errorf("tlsconf: reload failed, still serving the previous certificate (sha256 %s): %w",
			m.current.Load().fingerprint, err)
	}
	m.current.Store(l)
	m.applied = st
	m.logCert(slog.LevelInfo, "tls certificate reloaded", l)
	return nil
}

// logCert logs what identifies a certificate: never anything of the key.
func (m *Manager) logCert(level slog.Level, msg string, l *loaded) {
	leaf := l.cert.Leaf
	m.log.Log(context.Background(), level, msg,
		"subject", leaf.Subject.String(),
		"dns_names", leaf.DNSNames,
		"issuer", leaf.Issuer.String(),
		"sha256", l.fingerprint,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
		"chain", len(l.cert.Certificate),
	)
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		m.log.Warn("tls certificate has expired; clients that verify it will refuse to connect", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		m.log.Warn("tls certificate is not valid yet; check the clock", "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
}

// loadPair reads a PEM certificate (the leaf first, then any chain, all of
// which is served) and a PEM private key in PKCS#1, PKCS#8 or SEC 1 (EC)
// form, and checks that the key belongs to the leaf. A mismatch is also
// what a renewal caught between writing the key and the certificate looks
// like, so Watch relies on this check.
func loadPair(certFile, keyFile string) (*loaded, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read key: %w", err)
	}
	if encryptedPEM(keyPEM) {
		return nil, fmt.Errorf("tlsconf: %s: the private key is encrypted; graphrelay needs an unencrypted key file (readable by its user only)", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s with %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		// Go 1.23+ fills Leaf unless GODEBUG x509keypairleaf=0.
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsconf: %s: %w", certFile, err)
		}
	}
	return &loaded{cert: &cert, fingerprint: Fingerprint(cert.Leaf)}, nil
}

// encryptedPEM spots the two encrypted key forms, which tls.X509KeyPair
// would only report as "failed to parse private key".
func encryptedPEM(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return true
		}
	}
}

// Fingerprint is the SHA-256 of the certificate's DER, written as
// `openssl x509 -noout -fingerprint -sha256` prints it, so an operator can
// compare the log with a file or pin it in a device.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func keyKind(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", c.PublicKey)
}
