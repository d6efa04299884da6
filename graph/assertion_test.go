package graph

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// credJWT is a client assertion taken apart by hand, the way a fake Entra
// would.
type credJWT struct {
	header       map[string]any
	claims       map[string]any
	signingInput string
	sig          []byte
}

func credParseJWT(t *testing.T, s string) credJWT {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts, want 3", len(parts))
	}
	var j credJWT
	for i, dst := range []*map[string]any{&j.header, &j.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d is not unpadded base64url: %v", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("JWT signature is not unpadded base64url: %v", err)
	}
	j.signingInput = parts[0] + "." + parts[1]
	j.sig = sig
	return j
}

func (j credJWT) claimInt(t *testing.T, name string) int64 {
	t.Helper()
	n, ok := j.claims[name].(json.Number)
	if !ok {
		t.Fatalf("claim %s = %#v, want a number", name, j.claims[name])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("claim %s: %v", name, err)
	}
	return v
}

// verify checks the signature the way Entra does: PSS with any salt length
// for PS256, PKCS#1 v1.5 for RS256.
func (j credJWT) verify(pub *rsa.PublicKey) error {
	digest := sha256.Sum256([]byte(j.signingInput))
	switch j.header["alg"] {
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.sig)
	}
	return rsa.ErrVerification
}

var credUUIDv4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func credTestCertificate(t *testing.T) *Certificate {
	t.Helper()
	p := credTestPKI(t)
	return &Certificate{Leaf: p.leaf, Chain: []*x509.Certificate{p.leaf, p.inter, p.root}, Key: p.leafKey}
}

func TestClientAssertion(t *testing.T) {
	cert := credTestCertificate(t)
	const (
		clientID = "97e0a5b7-d745-40b6-94fe-5f77d35c6e05"
		tokenURL = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
	)
	now := time.Date(2025, 3, 24, 12, 0, 0, 0, time.UTC)

	for _, tc := range []struct {
		alg        AssertionAlg
		thumbKey   string
		otherKey   string
		thumbprint []byte
	}{
		{AssertionPS256, "x5t#S256", "x5t", cert.ThumbprintSHA256()},
		{AssertionRS256, "x5t", "x5t#S256", cert.ThumbprintSHA1()},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			s, err := NewClientAssertion(cert, tc.alg, clientID, tokenURL, false, now)
			if err != nil {
				t.Fatal(err)
			}
			j := credParseJWT(t, s)

			if j.header["alg"] != string(tc.alg) || j.header["typ"] != "JWT" {
				t.Errorf("header alg/typ = %v/%v", j.header["alg"], j.header["typ"])
			}
			x5t, _ := j.header[tc.thumbKey].(string)
			if strings.ContainsAny(x5t, "=+/") {
				t.Errorf("%s = %q, want unpadded base64url", tc.thumbKey, x5t)
			}
			got, err := base64.RawURLEncoding.DecodeString(x5t)
			if err != nil || !bytes.Equal(got, tc.thumbprint) {
				t.Errorf("%s = %q does not decode to the certificate thumbprint (%v)", tc.thumbKey, x5t, err)
			}
			if _, ok := j.header[tc.otherKey]; ok {
				t.Errorf("header has %s too", tc.otherKey)
			}
			if _, ok := j.header["x5c"]; ok {
				t.Error("x5c sent without sendX5C")
			}

			for name, want := range map[string]string{"aud": tokenURL, "iss": clientID, "sub": clientID} {
				if j.claims[name] != want {
					t.Errorf("claim %s = %v, want %q", name, j.claims[name], want)
				}
			}
			if jti, _ := j.claims["jti"].(string); !credUUIDv4.MatchString(jti) {
				t.Errorf("jti = %q, want a UUIDv4", jti)
			}
			nbf, iat, exp := j.claimInt(t, "nbf"), j.claimInt(t, "iat"), j.claimInt(t, "exp")
			if nbf != now.Unix() || iat != now.Unix() {
				t.Errorf("nbf, iat = %d, %d, want %d", nbf, iat, now.Unix())
			}
			if exp-nbf != int64((10 * time.Minute).Seconds()) {
				t.Errorf("exp - nbf = %ds, want 600s", exp-nbf)
			}

			if err := j.verify(&cert.Key.PublicKey); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			// Each algorithm must really be the one it claims.
			digest := sha256.Sum256([]byte(j.signingInput))
			if tc.alg == AssertionPS256 {
				if err := rsa.VerifyPSS(&cert.Key.PublicKey, crypto.SHA256, digest[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
					t.Errorf("PS256 salt is not the hash length: %v", err)
				}
				if rsa.VerifyPKCS1v15(&cert.Key.PublicKey, crypto.SHA256, digest[:], j.sig) == nil {
					t.Error("PS256 signature verifies as PKCS#1 v1.5")
				}
			} else if rsa.VerifyPSS(&cert.Key.PublicKey, crypto.SHA256, digest[:], j.sig, nil) == nil {
				t.Error("RS256 signature verifies as PSS")
			}
		})
	}
}

func TestClientAssertionFreshJTI(t *testing.T) {
	cert := credTestCertificate(t)
	now := time.Now()
	seen := map[string]bool{}
	for range 5 {
		s, err := NewClientAssertion(cert, AssertionPS256, "client", "https://login.example.test/t/oauth2/v2.0/token", false, now)
		if err != nil {
			t.Fatal(err)
		}
		jti, _ := credParseJWT(t, s).claims["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %q repeated", jti)
		}
		seen[jti] = true
	}
}

func TestClientAssertionX5C(t *testing.T) {
	cert := credTestCertificate(t)
	s, err := NewClientAssertion(cert, AssertionPS256, "client", "https://login.example.test/t/oauth2/v2.0/token", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := credParseJWT(t, s).header["x5c"].([]any)
	if !ok || len(raw) != len(cert.Chain) {
		t.Fatalf("x5c = %#v, want %d entries", raw, len(cert.Chain))
	}
	for i, v := range raw {
		str, _ := v.(string)
		der, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			t.Fatalf("x5c[%d] is not standard base64: %v", i, err)
		}
		if !bytes.Equal(der, cert.Chain[i].Raw) {
			t.Errorf("x5c[%d] is not chain[%d] (%s)", i, i, cert.Chain[i].Subject.CommonName)
		}
	}
}

func TestClientAssertionRejects(t *testing.T) {
	cert := credTestCertificate(t)
	now := time.Now()
	const u = "https://login.example.test/t/oauth2/v2.0/token"
	if _, err := NewClientAssertion(cert, "HS256", "client", u, false, now); err == nil || !strings.Contains(err.Error(), "unsupported algorithm") {
		t.Errorf("HS256: err = %v", err)
	}
	if _, err := NewClientAssertion(cert, "", "client", u, false, now); err == nil {
		t.Error("empty algorithm accepted")
	}
	if _, err := NewClientAssertion(nil, AssertionPS256, "client", u, false, now); err == nil {
		t.Error("nil certificate accepted")
	}
	if _, err := NewClientAssertion(cert, AssertionPS256, "", u, false, now); err == nil {
		t.Error("empty client ID accepted")
	}
	if _, err := NewClientAssertion(cert, AssertionPS256, "client", "", false, now); err == nil {
		t.Error("empty token URL accepted")
	}
}
