package doctor

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// testCert is an RSA certificate and key written as PEM files.
type testCert struct {
	cert              *x509.Certificate
	certFile, keyFile string
}

func newTestCert(t *testing.T, cn string, notAfter time.Time) *testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	c := &testCert{cert: cert, certFile: filepath.Join(dir, "app.crt"), keyFile: filepath.Join(dir, "app.key")}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	writeFile(t, c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	return c
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

const (
	scans  = "scans@contoso.com"
	alerts = "alerts@contoso.com"
)

// tenantConfig returns a production configuration for fake: certificate
// credential, two mailboxes, a queue spool in a temporary directory and a
// loopback listener on a free port.
func tenantConfig(t *testing.T, fake *graphtest.Server, cert *testCert) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Graph.TenantID = fake.TenantID()
	cfg.Graph.ClientID = fake.ClientID()
	cfg.Graph.AuthorityURL = fake.AuthorityURL()
	cfg.Graph.GraphURL = fake.GraphURL()
	cfg.Graph.Timeout = config.Duration(10 * time.Second)
	if cert != nil {
		cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	}
	cfg.Mailboxes = []config.Mailbox{{Address: scans}, {Address: alerts}}
	cfg.DefaultMailbox = scans
	cfg.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	cfg.Delivery.Mode = config.ModeQueue
	cfg.Delivery.LargeMessages = config.LargeReject
	cfg.Queue.Dir = filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(cfg.Queue.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeConfig writes cfg as the YAML file an admin would, so that every
// test goes through config.Load as graphrelay check does.
func writeConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "graphrelay.yaml")
	writeFile(t, path, b, 0o600)
	return path
}

// runDoctor runs every check against fake with the configuration.
func runDoctor(t *testing.T, fake *graphtest.Server, cfg *config.Config, mod ...func(*Options)) []Result {
	t.Helper()
	opts := Options{ConfigPath: writeConfig(t, cfg), HTTPClient: fake.HTTPClient(), Hostname: "test-host"}
	for _, m := range mod {
		m(&opts)
	}
	var reported []Result
	opts.Report = func(r Result) { reported = append(reported, r) }
	results := Run(context.Background(), opts)
	if len(reported) != len(results) {
		t.Errorf("Report saw %d results, Run returned %d", len(reported), len(results))
	}
	for _, r := range results {
		if r.Name == "" || r.Detail == "" {
			t.Errorf("incomplete result %+v", r)
		}
		if r.Status != OK && r.Fix == "" {
			t.Errorf("%s is %s without a fix: %s", r.Name, r.Status, r.Detail)
		}
		// Tokens are JWTs ("eyJ..."); none may ever be printed, nor a key.
		for _, s := range []string{r.Detail, r.Fix} {
			if strings.Contains(s, "eyJ") || strings.Contains(s, "PRIVATE KEY") {
				t.Errorf("%s prints secret material: %s", r.Name, s)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, r := range results {
			t.Logf("%-4s %s: %s | %s", r.Status, r.Name, r.Detail, r.Fix)
		}
	}
	return results
}

// result finds the named step.
func result(t *testing.T, results []Result, name string) Result {
	t.Helper()
	for _, r := range results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no step %q in %v", name, names(results))
	return Result{}
}

func names(results []Result) []string {
	var out []string
	for _, r := range results {
		out = append(out, r.Name)
	}
	return out
}

// expect checks a step's status and that detail and fix contain the
// given fragments.
func expect(t *testing.T, results []Result, name string, status Status, detail, fix string) Result {
	t.Helper()
	r := result(t, results, name)
	if r.Status != status {
		t.Errorf("%s: status %s, want %s (%s)", name, r.Status, status, r.Detail)
	}
	if !strings.Contains(r.Detail, detail) {
		t.Errorf("%s: detail %q lacks %q", name, r.Detail, detail)
	}
	if !strings.Contains(r.Fix, fix) {
		t.Errorf("%s: fix %q lacks %q", name, r.Fix, fix)
	}
	return r
}
