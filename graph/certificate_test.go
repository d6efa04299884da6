package graph

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// credPKI is a root -> intermediate -> leaf chain like the ones an
// enterprise CA issues for Entra app credentials.
type credPKI struct {
	root, inter, leaf *x509.Certificate
	leafKey           *rsa.PrivateKey
}

// RSA key generation dominates the test time, so one chain serves every
// test that only reads it.
var sharedCredPKI = sync.OnceValue(func() credPKI { return newCredPKI(nil) })

func credTestPKI(t *testing.T) credPKI {
	t.Helper()
	p := sharedCredPKI()
	if p.leaf == nil {
		t.Fatal("test PKI generation failed")
	}
	return p
}

// newCredPKI builds a fresh chain; tb may be nil for the shared one, in
// which case a failure leaves the result empty.
func newCredPKI(tb testing.TB) credPKI {
	fail := func(err error) credPKI {
		if tb != nil {
			tb.Fatal(err)
		}
		return credPKI{}
	}
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	interKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	root, err := credIssue("graphrelay test root", &rootKey.PublicKey, nil, rootKey, true)
	if err != nil {
		return fail(err)
	}
	inter, err := credIssue("graphrelay test intermediate", &interKey.PublicKey, root, rootKey, true)
	if err != nil {
		return fail(err)
	}
	leaf, err := credIssue("graphrelay app", &leafKey.PublicKey, inter, interKey, false)
	if err != nil {
		return fail(err)
	}
	return credPKI{root: root, inter: inter, leaf: leaf, leafKey: leafKey}
}

var credSerial struct {
	sync.Mutex
	n int64
}

// credIssue signs a certificate for pub; a nil parent makes it self-signed.
func credIssue(cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, isCA bool) (*x509.Certificate, error) {
	credSerial.Lock()
	credSerial.n++
	serial := big.NewInt(credSerial.n)
	credSerial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// credWritePEM writes blocks to a new file in dir and returns its path.
func credWritePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var buf bytes.Buffer
	for _, b := range blocks {
		if err := pem.Encode(&buf, b); err != nil {
			t.Fatal(err)
		}
		// Noise between blocks, like openssl's "Bag Attributes".
		buf.WriteString("Bag Attributes: ignored\n")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func credCertBlock(c *x509.Certificate) *pem.Block {
	return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}
}

func credPKCS1Block(k *rsa.PrivateKey) *pem.Block {
	return &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
}

func credPKCS8Block(t *testing.T, k any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// credCheckLoaded verifies the leaf, the key and the leaf-first chain order.
func credCheckLoaded(t *testing.T, c *Certificate, p credPKI) {
	t.Helper()
	if !c.Leaf.Equal(p.leaf) {
		t.Errorf("leaf = %s, want %s", c.Leaf.Subject, p.leaf.Subject)
	}
	if !c.Key.Equal(p.leafKey) {
		t.Error("key differs from the leaf key")
	}
	want := []*x509.Certificate{p.leaf, p.inter, p.root}
	if len(c.Chain) != len(want) {
		t.Fatalf("chain has %d certificates, want %d", len(c.Chain), len(want))
	}
	for i := range want {
		if !c.Chain[i].Equal(want[i]) {
			t.Errorf("chain[%d] = %s, want %s", i, c.Chain[i].Subject.CommonName, want[i].Subject.CommonName)
		}
	}
}

func TestLoadPEMOneFileAnyOrder(t *testing.T) {
	p := credTestPKI(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		key  *pem.Block
	}{
		{"pkcs1", credPKCS1Block(p.leafKey)},
		{"pkcs8", credPKCS8Block(t, p.leafKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Root first, key in the middle, leaf after its issuer.
			path := credWritePEM(t, dir, tc.name+".pem",
				credCertBlock(p.root), tc.key, credCertBlock(p.inter), credCertBlock(p.leaf))
			c, err := LoadPEM(path, "")
			if err != nil {
				t.Fatal(err)
			}
			credCheckLoaded(t, c, p)
		})
	}
}

func TestLoadPEMTwoFiles(t *testing.T) {
	p := credTestPKI(t)
	dir := t.TempDir()
	certPath := credWritePEM(t, dir, "cert.pem", credCertBlock(p.leaf), credCertBlock(p.inter), credCertBlock(p.root))
	for _, tc := range []struct {
		name string
		key  *pem.Block
	}{
		{"pkcs1", credPKCS1Block(p.leafKey)},
		{"pkcs8", credPKCS8Block(t, p.leafKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyPath := credWritePEM(t, dir, tc.name+".key", tc.key)
			c, err := LoadPEM(certPath, keyPath)
			if err != nil {
				t.Fatal(err)
			}
			credCheckLoaded(t, c, p)
		})
	}
}

func TestLoadPEMErrors(t *testing.T) {
	p := credTestPKI(t)
	dir := t.TempDir()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := credIssue("ec app", &ecKey.PublicKey, nil, ecKey, false)
	if err != nil {
		t.Fatal(err)
	}
	leaf := credCertBlock(p.leaf)

	for _, tc := range []struct {
		name    string
		cert    []*pem.Block
		key     []*pem.Block // nil: no key file
		wantErr string
	}{
		{"key mismatch", []*pem.Block{leaf, credPKCS1Block(otherKey)}, nil, "does not match any certificate"},
		{"key mismatch in key file", []*pem.Block{leaf}, []*pem.Block{credPKCS8Block(t, otherKey)}, "does not match any certificate"},
		{"ecdsa sec1 key", []*pem.Block{credCertBlock(ecCert), {Type: "EC PRIVATE KEY", Bytes: ecDER}}, nil, "must be RSA"},
		{"ecdsa pkcs8 key", []*pem.Block{credCertBlock(ecCert), credPKCS8Block(t, ecKey)}, nil, "the key is ECDSA, but Entra app certificates must be RSA"},
		{"ed25519 key", []*pem.Block{leaf, credPKCS8Block(t, edKey)}, nil, "the key is Ed25519"},
		{"no key", []*pem.Block{leaf}, nil, "no private key found"},
		{"no key in key file", []*pem.Block{leaf}, []*pem.Block{leaf}, "no private key in"},
		{"no certificate", []*pem.Block{credPKCS1Block(p.leafKey)}, nil, "no CERTIFICATE block"},
		{"two keys", []*pem.Block{leaf, credPKCS1Block(p.leafKey), credPKCS1Block(otherKey)}, nil, "more than one private key"},
		{"encrypted pkcs8", []*pem.Block{leaf, {Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}}, nil, "encrypted PKCS#8 keys are not supported"},
		{"encrypted legacy", []*pem.Block{leaf, {Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}}, nil, "encrypted PEM keys"},
		{"garbage certificate", []*pem.Block{{Type: "CERTIFICATE", Bytes: []byte("nope")}}, nil, "parse certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "_")
			certPath := credWritePEM(t, dir, name+".pem", tc.cert...)
			keyPath := ""
			if tc.key != nil {
				keyPath = credWritePEM(t, dir, name+".key", tc.key...)
			}
			_, err := LoadPEM(certPath, keyPath)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "load certificate "+certPath+": ") {
				t.Errorf("err = %v, want it to name %s", err, certPath)
			}
		})
	}
}

