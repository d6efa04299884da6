package graph

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AssertionAlg is the JWS algorithm of a client assertion.
type AssertionAlg string

const (
	// AssertionPS256 (RSA-PSS, SHA-256, header x5t#S256) is what current
	// Entra documentation asks for and MSAL sends by default.
	AssertionPS256 AssertionAlg = "PS256"
	// AssertionRS256 (PKCS#1 v1.5, SHA-256, header x5t with the SHA-1
	// thumbprint) is the legacy form that Entra still accepts.
	AssertionRS256 AssertionAlg = "RS256"
)

// assertionLifetime matches MSAL; Entra's guidance is 5-10 minutes at most.
const assertionLifetime = 10 * time.Minute

// ClientAssertionType is the client_assertion_type form value that goes
// with a JWT client assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

type assertionHeader struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ"`
	X5T     string   `json:"x5t,omitempty"`
	X5TS256 string   `json:"x5t#S256,omitempty"`
	X5C     []string `json:"x5c,omitempty"`
}

type assertionClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iss string `json:"iss"`
	Jti string `json:"jti"`
	Nbf int64  `json:"nbf"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
}

// NewClientAssertion builds and signs a fresh JWT client assertion for
// clientID, valid for 10 minutes from now, addressed to tokenURL (which
// must be the exact token endpoint the assertion is posted to). With
// sendX5C the certificate chain goes in the header so that an app
// configured for Subject Name + Issuer authentication accepts renewed
// certificates without re-registration.
func NewClientAssertion(cert *Certificate, alg AssertionAlg, clientID, tokenURL string, sendX5C bool, now time.Time) (string, error) {
	if cert == nil || cert.Leaf == nil || cert.Key == nil {
		return "", errors.New("client assertion: certificate or key missing")
	}
	if clientID == "" || tokenURL == "" {
		return "", errors.New("client assertion: client ID and token URL are required")
	}

	// The thumbprints are base64url without padding as RFC 7515 §4.1.7-8
	// specify. MSAL sends base64 StdEncoding (padded, '+' and '/') instead
	// and Entra accepts both alphabets, so the RFC form is the safe choice.
	h := assertionHeader{Alg: string(alg), Typ: "JWT"}
	switch alg {
	case AssertionPS256:
		h.X5TS256 = base64.RawURLEncoding.EncodeToString(cert.ThumbprintSHA256())
	case AssertionRS256:
		h.X5T = base64.RawURLEncoding.EncodeToString(cert.ThumbprintSHA1())
	default:
		return "", fmt.Errorf("client assertion: unsupported algorithm %q (want %s or %s)", alg, AssertionPS256, AssertionRS256)
	}
	if sendX5C {
		chain := cert.Chain
		if len(chain) == 0 {
			// A Certificate built by hand may carry only its leaf.
			chain = []*x509.Certificate{cert.Leaf}
		}
		for _, c := range chain {
			// x5c is plain base64, not base64url (RFC 7515 §4.1.6).
			h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}

	jti, err := newUUIDv4()
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	t := now.Unix()
	claims := assertionClaims{
		Aud: tokenURL,
		Exp: now.Add(assertionLifetime).Unix(),
		Iss: clientID,
		Jti: jti,
		Nbf: t,
		Sub: clientID,
		Iat: t,
	}

	hj, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("client assertion: encode header: %w", err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("client assertion: encode claims: %w", err)
	}
	signingInput := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	digest := sha256.Sum256([]byte(signingInput))

	var sig []byte
	if alg == AssertionPS256 {
		// Salt length equal to the hash is what golang-jwt (and so MSAL)
		// produces and what verifiers expecting a fixed salt accept.
		sig, err = rsa.SignPSS(rand.Reader, cert.Key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, cert.Key, crypto.SHA256, digest[:])
	}
	if err != nil {
		return "", fmt.Errorf("client assertion: sign %s: %w", alg, err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// newUUIDv4 returns a random RFC 9562 version 4 UUID for the "jti" claim,
// which Entra uses to reject replayed assertions.
func newUUIDv4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random jti: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
