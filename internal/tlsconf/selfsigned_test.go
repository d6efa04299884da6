package tlsconf

import (
	"crypto/rsa"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

func TestSelfSignedGeneratedThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls") // does not exist yet
	cfg := config.TLS{SelfSigned: true, SelfSignedDir: dir, MinVersion: "1.2"}
	m1, logs := newManager(t, cfg)
	leaf := m1.Certificate()

	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("key is %s, want RSA 2048", keyKind(leaf))
	}
	if leaf.Subject.CommonName != "relay.test" {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	for _, name := range []string{"relay.test", "localhost"} {
		if !slices.Contains(leaf.DNSNames, name) {
			t.Errorf("SAN DNS names %v lack %q", leaf.DNSNames, name)
		}
	}
	if !hasIP(leaf.IPAddresses, net.IPv4(127, 0, 0, 1)) {
		t.Errorf("SAN IPs %v lack 127.0.0.1", leaf.IPAddresses)
	}
	for _, ip := range machineIPs() {
		if !hasIP(leaf.IPAddresses, ip) {
			t.Errorf("SAN IPs %v lack machine address %v", leaf.IPAddresses, ip)
		}
	}
	if err := leaf.VerifyHostname("relay.test"); err != nil {
		t.Error(err)
	}
	validity := leaf.NotAfter.Sub(time.Now())
	if validity < 729*24*time.Hour || validity > 732*24*time.Hour {
		t.Errorf("valid for %v, want about 2 years", validity)
	}
	if leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Error("no key encipherment usage: RSA key exchange clients would reject it")
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("no serverAuth extended key usage")
	}

	if runtime.GOOS != "windows" {
		for file, want := range map[string]os.FileMode{
			dir:                            0o700,
			filepath.Join(dir, "key.pem"):  0o600,
			filepath.Join(dir, "cert.pem"): 0o644,
		} {
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s mode %v, want %v", file, fi.Mode().Perm(), want)
			}
		}
	}
	l := logs.String()
	if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "self-signed: for LAN use only") {
		t.Errorf("no self-signed warning:\n%s", l)
	}
	if !strings.Contains(l, "generated a self-signed") {
		t.Errorf("generation not logged:\n%s", l)
	}
	mustNotLogKeys(t, l)

	// A second start reuses the pair: devices that pinned it keep working.
	m2, logs2 := newManager(t, cfg)
	if got, want := Fingerprint(m2.Certificate()), Fingerprint(leaf); got != want {
		t.Fatalf("second New: fingerprint %s, want the first one %s", got, want)
	}
	if strings.Contains(logs2.String(), "generated") {
		t.Errorf("second New generated again:\n%s", logs2)
	}
	if !strings.Contains(logs2.String(), "self-signed: for LAN use only") {
		t.Errorf("second New did not warn:\n%s", logs2)
	}

	// And it serves it.
	addr := serve(t, m2.ServerConfig())
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cc := trusting()
	cc.RootCAs = pool
	cc.ServerName = "localhost"
	if _, err := dial(t, addr, cc); err != nil {
		t.Fatalf("handshake verifying the self-signed certificate as localhost: %v", err)
	}
}

func TestSelfSignedRegeneratedWhenExpiredOrHalf(t *testing.T) {
	dir := t.TempDir()
	old := makeCert(t, certOpts{notBefore: timeAgo(48), notAfter: timeAgo(1)})
	writePair(t, dir, old)
	cfg := config.TLS{SelfSigned: true, SelfSignedDir: dir}
	m, logs := newManager(t, cfg)
	if Fingerprint(m.Certificate()) == Fingerprint(old.cert) || time.Now().After(m.Certificate().NotAfter) {
		t.Fatal("expired self-signed certificate was reused")
	}
	if !strings.Contains(logs.String(), "expired; generating a new one") {
		t.Errorf("regeneration not explained:\n%s", logs)
	}

	// A start interrupted after the key was written leaves no certificate.
	if err := os.Remove(filepath.Join(dir, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	m2, _ := newManager(t, cfg)
	if Fingerprint(m2.Certificate()) == Fingerprint(m.Certificate()) {
		t.Fatal("half pair: certificate not regenerated")
	}
}

// A pair that exists but does not load is the operator's to fix: it is
// never overwritten.
func TestSelfSignedBrokenPairNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{})
	b := makeCert(t, certOpts{})
	writePair(t, dir, a)
	writeAtomic(t, filepath.Join(dir, "key.pem"), keyPEM(t, b.key, "pkcs8"))
	before, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	_, err := New(config.TLS{SelfSigned: true, SelfSignedDir: dir}, "relay.test", nil)
	if err == nil || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("err = %v, want a load error telling to remove the files", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if string(before) != string(after) {
		t.Fatal("broken pair was overwritten")
	}
}

func TestSelfSignedKeyModeWarning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	dir := t.TempDir()
	cfg := config.TLS{SelfSigned: true, SelfSignedDir: dir}
	newManager(t, cfg)
	if err := os.Chmod(filepath.Join(dir, "key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, logs := newManager(t, cfg)
	if !strings.Contains(logs.String(), "readable by other users") {
		t.Fatalf("no warning for a 0644 key:\n%s", logs)
	}
}

func TestSubjectAltNames(t *testing.T) {
	names, ips := subjectAltNames("192.0.2.10", []net.IP{net.ParseIP("10.1.2.3"), net.IPv4(127, 0, 0, 1)})
	if !slices.Equal(names, []string{"localhost"}) {
		t.Errorf("names %v: an IP hostname must not become a DNS name", names)
	}
	for _, want := range []string{"192.0.2.10", "127.0.0.1", "::1", "10.1.2.3"} {
		if !hasIP(ips, net.ParseIP(want)) {
			t.Errorf("IPs %v lack %s", ips, want)
		}
	}
	if len(ips) != 4 {
		t.Errorf("IPs %v: duplicates", ips)
	}
	names, _ = subjectAltNames("mail.example.lan", nil)
	if !slices.Equal(names, []string{"mail.example.lan", "localhost"}) {
		t.Errorf("names = %v", names)
	}
}

func hasIP(ips []net.IP, ip net.IP) bool {
	return slices.ContainsFunc(ips, ip.Equal)
}
