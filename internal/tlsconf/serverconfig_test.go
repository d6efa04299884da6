package tlsconf

import (
	"crypto/tls"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

// rsaPair is one RSA certificate shared by the handshake tests: RSA because
// that is what the legacy clients need.
func rsaPair(t *testing.T, minVersion string, legacy bool) (*Manager, *testCert, *logBuffer) {
	t.Helper()
	c := makeCert(t, certOpts{})
	cfg := writePair(t, t.TempDir(), c)
	cfg.MinVersion, cfg.LegacyCiphers = minVersion, legacy
	m, logs := newManager(t, cfg)
	return m, c, logs
}

func TestHandshakeGoClient(t *testing.T) {
	m, c, _ := rsaPair(t, "1.2", false)
	addr := serve(t, m.ServerConfig())
	st, err := dial(t, addr, trusting(c))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3 with a modern client", tls.VersionName(st.Version))
	}
	if got := Fingerprint(st.PeerCertificates[0]); got != Fingerprint(m.Certificate()) {
		t.Fatalf("served %s, Certificate() is %s", got, Fingerprint(m.Certificate()))
	}
}

// client returns a Go client restricted to exactly one protocol version.
// A Go client needs MinVersion set too: since Go 1.22 its own default
// minimum is TLS 1.2 as well.
func client(c *testCert, v uint16, suites ...uint16) *tls.Config {
	cc := trusting(c)
	cc.MinVersion, cc.MaxVersion = v, v
	cc.CipherSuites = suites
	return cc
}

func TestMinVersion(t *testing.T) {
	versions := []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
	for _, min := range []string{"1.0", "1.1", "1.2", "1.3"} {
		t.Run(min, func(t *testing.T) {
			m, c, logs := rsaPair(t, min, false)
			want, _ := parseMinVersion(min)
			addr := serve(t, m.ServerConfig())
			for _, v := range versions {
				st, err := dial(t, addr, client(c, v))
				switch {
				case v >= want && err != nil:
					t.Errorf("%s client refused: %v", tls.VersionName(v), err)
				case v >= want && st.Version != v:
					t.Errorf("%s client negotiated %s", tls.VersionName(v), tls.VersionName(st.Version))
				case v < want && err == nil:
					t.Errorf("%s client accepted with min_version %s", tls.VersionName(v), min)
				case v < want && !strings.Contains(err.Error(), "protocol version"):
					t.Errorf("%s client: %v, want a protocol version alert", tls.VersionName(v), err)
				}
			}
			warned := strings.Contains(logs.String(), "below 1.2 are enabled")
			if warned != (want < tls.VersionTLS12) {
				t.Errorf("below-1.2 warning logged = %v for min_version %s", warned, min)
			}
		})
	}
}

func TestLegacyCiphers(t *testing.T) {
	legacyOnly := []uint16{
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}
	plain, c1, logs := rsaPair(t, "1.0", false)
	legacy, c2, legacyLogs := rsaPair(t, "1.0", true)
	if plain.ServerConfig().CipherSuites != nil {
		t.Fatal("without legacy_ciphers the suites must be Go's defaults (nil)")
	}
	plainAddr := serve(t, plain.ServerConfig())
	legacyAddr := serve(t, legacy.ServerConfig())

	for _, suite := range legacyOnly {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS12} {
			name := tls.CipherSuiteName(suite) + " " + tls.VersionName(v)
			if _, err := dial(t, plainAddr, client(c1, v, suite)); err == nil {
				t.Errorf("%s accepted without legacy_ciphers", name)
			}
			st, err := dial(t, legacyAddr, client(c2, v, suite))
			if err != nil {
				t.Errorf("%s refused with legacy_ciphers: %v", name, err)
			} else if st.CipherSuite != suite {
				t.Errorf("%s negotiated %s", name, tls.CipherSuiteName(st.CipherSuite))
			}
		}
	}

	// TLS 1.0 with Go's defaults still works, through ECDHE with AES-CBC.
	st, err := dial(t, plainAddr, client(c1, tls.VersionTLS10))
	if err != nil {
		t.Fatalf("TLS 1.0 with default suites: %v", err)
	}
	if !strings.HasPrefix(tls.CipherSuiteName(st.CipherSuite), "TLS_ECDHE_RSA_WITH_AES") {
		t.Errorf("TLS 1.0 default suite %s", tls.CipherSuiteName(st.CipherSuite))
	}

	// Legacy suites are a fallback: a client offering everything still
	// gets forward secrecy and AEAD.
	st, err = dial(t, legacyAddr, client(c2, tls.VersionTLS12, legacy.ServerConfig().CipherSuites...))
	if err != nil {
		t.Fatal(err)
	}
	if name := tls.CipherSuiteName(st.CipherSuite); !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") {
		t.Errorf("with everything offered the server chose %s", name)
	}

	if n := strings.Count(legacyLogs.String(), "legacy tls cipher suites are enabled"); n != 1 {
		t.Errorf("legacy warning logged %d times at New, want 1:\n%s", n, legacyLogs)
	}
	legacy.ServerConfig()
	legacy.ServerConfig()
	if n := strings.Count(legacyLogs.String(), "legacy tls cipher suites"); n != 1 {
		t.Errorf("ServerConfig logged the warning again (%d)", n)
	}
	if strings.Contains(logs.String(), "legacy") {
		t.Errorf("legacy warning without legacy_ciphers:\n%s", logs)
	}
}

