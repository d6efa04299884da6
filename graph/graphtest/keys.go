package graphtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"sync"
)

// signingKeys are the RSA keys the fake signs with: one for the access tokens
// it issues as Entra, one for the tokens it mints as a Kubernetes-style OIDC
// issuer for workload identity federation. RSA key generation dominates
// Start's cost, so the keys are generated once per process and shared; each
// Server still gets its own key id, and tokens are only accepted by the
// Server whose key id they carry.
type signingKeys struct {
	token   *rsa.PrivateKey
	cluster *rsa.PrivateKey
}

var (
	sharedKeysOnce sync.Once
	sharedKeys     signingKeys
	sharedKeysErr  error
)

func loadSigningKeys() (signingKeys, error) {
	sharedKeysOnce.Do(func() {
		sharedKeys.token, sharedKeysErr = rsa.GenerateKey(rand.Reader, 2048)
		if sharedKeysErr != nil {
			return
		}
		sharedKeys.cluster, sharedKeysErr = rsa.GenerateKey(rand.Reader, 2048)
	})
	return sharedKeys, sharedKeysErr
}

// jwkFor renders an RSA public key as a JWK for the discovery keys endpoint.
func jwkFor(kid string, pub *rsa.PublicKey) map[string]any {
	e := exponentBytes(pub.E)
	return map[string]any{
		"kty": "RSA",
		"use": "sig",
		"kid": kid,
		"x5t": kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(e),
	}
}

// exponentBytes is the big-endian, minimal-length encoding JWKs use for e.
func exponentBytes(e int) []byte {
	var b []byte
	for e > 0 {
		b = append([]byte{byte(e & 0xff)}, b...)
		e >>= 8
	}
	return b
}

// newKeyID returns a per-Server key id, derived from random bytes so that two
// Servers in one process never accept each other's tokens.
func newKeyID() string {
	sum := sha256.Sum256([]byte(randomToken(16)))
	return base64.RawURLEncoding.EncodeToString(sum[:20])
}
