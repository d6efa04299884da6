package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// runKeygen runs "graphrelay keygen" as main does; none of its callers
// asks for a password, so stdin is never read.
func runKeygen(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"keygen"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeygenWritesMatchingCredential(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "creds")
	code, out, errOut := runKeygen(t, "--out", dir, "--subject", `CN=relay test,O=Contoso\, Ltd,C=de`, "--days", "30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	keyFile, crtFile, cerFile := filepath.Join(dir, "app.key"), filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.cer")

	// The key and certificate match: LoadPEM refuses a key that belongs to
	// no certificate in the file.
	cert, err := graph.LoadPEM(crtFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Key.N.BitLen() != 3072 || !cert.Key.PublicKey.Equal(cert.Leaf.PublicKey.(*rsa.PublicKey)) {
		t.Errorf("key: %d bits", cert.Key.N.BitLen())
	}
	keyPEM, _ := os.ReadFile(keyFile)
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("app.key is not PEM PKCS#8")
	}
	der, err := os.ReadFile(cerFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(der, cert.Leaf.Raw) {
		t.Error("app.cer is not the DER of app.crt")
	}
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "relay test" || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "Contoso, Ltd" ||
		len(leaf.Subject.Country) != 1 || leaf.Subject.Country[0] != "DE" {
		t.Errorf("subject %v", leaf.Subject)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA {
		t.Errorf("key usage %v, CA %v", leaf.KeyUsage, leaf.IsCA)
	}
	// Self-signed: issued by itself and signed with its own key. (Not
	// CheckSignatureFrom, which insists on a CA parent.)
	if !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) || leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) != nil {
		t.Error("not self-signed")
	}
	if d := time.Until(leaf.NotAfter); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("expires in %v, want 30 days", d)
	}
	if time.Now().Before(leaf.NotBefore) {
		t.Errorf("not valid yet: %v", leaf.NotBefore)
	}

	// The thumbprints printed are those of the DER, upper-case hex as the
	// portal shows them.
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	for _, want := range []string{
		"SHA-1 thumbprint:    " + strings.ToUpper(hex.EncodeToString(s1[:])),
		"SHA-256 thumbprint:  " + strings.ToUpper(hex.EncodeToString(s256[:])),
		leaf.NotAfter.Format(time.DateOnly),
		"Upload certificate", cerFile, "certificate_file: " + crtFile, "key_file: " + keyFile, "graphrelay check",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out+errOut, string(keyPEM[40:80])) {
		t.Error("the output contains key material")
	}

	if runtime.GOOS != "windows" {
		for name, want := range map[string]os.FileMode{"app.key": 0o600, "app.crt": 0o644, "app.cer": 0o644} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s mode %04o, want %04o", name, fi.Mode().Perm(), want)
			}
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("created directory mode %04o", fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "app.pfx")); err == nil {
		t.Error("app.pfx written without --pfx")
	}
}

