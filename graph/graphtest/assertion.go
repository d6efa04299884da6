package graphtest

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"
)

const (
	// assertionSkew is the clock skew Entra tolerates on nbf.
	assertionSkew = 5 * time.Minute
	// federatedAudience is the only audience Entra accepts on federated
	// workload-identity tokens by default.
	federatedAudience = "api://AzureADTokenExchange"
)

// checkAssertion validates a client_assertion. A token whose issuer is a
// configured federated issuer is a workload-identity token; anything else
// must be a certificate assertion signed by a registered certificate.
func (c *tokenCall) checkAssertion(raw string) *aadError {
	t, err := parseJWT(raw)
	if err != nil {
		return errMalformedJWT("The client assertion is not a compact JWS.")
	}
	c.rec.AssertionAlg = t.headerString("alg")
	iss := t.claimString("iss")
	for _, f := range c.s.cfg.Federated {
		if f.Issuer == iss {
			c.rec.AuthKind = "federated"
			c.rec.AssertionKid = t.headerString("kid")
			return c.checkFederated(t)
		}
	}
	if t.headerString("x5t#S256") == "" && t.headerString("x5t") == "" && containsString(t.audiences(), federatedAudience) {
		// A workload-identity token from an issuer no credential names.
		c.rec.AuthKind = "federated"
		c.rec.AssertionKid = t.headerString("kid")
		return errFederatedIssuer(iss)
	}
	c.rec.AuthKind = "assertion"
	return c.checkCertificateAssertion(t)
}

// checkCertificateAssertion applies graph-api.md §4.2 and §7: PS256 or RS256,
// a thumbprint header naming a registered certificate, a valid signature,
// iss == sub == client_id, aud == this token URL, the nbf/exp window, and a
// jti that has not been seen before.
func (c *tokenCall) checkCertificateAssertion(t *jwt) *aadError {
	s := c.s
	alg := t.headerString("alg")
	if alg != "PS256" && alg != "RS256" {
		return errMalformedJWT("The signing algorithm '" + alg + "' is not supported; use PS256 or RS256.")
	}
	if typ := t.headerString("typ"); typ != "" && !strings.EqualFold(typ, "JWT") && typ != "http://openid.net/specs/jwt/1.0" {
		return errBadJWTType()
	}
	cert, e := c.findCertificate(t)
	if e != nil {
		return e
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || verifyRSA(alg, pub, t.signingInput, t.signature) != nil {
		return errBadSignature()
	}
	iss, sub := t.claimString("iss"), t.claimString("sub")
	if iss != sub {
		return errSubjectMismatch(sub, iss)
	}
	if !strings.EqualFold(sub, c.rec.ClientID) {
		return errAssertionAppMismatch()
	}
	expected := "https://" + c.r.Host + c.r.URL.Path
	if !containsString(t.audiences(), expected) {
		return errAudience(strings.Join(t.audiences(), " "), expected)
	}
	if e := c.checkWindow(t); e != nil {
		return e
	}
	jti := t.claimString("jti")
	if jti == "" {
		return errMalformedJWT("The client assertion has no 'jti' claim.")
	}
	exp, _, _ := t.claimTime("exp")
	if !s.rememberJTI(jti, exp) {
		return errReplayed(jti)
	}
	return nil
}

// findCertificate matches x5t#S256 (SHA-256 of the DER certificate) or, if
// absent, x5t (SHA-1) against the registered certificates.
func (c *tokenCall) findCertificate(t *jwt) (*x509.Certificate, *aadError) {
	value, sha256Thumb := t.headerString("x5t#S256"), true
	if value == "" {
		value, sha256Thumb = t.headerString("x5t"), false
	}
	if value == "" {
		return nil, errNoThumbprint()
	}
	c.rec.AssertionKid = value
	thumb, err := decodeThumbprint(value)
	if err != nil {
		return nil, errKeyNotRegistered(strings.ToUpper(hex.EncodeToString([]byte(value))), c.s.cfg.ClientID)
	}
	for _, cert := range c.s.cfg.Certificates {
		var sum []byte
		if sha256Thumb {
			h := sha256.Sum256(cert.Raw)
			sum = h[:]
		} else {
			h := sha1.Sum(cert.Raw)
			sum = h[:]
		}
		if string(sum) == string(thumb) {
			return cert, nil
		}
	}
	return nil, errKeyNotRegistered(strings.ToUpper(hex.EncodeToString(thumb)), c.s.cfg.ClientID)
}

// checkWindow applies nbf <= now+skew and now <= exp on the fake's clock.
func (c *tokenCall) checkWindow(t *jwt) *aadError {
	now := c.s.now()
	exp, hasExp, errExp := t.claimTime("exp")
	nbf, hasNbf, errNbf := t.claimTime("nbf")
	if errExp != nil || errNbf != nil {
		return errMalformedJWT("The 'nbf' and 'exp' claims must be numeric dates.")
	}
	if !hasExp {
		return errMalformedJWT("The client assertion has no 'exp' claim.")
	}
	if !hasNbf {
		nbf = time.Unix(0, 0)
	}
	if nbf.After(now.Add(assertionSkew)) || now.After(exp) {
		return errTimeRange(now, nbf, exp)
	}
	return nil
}

// checkFederated validates a workload-identity token: signed by the fake's
// cluster issuer key, audience api://AzureADTokenExchange, and an
// issuer/subject pair registered as a federated credential. Such tokens are
// reused for their whole lifetime by azidentity, so jti is not checked.
func (c *tokenCall) checkFederated(t *jwt) *aadError {
	s := c.s
	alg := t.headerString("alg")
	if (alg != "RS256" && alg != "PS256") || t.headerString("kid") != s.clusterKid ||
		verifyRSA(alg, &s.keys.cluster.PublicKey, t.signingInput, t.signature) != nil {
		return errBadSignature()
	}
	if !containsString(t.audiences(), federatedAudience) {
		return errFederatedAudience(strings.Join(t.audiences(), " "))
	}
	iss, sub := t.claimString("iss"), t.claimString("sub")
	matched := false
	for _, f := range s.cfg.Federated {
		matched = matched || (f.Issuer == iss && f.Subject == sub)
	}
	if !matched {
		return errFederatedSubject(sub)
	}
	return c.checkWindow(t)
}

// rememberJTI records a certificate assertion's jti until shortly after it
// expires and reports whether it was new.
func (s *Server) rememberJTI(jti string, exp time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, until := range s.usedJTIs {
		if now.After(until) {
			delete(s.usedJTIs, k)
		}
	}
	if _, seen := s.usedJTIs[jti]; seen {
		return false
	}
	s.usedJTIs[jti] = exp.Add(assertionSkew)
	return true
}

func containsString(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// MintFederatedToken returns a token signed by the fake's cluster OIDC
// issuer key, as a Kubernetes projected service-account token for workload
// identity would be: aud api://AzureADTokenExchange, the given iss and sub,
// and the given lifetime from now on the fake's clock.
func (s *Server) MintFederatedToken(issuer, subject string, lifetime time.Duration) string {
	now := s.now()
	claims := map[string]any{
		"aud": []string{federatedAudience},
		"iss": issuer,
		"sub": subject,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"jti": newGUID(),
	}
	tok, err := signRS256(s.keys.cluster, map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.clusterKid}, claims)
	if err != nil {
		panic("graphtest: signing a federated token: " + err.Error())
	}
	return tok
}
