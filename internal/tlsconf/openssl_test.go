package tlsconf

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireOpenSSL finds openssl or skips; in CI (GRAPHRELAY_REQUIRE_CLIENTS)
// a missing client fails, as for the other real clients.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("GRAPHRELAY_REQUIRE_CLIENTS") != "" {
			t.Fatalf("openssl is required: %v", err)
		}
		t.Skip("openssl not installed")
	}
	return p
}

// sClient runs `openssl s_client` against addr with empty stdin, so it
// handshakes, prints its summary and what the server sends, and exits
// when the server closes (-ign_eof: stdin EOF alone must not end it
// before the server's line arrived).
func sClient(t *testing.T, openssl, addr string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args = append([]string{"s_client", "-connect", addr, "-servername", "relay.test", "-showcerts", "-ign_eof"}, args...)
	cmd := exec.CommandContext(ctx, openssl, args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "Protocol") || strings.HasPrefix(l, "Cipher") || strings.HasPrefix(l, "New, ") {
			t.Logf("s_client %s: %s", strings.Join(args[5:], " "), l)
		}
	}
	return string(out), err
}

// firstCert is the first certificate s_client -showcerts printed.
func firstCert(t *testing.T, out string) *x509.Certificate {
	t.Helper()
	i := strings.Index(out, "-----BEGIN CERTIFICATE-----")
	if i < 0 {
		t.Fatalf("no certificate in s_client output:\n%s", out)
	}
	b, _ := pem.Decode([]byte(out[i:]))
	if b == nil {
		t.Fatalf("bad certificate in s_client output:\n%s", out)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// localRefusal tells openssl declining the protocol or cipher itself (its
// security level, a build without TLS 1.0) from the server refusing.
func localRefusal(out string) bool {
	for _, s := range []string{"no protocols available", "no cipher match", "unknown option", "null ssl method passed"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func TestOpenSSLHandshake(t *testing.T) {
	openssl := requireOpenSSL(t)
	m, c, _ := rsaPair(t, "1.2", false)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeAtomic(t, caFile, c.certPEM)
	addr := serve(t, m.ServerConfig())

	out, err := sClient(t, openssl, addr, "-CAfile", caFile, "-verify_return_error", "-verify_hostname", "relay.test")
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Errorf("certificate did not verify:\n%s", out)
	}
	if !strings.Contains(out, "TLSv1.3") {
		t.Errorf("not TLS 1.3:\n%s", out)
	}
	if !strings.Contains(out, "220 hello") {
		t.Errorf("no data after the handshake:\n%s", out)
	}
	if got := Fingerprint(firstCert(t, out)); got != Fingerprint(m.Certificate()) {
		t.Errorf("openssl saw %s, Certificate() is %s", got, Fingerprint(m.Certificate()))
	}
}

// TestOpenSSLTLS10 is the real-client proof that a Go 1.26 server speaks
// TLS 1.0 when min_version allows it, and refuses it at the default.
func TestOpenSSLTLS10(t *testing.T) {
	openssl := requireOpenSSL(t)
	// OpenSSL 3 allows TLS 1.0 and SHA-1 MACs only at security level 0.
	args := []string{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"}

	m10, _, _ := rsaPair(t, "1.0", false)
	out, err := sClient(t, openssl, serve(t, m10.ServerConfig()), args...)
	if err != nil {
		if localRefusal(out) {
			t.Skipf("local openssl refuses TLS 1.0 itself:\n%s", out)
		}
		t.Fatalf("min_version 1.0: openssl s_client -tls1 failed: %v\n%s", err, out)
	}
	// "Protocol : TLSv1" is printed for failed attempts too; the "New,"
	// line names what was negotiated.
	if !strings.Contains(out, "New, TLSv1.0, Cipher is ") || !strings.Contains(out, "220 hello") {
		t.Fatalf("min_version 1.0: no TLS 1.0 session:\n%s", out)
	}

	m12, _, _ := rsaPair(t, "1.2", false)
	out, err = sClient(t, openssl, serve(t, m12.ServerConfig()), args...)
	if err == nil {
		t.Fatalf("min_version 1.2 accepted openssl -tls1:\n%s", out)
	}
	if !strings.Contains(out, "protocol version") {
		t.Errorf("min_version 1.2: expected a protocol version alert:\n%s", out)
	}

	out, err = sClient(t, openssl, serve(t, m12.ServerConfig()), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
	if err == nil {
		t.Fatalf("min_version 1.2 accepted openssl -tls1_1:\n%s", out)
	}
}

// RSA key exchange with AES-CBC (what OpenSSL 0.9.8-era firmware falls back
// to) from a real client: refused by default, accepted with legacy_ciphers.
// OpenSSL 3 builds no longer offer 3DES, so the Go client test covers that.
func TestOpenSSLLegacyCipher(t *testing.T) {
	openssl := requireOpenSSL(t)
	args := []string{"-tls1", "-cipher", "AES128-SHA@SECLEVEL=0"}
	plain, _, _ := rsaPair(t, "1.0", false)
	if out, err := sClient(t, openssl, serve(t, plain.ServerConfig()), args...); err == nil {
		t.Fatalf("AES128-SHA accepted without legacy_ciphers:\n%s", out)
	} else if localRefusal(out) {
		t.Skipf("local openssl refuses AES128-SHA over TLS 1.0:\n%s", out)
	}
	legacy, _, _ := rsaPair(t, "1.0", true)
	out, err := sClient(t, openssl, serve(t, legacy.ServerConfig()), args...)
	if err != nil {
		t.Fatalf("AES128-SHA refused with legacy_ciphers: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Cipher is AES128-SHA") || !strings.Contains(out, "Protocol  : TLSv1\n") || !strings.Contains(out, "220 hello") {
		t.Fatalf("not AES128-SHA:\n%s", out)
	}
}

// A TLS 1.2 client that offers only SHA-1 signature algorithms (some
// embedded stacks do) is refused by Go 1.25 and later (RFC 9155), whatever
// min_version and legacy_ciphers say: the server picks an ECDHE suite and
// then has no signature to make. Only the process-wide GODEBUG tlssha1=1
// lets it in. The test pins both halves, so a Go release that changes this
// is noticed.
func TestOpenSSLSHA1OnlyClient(t *testing.T) {
	openssl := requireOpenSSL(t)
	withSHA1 := strings.Contains(os.Getenv("GODEBUG"), "tlssha1=1")
	m, _, _ := rsaPair(t, "1.0", true)
	out, err := sClient(t, openssl, serve(t, m.ServerConfig()), "-tls1_2", "-sigalgs", "RSA+SHA1", "-cipher", "DEFAULT@SECLEVEL=0")
	if localRefusal(out) {
		t.Skipf("local openssl refuses SHA-1-only TLS 1.2:\n%s", out)
	}
	switch {
	case withSHA1 && err != nil:
		t.Fatalf("GODEBUG=tlssha1=1: SHA-1-only client refused: %v\n%s", err, out)
	case withSHA1 && !strings.Contains(out, "New, TLSv1.2, Cipher is "):
		t.Fatalf("GODEBUG=tlssha1=1: no TLS 1.2 session:\n%s", out)
	case !withSHA1 && err == nil:
		t.Fatalf("SHA-1-only TLS 1.2 client accepted without GODEBUG tlssha1=1; update the package documentation:\n%s", out)
	}
	if withSHA1 || os.Getenv("TLSCONF_CHILD") != "" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenSSLSHA1OnlyClient$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TLSCONF_CHILD=1", "GODEBUG=tlssha1=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestOpenSSLSHA1OnlyClient") {
		t.Fatalf("with GODEBUG=tlssha1=1: %v\n%s", err, out)
	}
}
