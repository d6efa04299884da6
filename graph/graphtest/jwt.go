package graphtest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// jwt is a parsed compact JWS. Claims are decoded with json.Number so that
// numeric dates keep their exact value.
type jwt struct {
	header       map[string]any
	claims       map[string]any
	signingInput string
	signature    []byte
}

var errJWTFormat = errors.New("malformed JWT")

// parseJWT splits and decodes a compact JWS without verifying it. It accepts
// only the three-part form; encrypted (five-part) tokens are malformed here.
func parseJWT(s string) (*jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errJWTFormat
	}
	h, err := decodeJSONSegment(parts[0])
	if err != nil {
		return nil, err
	}
	c, err := decodeJSONSegment(parts[1])
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errJWTFormat
	}
	return &jwt{header: h, claims: c, signingInput: parts[0] + "." + parts[1], signature: sig}, nil
}

func decodeJSONSegment(seg string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, errJWTFormat
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, errJWTFormat
	}
	return m, nil
}

func (t *jwt) headerString(name string) string {
	s, _ := t.header[name].(string)
	return s
}

func (t *jwt) claimString(name string) string {
	s, _ := t.claims[name].(string)
	return s
}

// claimTime reads a NumericDate claim. present is false when the claim is
// absent; err is set when it is present but not a number.
func (t *jwt) claimTime(name string) (tm time.Time, present bool, err error) {
	v, ok := t.claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, fmt.Errorf("claim %q is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, true, fmt.Errorf("claim %q is not a number", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// audiences returns the aud claim as a list, accepting both the string and
// the array form that RFC 7519 §4.1.3 allows.
func (t *jwt) audiences() []string {
	switch v := t.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verifyRSA checks the signature for the two algorithms Entra accepts on
// client assertions. PS256 is verified with PSSSaltLengthAuto because
// golang-jwt (used by MSAL Go) signs with a salt as long as the hash while
// other libraries use the maximum; Entra accepts both.
func verifyRSA(alg string, pub *rsa.PublicKey, signingInput string, sig []byte) error {
	digest := sha256.Sum256([]byte(signingInput))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

// signRS256 encodes header and claims and signs them with RS256, the
// algorithm Entra uses for the access tokens it issues.
func signRS256(key *rsa.PrivateKey, header, claims any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// decodeThumbprint decodes an x5t or x5t#S256 header value. The documents
// say base64url, MSAL Go sends padded standard base64, and Entra accepts
// both, so either alphabet with or without padding is accepted here.
func decodeThumbprint(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	return base64.RawStdEncoding.DecodeString(s)
}
