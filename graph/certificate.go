package graph

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Certificate is an Entra app credential: the certificate registered on the
// app and the private key that signs client assertions.
type Certificate struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // leaf first; sent as x5c for SN+I authentication
	Key   *rsa.PrivateKey     // Entra app certificates are RSA
}

// LoadPEM reads a certificate chain and its private key from PEM files.
// keyFile "" means the key is in certFile. CERTIFICATE blocks may come in
// any order (the leaf is the one matching the key); keys may be PKCS#1
// ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). Text between blocks, like
// the "Bag Attributes" that openssl pkcs12 prints, is ignored.
func LoadPEM(certFile, keyFile string) (*Certificate, error) {
	c, err := loadPEM(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", certFile, err)
	}
	return c, nil
}

func loadPEM(certFile, keyFile string) (*Certificate, error) {
	certs, key, err := readPEMFile(certFile)
	if err != nil {
		return nil, err
	}
	if keyFile != "" {
		// An explicit key file wins, so a bundle that happens to carry a
		// stale key cannot silently be used instead.
		_, key, err = readPEMFile(keyFile)
		if err != nil {
			return nil, err
		}
		if key == nil {
			return nil, fmt.Errorf("no private key in %s", keyFile)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE block found")
	}
	if key == nil {
		return nil, errors.New("no private key found (give a key file, or append the key to the certificate file)")
	}
	return newCertificate(key, certs)
}

// readPEMFile returns every certificate in path and its one private key,
// if any.
func readPEMFile(path string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var k crypto.PrivateKey
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: parse certificate %d: %w", path, len(certs)+1, err)
			}
			certs = append(certs, c)
			continue
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, nil, fmt.Errorf("%s: encrypted PEM keys are not supported; decrypt the key or use a PFX file", path)
			}
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, fmt.Errorf("%s: encrypted PKCS#8 keys are not supported; decrypt the key or use a PFX file", path)
		case "EC PRIVATE KEY":
			return nil, nil, fmt.Errorf("%s: the key is ECDSA, but Entra app certificates must be RSA", path)
		default:
			// Parameters, public keys and the like carry nothing we need.
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: parse %s: %w", path, block.Type, err)
		}
		if key != nil {
			return nil, nil, fmt.Errorf("%s: more than one private key", path)
		}
		key = k
	}
	return certs, key, nil
}

// LoadPFX reads a PKCS#12 (.pfx/.p12) file as exported by Windows, Azure
// Key Vault or openssl: modern PBES2/AES files as well as legacy 3DES/RC2
// ones. The certificates may come in any order.
func LoadPFX(file, password string) (*Certificate, error) {
	c, err := loadPFX(file, password)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", file, err)
	}
	return c, nil
}

func loadPFX(file, password string) (*Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		// ErrDecryption is what a wrong password looks like in files
		// without a MAC, where the bad padding is the first symptom.
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return nil, fmt.Errorf("wrong PFX password: %w", err)
		}
		return nil, fmt.Errorf("decode PFX: %w", err)
	}
	// DecodeChain calls the first certificate the leaf, but Windows does
	// not promise that order when it exports a whole chain, so the leaf
	// is found again by its key.
	return newCertificate(key, append([]*x509.Certificate{leaf}, cas...))
}

// newCertificate checks that key is RSA and matches one of certs, and
// orders the chain leaf first.
func newCertificate(key crypto.PrivateKey, certs []*x509.Certificate) (*Certificate, error) {
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %s, but Entra app certificates must be RSA", keyKind(key))
	}
	if err := rsaKey.Validate(); err != nil {
		return nil, fmt.Errorf("invalid RSA key: %w", err)
	}
	leafIdx := -1
	for i, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && rsaKey.PublicKey.Equal(pub) {
			leafIdx = i
			break
		}
	}
	if leafIdx < 0 {
		return nil, errors.New("the private key does not match any certificate")
	}
	rest := make([]*x509.Certificate, 0, len(certs)-1)
	rest = append(rest, certs[:leafIdx]...)
	rest = append(rest, certs[leafIdx+1:]...)
	return &Certificate{
		Leaf:  certs[leafIdx],
		Chain: orderChain(certs[leafIdx], rest),
		Key:   rsaKey,
	}, nil
}

// orderChain returns leaf followed by its issuers in signing order, as far
// as they are present, then any unrelated certificates in their original
// order. x5c must be leaf first with each certificate certifying the one
// before it (RFC 7515 §4.1.6).
func orderChain(leaf *x509.Certificate, others []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	used := make([]bool, len(others))
	for cur := leaf; ; {
		next := -1
		for i, c := range others {
			if !used[i] && bytes.Equal(cur.RawIssuer, c.RawSubject) && !bytes.Equal(cur.RawSubject, cur.RawIssuer) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		cur = others[next]
		chain = append(chain, cur)
	}
	for i, c := range others {
		if !used[i] {
			chain = append(chain, c)
		}
	}
	return chain
}

func keyKind(key crypto.PrivateKey) string {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", key)
	}
}

// ThumbprintSHA1 is the SHA-1 digest of the leaf's DER encoding: the "x5t"
// of RS256 assertions and the thumbprint the Azure portal displays.
func (c *Certificate) ThumbprintSHA1() []byte {
	sum := sha1.Sum(c.Leaf.Raw)
	return sum[:]
}

// ThumbprintSHA256 is the SHA-256 digest of the leaf's DER encoding: the
// "x5t#S256" of PS256 assertions.
func (c *Certificate) ThumbprintSHA256() []byte {
	sum := sha256.Sum256(c.Leaf.Raw)
	return sum[:]
}

// NotAfter is when the leaf expires; after that Entra rejects assertions
// signed with it, so the daemon can warn ahead of time.
func (c *Certificate) NotAfter() time.Time {
	return c.Leaf.NotAfter
}
