package tlsconf

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

func TestLoadKeyEncodings(t *testing.T) {
	rsaKey := newRSAKey(t)
	ecKey := newECKey(t)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  crypto.Signer
		form string
	}{
		{"rsa pkcs1", rsaKey, "pkcs1"},
		{"rsa pkcs8", rsaKey, "pkcs8"},
		{"ecdsa sec1", ecKey, "ec"},
		{"ecdsa sec1 with EC PARAMETERS", ecKey, "ec+params"},
		{"ecdsa pkcs8", ecKey, "pkcs8"},
		{"ed25519 pkcs8", edKey, "pkcs8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := makeCert(t, certOpts{key: tc.key})
			certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
			writeAtomic(t, certFile, c.certPEM)
			writeAtomic(t, keyFile, keyPEM(t, tc.key, tc.form))
			m, logs := newManager(t, config.TLS{CertFile: certFile, KeyFile: keyFile})
			if got, want := Fingerprint(m.Certificate()), Fingerprint(c.cert); got != want {
				t.Fatalf("fingerprint %s, want %s", got, want)
			}
			// The certificate is usable for a real handshake, not just parsed.
			addr := serve(t, m.ServerConfig())
			if _, err := dial(t, addr, trusting(c)); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if !strings.Contains(logs.String(), Fingerprint(c.cert)) {
				t.Errorf("load not logged with the fingerprint:\n%s", logs)
			}
			mustNotLogKeys(t, logs.String())
		})
	}
}

func TestLoadCombinedPEM(t *testing.T) {
	dir := t.TempDir()
	c := makeCert(t, certOpts{})
	f := filepath.Join(dir, "both.pem")
	writeAtomic(t, f, append(keyPEM(t, c.key, "pkcs1"), c.certPEM...))
	m, _ := newManager(t, config.TLS{CertFile: f})
	if !m.Certificate().Equal(c.cert) {
		t.Fatal("combined PEM: wrong certificate")
	}
}

// A chain in the certificate file is served, so clients that trust only the
// root can verify through the intermediate.
func TestChainServed(t *testing.T) {
	root := makeCert(t, certOpts{cn: "Test Root", isCA: true})
	inter := makeCert(t, certOpts{cn: "Test Intermediate", isCA: true, parent: root})
	leaf := makeCert(t, certOpts{parent: inter})
	m, _ := newManager(t, writePair(t, t.TempDir(), leaf, inter))
	addr := serve(t, m.ServerConfig())
	st, err := dial(t, addr, trusting(root))
	if err != nil {
		t.Fatalf("handshake trusting only the root: %v", err)
	}
	if len(st.PeerCertificates) != 2 || !st.PeerCertificates[1].Equal(inter.cert) {
		t.Fatalf("served %d certificates, want leaf and intermediate", len(st.PeerCertificates))
	}
	if !m.Certificate().Equal(leaf.cert) {
		t.Fatal("Certificate() is not the leaf")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{cn: "a.test"})
	b := makeCert(t, certOpts{cn: "b.test"})
	aCert, bKey := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.key")
	writeAtomic(t, aCert, a.certPEM)
	writeAtomic(t, bKey, keyPEM(t, b.key, "pkcs8"))

	encrypted := filepath.Join(dir, "enc.key")
	writeAtomic(t, encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	garbage := filepath.Join(dir, "garbage.pem")
	writeAtomic(t, garbage, []byte("not a certificate\n"))

	cases := []struct {
		name string
		cfg  config.TLS
		want string
		is   error
	}{
		{"mismatch", config.TLS{CertFile: aCert, KeyFile: bKey}, "private key does not match public key", nil},
		{"missing cert", config.TLS{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: bKey}, "read certificate", fs.ErrNotExist},
		{"missing key", config.TLS{CertFile: aCert, KeyFile: filepath.Join(dir, "nope.key")}, "read key", fs.ErrNotExist},
		{"encrypted key", config.TLS{CertFile: aCert, KeyFile: encrypted}, "encrypted", nil},
		{"not PEM", config.TLS{CertFile: garbage, KeyFile: bKey}, "PEM", nil},
		{"nothing configured", config.TLS{}, "no certificate", nil},
		{"key without cert", config.TLS{KeyFile: bKey}, "key_file is set without", nil},
		{"bad min version", config.TLS{CertFile: aCert, KeyFile: bKey, MinVersion: "1.4"}, "min_version", nil},
		{"self-signed without dir", config.TLS{SelfSigned: true}, "self_signed_dir", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.cfg, "relay.test", nil)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error", m.Certificate().Subject)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %q is not %v", err, tc.is)
			}
		})
	}
}

func TestFingerprintMatchesOpenSSLFormat(t *testing.T) {
	c := makeCert(t, certOpts{})
	fp := Fingerprint(c.cert)
	if len(fp) != 32*3-1 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Fatalf("fingerprint %q is not AA:BB:... form", fp)
	}
	if fp == Fingerprint(makeCert(t, certOpts{}).cert) {
		t.Fatal("two certificates share a fingerprint")
	}
}

func TestParseMinVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": 0x0303, "1.0": 0x0301, "1.1": 0x0302, "1.2": 0x0303, "1.3": 0x0304} {
		got, err := parseMinVersion(in)
		if err != nil || got != want {
			t.Errorf("parseMinVersion(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, in := range []string{"1", "TLS1.2", "1.4", "ssl3"} {
		if _, err := parseMinVersion(in); err == nil {
			t.Errorf("parseMinVersion(%q) accepted", in)
		}
	}
}

// An expired certificate still loads (LAN devices rarely check), but the
// operator is told.
func TestExpiredCertificateWarns(t *testing.T) {
	c := makeCert(t, certOpts{notBefore: timeAgo(48), notAfter: timeAgo(24)})
	_, logs := newManager(t, writePair(t, t.TempDir(), c))
	if !strings.Contains(logs.String(), "expired") {
		t.Fatalf("no expiry warning:\n%s", logs)
	}
}

func TestECDSACertWithOldTLSWarns(t *testing.T) {
	c := makeCert(t, certOpts{key: newECKey(t)})
	cfg := writePair(t, t.TempDir(), c)
	cfg.MinVersion = "1.0"
	_, logs := newManager(t, cfg)
	if !strings.Contains(logs.String(), "not RSA") {
		t.Fatalf("no warning about an ECDSA certificate with TLS 1.0:\n%s", logs)
	}
	cfg.MinVersion = "1.2"
	_, logs = newManager(t, cfg)
	if strings.Contains(logs.String(), "not RSA") {
		t.Fatalf("ECDSA warning with TLS 1.2:\n%s", logs)
	}
}

func TestKeyKind(t *testing.T) {
	for _, tc := range []struct {
		key  crypto.Signer
		want string
	}{{newRSAKey(t), "RSA 2048"}, {newECKey(t), "ECDSA P-256"}} {
		if got := keyKind(makeCert(t, certOpts{key: tc.key}).cert); got != tc.want {
			t.Errorf("keyKind = %q, want %q", got, tc.want)
		}
	}
}
