package graphtest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// accessTokenClaims are the claims of a Graph app-only v1.0 access token as
// Entra issues them (graph-api.md §4.3).
type accessTokenClaims struct {
	Aud            string   `json:"aud"`
	Iss            string   `json:"iss"`
	Iat            int64    `json:"iat"`
	Nbf            int64    `json:"nbf"`
	Exp            int64    `json:"exp"`
	AppDisplayName string   `json:"app_displayname"`
	AppID          string   `json:"appid"`
	AppIDAcr       string   `json:"appidacr"`
	Idp            string   `json:"idp"`
	IDTyp          string   `json:"idtyp"`
	Oid            string   `json:"oid"`
	Roles          []string `json:"roles,omitempty"`
	Sub            string   `json:"sub"`
	Tid            string   `json:"tid"`
	Uti            string   `json:"uti"`
	Ver            string   `json:"ver"`
}

// Values of the appidacr claim: how the client authenticated.
const (
	acrSecret      = "1"
	acrCertificate = "2"
)

// issuerForResource returns the v1 issuer for tokens whose audience is
// resource. Tokens for an unknown (loopback) resource or for the Graph app
// id use the global issuer.
func (s *Server) issuerForResource(resource string) string {
	c := cloudForResource(resource)
	if c == nil {
		c = clouds[0]
	}
	return fmt.Sprintf(c.issuer, s.cfg.TenantID)
}

// issueAccessToken signs a token. Entra back-dates iat and nbf by five
// minutes to absorb clock skew, and so does the fake.
func (s *Server) issueAccessToken(aud, issuer string, roles []string, acr string, lifetime time.Duration) (string, time.Time) {
	now := s.now()
	exp := now.Add(lifetime)
	claims := accessTokenClaims{
		Aud:            aud,
		Iss:            issuer,
		Iat:            now.Add(-5 * time.Minute).Unix(),
		Nbf:            now.Add(-5 * time.Minute).Unix(),
		Exp:            exp.Unix(),
		AppDisplayName: "graphrelay",
		AppID:          s.cfg.ClientID,
		AppIDAcr:       acr,
		Idp:            issuer,
		IDTyp:          "app",
		Oid:            s.principalID(),
		Sub:            s.principalID(),
		Tid:            s.cfg.TenantID,
		Uti:            randomToken(16),
		Ver:            "1.0",
	}
	if len(roles) > 0 {
		claims.Roles = append([]string{}, roles...)
	}
	header := map[string]string{"typ": "JWT", "alg": "RS256", "x5t": s.tokenKid, "kid": s.tokenKid}
	tok, err := signRS256(s.keys.token, header, claims)
	if err != nil {
		panic(fmt.Sprintf("graphtest: signing an access token: %v", err))
	}
	return tok, exp
}

// MintAccessToken returns a Graph token for the loopback Graph listener
// (aud = Config.GraphScope without "/.default"), as if issued now to the
// app through a certificate. roles nil or empty gives a token without a
// roles claim. A zero or negative lifetime gives an already expired token.
func (s *Server) MintAccessToken(roles []string, lifetime time.Duration) string {
	return s.MintAccessTokenFor(s.cfg.graphResource(), roles, lifetime)
}

// MintAccessTokenFor is MintAccessToken for an explicit audience, such as
// "https://graph.microsoft.us" for tests that call a national-cloud Graph
// host through CloudHTTPClient.
func (s *Server) MintAccessTokenFor(audience string, roles []string, lifetime time.Duration) string {
	tok, _ := s.issueAccessToken(audience, s.issuerForResource(audience), roles, acrCertificate, lifetime)
	return tok
}

// validatedToken is what Graph learns from a valid bearer token.
type validatedToken struct {
	roles []string
}

func (v validatedToken) hasRole(role string) bool {
	for _, r := range v.roles {
		if r == role {
			return true
		}
	}
	return false
}

// graphAudience returns the audience and issuer a Graph host accepts, or
// ok=false for a host name that is not a Graph host.
func (s *Server) graphAudience(host string) (resource, issuer string, ok bool) {
	if isLoopbackHost(host) {
		res := s.cfg.graphResource()
		return res, s.issuerForResource(res), true
	}
	c := cloudForGraphHost(host)
	if c == nil {
		return "", "", false
	}
	return "https://" + host, fmt.Sprintf(c.issuer, s.cfg.TenantID), true
}

func unauthorized(message string) *graphError {
	e := newGraphError(http.StatusUnauthorized, "InvalidAuthenticationToken", message)
	e.header = http.Header{"WWW-Authenticate": []string{
		`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="` + graphAppID + `"`,
	}}
	return e
}

// validateBearer checks the Authorization header of a Graph request the way
// Graph does for app-only tokens: it must be a token this fake signed, for
// this Graph host's audience and cloud, and within its lifetime on the
// fake's clock (no leeway on exp, so short-lived test tokens expire
// promptly).
func (s *Server) validateBearer(authz, host string) (validatedToken, *graphError) {
	scheme, raw, _ := strings.Cut(strings.TrimSpace(authz), " ")
	raw = strings.TrimSpace(raw)
	if authz == "" || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return validatedToken{}, unauthorized("Access token is empty.")
	}
	t, err := parseJWT(raw)
	if err != nil {
		return validatedToken{}, unauthorized("CompactToken parsing failed with error code: 80049217")
	}
	if t.headerString("alg") != "RS256" || t.headerString("kid") != s.tokenKid ||
		verifyRSA("RS256", &s.keys.token.PublicKey, t.signingInput, t.signature) != nil {
		return validatedToken{}, unauthorized("Access token validation failure.")
	}
	resource, issuer, ok := s.graphAudience(host)
	if !ok {
		return validatedToken{}, unauthorized("Access token validation failure. Invalid audience.")
	}
	aud := t.claimString("aud")
	if !strings.EqualFold(strings.TrimSuffix(aud, "/"), resource) && aud != graphAppID {
		return validatedToken{}, unauthorized("Access token validation failure. Invalid audience.")
	}
	if t.claimString("iss") != issuer || !strings.EqualFold(t.claimString("tid"), s.cfg.TenantID) {
		return validatedToken{}, unauthorized("Access token validation failure. Invalid issuer.")
	}
	now := s.now()
	exp, hasExp, errExp := t.claimTime("exp")
	nbf, _, errNbf := t.claimTime("nbf")
	if !hasExp || errExp != nil || errNbf != nil {
		return validatedToken{}, unauthorized("Access token validation failure.")
	}
	if !now.Before(exp) {
		return validatedToken{}, unauthorized("Lifetime validation failed, the token is expired.")
	}
	if now.Before(nbf) {
		return validatedToken{}, unauthorized("Access token has expired or is not yet valid.")
	}
	var roles []string
	if list, ok := t.claims["roles"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	return validatedToken{roles: roles}, nil
}