// The point of keygen: Entra (here the strict fake) accepts an assertion
// signed with the generated key once app.cer is registered.
func TestKeygenCredentialIsAcceptedByTheTokenEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errOut := runKeygen(t, "--out", dir); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	der, err := os.ReadFile(filepath.Join(dir, "app.cer"))
	if err != nil {
		t.Fatal(err)
	}
	uploaded, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{uploaded}})
	cert, err := graph.LoadPEM(filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []graph.AssertionAlg{graph.AssertionPS256, graph.AssertionRS256} {
		ts, err := graph.NewTokenSource(context.Background(), graph.TokenConfig{
			HTTPClient: fake.HTTPClient(), TokenURL: fake.TokenURL(), Scope: graphtest.DefaultGraphScope,
			ClientID: fake.ClientID(), Certificate: cert, Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("%s: the fake refused the generated credential: %v", alg, err)
		}
		if claims, err := graph.ParseTokenClaims(tok.AccessToken); err != nil || claims.AppIDACR != "2" {
			t.Errorf("%s: claims %+v %v", alg, claims, err)
		}
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errOut := runKeygen(t, "--out", dir, "--days", "10"); code != 0 {
		t.Fatalf("first run: %s", errOut)
	}
	before := map[string][]byte{}
	for _, n := range []string{"app.key", "app.crt", "app.cer"} {
		before[n], _ = os.ReadFile(filepath.Join(dir, n))
	}
	code, _, errOut := runKeygen(t, "--out", dir)
	if code != 1 || !strings.Contains(errOut, "already exist") || !strings.Contains(errOut, "--force") {
		t.Fatalf("second run: exit %d, %s", code, errOut)
	}
	for n, b := range before {
		if now, _ := os.ReadFile(filepath.Join(dir, n)); !bytes.Equal(now, b) {
			t.Errorf("%s changed without --force", n)
		}
	}
	// One existing file is enough to refuse, and nothing else is written.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "app.cer"), []byte("keep"), 0o644)
	if code, _, _ := runKeygen(t, "--out", other); code != 1 {
		t.Fatal("overwrote app.cer")
	}
	if _, err := os.Stat(filepath.Join(other, "app.key")); err == nil {
		t.Error("wrote app.key although app.cer exists")
	}

	if code, _, errOut := runKeygen(t, "--out", dir, "--force"); code != 0 {
		t.Fatalf("--force: %s", errOut)
	}
	for n, b := range before {
		if now, _ := os.ReadFile(filepath.Join(dir, n)); bytes.Equal(now, b) {
			t.Errorf("%s not replaced with --force", n)
		}
	}
	if _, err := graph.LoadPEM(filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")); err != nil {
		t.Errorf("replaced pair does not match: %v", err)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(filepath.Join(dir, "app.key")); fi.Mode().Perm() != 0o600 {
			t.Errorf("replaced key mode %04o", fi.Mode().Perm())
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".app*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestKeygenPFX(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(t.TempDir(), "pass")
	const password = "c0rrect-horse-battery"
	os.WriteFile(passFile, []byte(password+"\r\n"), 0o600)
	code, out, errOut := runKeygen(t, "--out", dir, "--pfx-password-file", passFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	pfx := filepath.Join(dir, "app.pfx")
	fromPFX, err := graph.LoadPFX(pfx, password)
	if err != nil {
		t.Fatal(err)
	}
	fromPEM, err := graph.LoadPEM(filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromPFX.Leaf.Raw, fromPEM.Leaf.Raw) || !fromPFX.Key.Equal(fromPEM.Key) {
		t.Error("app.pfx holds another credential than app.crt/app.key")
	}
	if _, err := graph.LoadPFX(pfx, "wrong"); err == nil {
		t.Error("the .pfx opens with a wrong password")
	}
	if strings.Contains(out+errOut, password) {
		t.Error("the password is printed")
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(pfx); fi.Mode().Perm() != 0o600 {
			t.Errorf("app.pfx mode %04o", fi.Mode().Perm())
		}
	}
}

func TestKeygenPFXPasswordFromStdin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := keygenCmd([]string{"--out", dir, "--pfx"}, strings.NewReader("from-stdin\n"), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := graph.LoadPFX(filepath.Join(dir, "app.pfx"), "from-stdin"); err != nil {
		t.Fatal(err)
	}
	code = keygenCmd([]string{"--out", t.TempDir(), "--pfx"}, strings.NewReader("\n"), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "empty") {
		t.Errorf("empty password: exit %d, %s", code, errOut.String())
	}
}

func TestKeygenUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--days", "0"}, {"--days", "5000"}, {"--subject", ""}, {"--subject", "O=Contoso"},
		{"--subject", "CN=x,E=a@b.c"}, {"--subject", "CN=x,C=Germany"}, {"extra"},
	} {
		code, _, errOut := runKeygen(t, append([]string{"--out", t.TempDir()}, args...)...)
		if code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
	if n, err := parseSubject("graphrelay"); err != nil || n.CommonName != "graphrelay" {
		t.Errorf("bare name: %v %v", n, err)
	}
}