// Every legacy suite is one crypto/tls knows, RC4 and CBC-SHA256 stay out,
// and no TLS 1.3 suite is listed (they are not configurable).
func TestLegacySuiteList(t *testing.T) {
	known := map[uint16]*tls.CipherSuite{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[s.ID] = s
	}
	ids := cipherSuites(true)
	for _, id := range ids {
		s := known[id]
		if s == nil {
			t.Fatalf("%#x is not a crypto/tls suite", id)
		}
		if strings.Contains(s.Name, "RC4") || strings.HasSuffix(s.Name, "CBC_SHA256") {
			t.Errorf("%s must not be enabled", s.Name)
		}
		if !supportsPre13(s) {
			t.Errorf("%s is TLS 1.3-only", s.Name)
		}
	}
	for _, id := range legacySuites {
		if !slices.Contains(ids, id) {
			t.Errorf("%s missing", tls.CipherSuiteName(id))
		}
	}
	// The modern defaults stay in the list.
	if !slices.Contains(ids, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) || !slices.Contains(ids, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256) {
		t.Error("modern suites dropped")
	}
}

func TestServerConfigCopies(t *testing.T) {
	m, _, _ := rsaPair(t, "1.0", true)
	a, b := m.ServerConfig(), m.ServerConfig()
	if a == b {
		t.Fatal("same *tls.Config returned twice")
	}
	a.CipherSuites[0] = 0
	a.MinVersion = tls.VersionTLS13
	if b.CipherSuites[0] == 0 || m.ServerConfig().CipherSuites[0] == 0 || m.ServerConfig().MinVersion != tls.VersionTLS10 {
		t.Fatal("changing one returned config changed the Manager's")
	}
}

// TestNoGODEBUGNeeded re-runs the TLS 1.0 and legacy-suite tests with the
// GODEBUG settings that govern them forced to Go 1.26's defaults, so the
// proof does not depend on the environment the tests happen to run in:
// explicit MinVersion and CipherSuites need no GODEBUG.
func TestNoGODEBUGNeeded(t *testing.T) {
	if os.Getenv("TLSCONF_CHILD") != "" {
		t.Skip("child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^(TestMinVersion|TestLegacyCiphers|TestOpenSSL.*)$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TLSCONF_CHILD=1", "GODEBUG=tls10server=0,tlsrsakex=0,tls3des=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tests with GODEBUG=tls10server=0,tlsrsakex=0,tls3des=0 failed: %v\n%s", err, out)
	}
	for _, name := range []string{"TestMinVersion", "TestLegacyCiphers"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("%s did not pass in the child:\n%s", name, out)
		}
	}
}

// With GODEBUG=fips140=on crypto/tls silently drops TLS 1.0/1.1 and the
// legacy suites, so New refuses to pretend they are enabled.
func TestFIPSRefusesLegacy(t *testing.T) {
	if os.Getenv("TLSCONF_FIPS_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSRefusesLegacy$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TLSCONF_FIPS_CHILD=1", "TLSCONF_CHILD=1", "GODEBUG=fips140=on")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSRefusesLegacy") {
			t.Fatalf("FIPS child: %v\n%s", err, out)
		}
		return
	}
	c := makeCert(t, certOpts{})
	cfg := writePair(t, t.TempDir(), c)
	for _, bad := range []config.TLS{{MinVersion: "1.0"}, {MinVersion: "1.1"}, {MinVersion: "1.2", LegacyCiphers: true}} {
		bad.CertFile, bad.KeyFile = cfg.CertFile, cfg.KeyFile
		if _, err := New(bad, "relay.test", nil); err == nil || !strings.Contains(err.Error(), "FIPS") {
			t.Errorf("min %s legacy %v under fips140=on: err = %v", bad.MinVersion, bad.LegacyCiphers, err)
		}
	}
	if _, err := New(cfg, "relay.test", nil); err != nil {
		t.Errorf("TLS 1.2 under fips140=on: %v", err)
	}
}