func TestLoadPEMMissingFile(t *testing.T) {
	p := credTestPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	if _, err := LoadPEM(missing, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing cert file: err = %v, want fs.ErrNotExist", err)
	}
	certPath := credWritePEM(t, dir, "cert.pem", credCertBlock(p.leaf))
	_, err := LoadPEM(certPath, missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing key file: err = %v, want fs.ErrNotExist naming %s", err, missing)
	}
}

func TestLoadPFX(t *testing.T) {
	p := credTestPKI(t)
	dir := t.TempDir()
	const password = "correct horse battery staple"
	for _, tc := range []struct {
		name string
		enc  *pkcs12.Encoder
	}{
		{"modern-aes", pkcs12.Modern},
		{"legacy-3des", pkcs12.Legacy},
		{"legacy-rc2", pkcs12.LegacyRC2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The root is passed as the "end-entity" certificate so that
			// the leaf is not first, as in some Windows exports.
			pfx, err := tc.enc.Encode(p.leafKey, p.root, []*x509.Certificate{p.leaf, p.inter}, password)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.name+".pfx")
			if err := os.WriteFile(path, pfx, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadPFX(path, password)
			if err != nil {
				t.Fatal(err)
			}
			credCheckLoaded(t, c, p)

			_, err = LoadPFX(path, "wrong")
			if err == nil || !strings.Contains(err.Error(), "wrong PFX password") {
				t.Fatalf("wrong password: err = %v, want it to say so", err)
			}
			if !errors.Is(err, pkcs12.ErrIncorrectPassword) {
				t.Errorf("wrong password: err = %v, want pkcs12.ErrIncorrectPassword inside", err)
			}
		})
	}
}

func TestLoadPFXErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPFX(filepath.Join(dir, "missing.pfx"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	garbage := filepath.Join(dir, "garbage.pfx")
	if err := os.WriteFile(garbage, []byte("not a pfx"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPFX(garbage, ""); err == nil || !strings.Contains(err.Error(), "decode PFX") {
		t.Errorf("garbage: err = %v, want a decode error", err)
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := credIssue("ec app", &ecKey.PublicKey, nil, ecKey, false)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := pkcs12.Modern.Encode(ecKey, ecCert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	ecPath := filepath.Join(dir, "ec.pfx")
	if err := os.WriteFile(ecPath, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPFX(ecPath, "pw"); err == nil || !strings.Contains(err.Error(), "must be RSA") {
		t.Errorf("ECDSA PFX: err = %v, want an RSA-only error", err)
	}
}

func TestCertificateThumbprints(t *testing.T) {
	p := credTestPKI(t)
	c := &Certificate{Leaf: p.leaf, Chain: []*x509.Certificate{p.leaf}, Key: p.leafKey}
	s1 := sha1.Sum(p.leaf.Raw)
	s256 := sha256.Sum256(p.leaf.Raw)
	if !bytes.Equal(c.ThumbprintSHA1(), s1[:]) {
		t.Error("ThumbprintSHA1 is not the SHA-1 of the leaf DER")
	}
	if !bytes.Equal(c.ThumbprintSHA256(), s256[:]) {
		t.Error("ThumbprintSHA256 is not the SHA-256 of the leaf DER")
	}
	if !c.NotAfter().Equal(p.leaf.NotAfter) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter(), p.leaf.NotAfter)
	}
}
