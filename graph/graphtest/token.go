package graphtest

import (
	"crypto/subtle"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

const (
	jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxTokenRequestBytes   = 1 << 20
)

// ignoredScopes are the OIDC scopes MSAL appends to every request
// (graph-api.md §4.1); Entra ignores them for client credentials.
var ignoredScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true}

// tokenCall carries one token request and the ids of its answer.
type tokenCall struct {
	s             *Server
	r             *http.Request
	rec           *TokenRequest
	traceID       string
	correlationID string
	// success is the response when run returns no error.
	success apiResponse
}

// serveToken handles POST /{tenant}/oauth2/v2.0/token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	rec := &TokenRequest{Host: r.Host, Path: r.URL.Path, At: s.now()}
	c := &tokenCall{s: s, r: r, rec: rec, traceID: newGUID(), correlationID: r.Header.Get("client-request-id")}
	if c.correlationID == "" {
		c.correlationID = newGUID()
	}
	var resp apiResponse
	if aerr := c.run(tenant); aerr != nil {
		rec.Error = fmt.Sprintf("AADSTS%d", aerr.code)
		resp = aerr.render(s.now(), r.Host, c.traceID, c.correlationID)
	} else {
		resp = c.success
	}
	rec.Status = resp.status
	if resp.header == nil {
		resp.header = http.Header{}
	}
	resp.header.Set("x-ms-request-id", c.traceID)
	s.writeLogin(w, r, resp)
	s.recordToken(*rec)
}

// readForm decodes the form body. Entra reads only the body (not the query
// string) and tolerates a charset parameter on the media type, which MSAL
// sends.
func readForm(r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return url.Values{}, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBytes))
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(b))
}

func (c *tokenCall) run(tenant string) *aadError {
	s, r := c.s, c.r
	if outage, f, ok := s.takeTokenFault(); outage != 0 {
		return errTransient(outage)
	} else if ok {
		return s.faultError(f)
	}
	if r.Method != http.MethodPost {
		return errPostOnly(r.Method)
	}
	if genericTenants[strings.ToLower(tenant)] {
		return errTenantNotAllowed()
	}
	if e := s.tenantError(tenant); e != nil {
		return e
	}
	form, err := readForm(r)
	if err != nil {
		return errMissingParam("grant_type")
	}
	c.rec.GrantType = form.Get("grant_type")
	c.rec.ClientID = form.Get("client_id")
	c.rec.Scope = form.Get("scope")
	switch {
	case c.rec.GrantType == "":
		return errMissingParam("grant_type")
	case c.rec.GrantType != "client_credentials":
		return errUnsupportedGrant(c.rec.GrantType)
	}

	secret, hasSecret := form.Get("client_secret"), form.Has("client_secret")
	basicUser, basicPass, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 §2.3.1: Basic credentials are form-encoded first.
		if u, err := url.QueryUnescape(basicUser); err == nil {
			basicUser = u
		}
		if p, err := url.QueryUnescape(basicPass); err == nil {
			basicPass = p
		}
		if c.rec.ClientID == "" {
			c.rec.ClientID = basicUser
		} else if c.rec.ClientID != basicUser {
			return errAppNotFound(basicUser)
		}
	}
	assertion, hasAssertion := form.Get("client_assertion"), form.Has("client_assertion")
	methods := 0
	for _, used := range []bool{hasSecret, hasBasic, hasAssertion} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0:
		return errNoCredential()
	case methods > 1:
		return errTwoCredentials()
	}
	if hasAssertion {
		switch t := form.Get("client_assertion_type"); {
		case t == "":
			return errMissingParam("client_assertion_type")
		case t != jwtBearerAssertionType:
			return errBadAssertionType(t)
		}
	}
	if c.rec.ClientID == "" {
		return errMissingParam("client_id")
	}
	if !strings.EqualFold(c.rec.ClientID, s.cfg.ClientID) {
		return errAppNotFound(c.rec.ClientID)
	}

	var acr string
	switch {
	case hasSecret || hasBasic:
		if hasBasic {
			secret = basicPass
		}
		c.rec.AuthKind = "secret"
		if e := s.checkSecret(secret); e != nil {
			return e
		}
		acr = acrSecret
	default:
		if e := c.checkAssertion(assertion); e != nil {
			return e
		}
		acr = acrCertificate
	}

	if c.rec.Scope == "" {
		return errMissingParam("scope")
	}
	aud, issuer, e := s.resolveScope(hostOnly(r.Host), c.rec.Scope)
	if e != nil {
		return e
	}
	tok, _ := s.issueAccessToken(aud, issuer, s.currentRoles(), acr, s.cfg.TokenLifetime)
	lifetime := int(s.cfg.TokenLifetime.Seconds())
	c.success = jsonResponse(http.StatusOK, struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		ExtExpiresIn int    `json:"ext_expires_in"`
		AccessToken  string `json:"access_token"`
	}{"Bearer", lifetime, lifetime, tok})
	return nil
}

// checkSecret compares against every registered secret in constant time; a
// matching but expired secret is reported as expired, as Entra does.
func (s *Server) checkSecret(secret string) *aadError {
	for _, sec := range s.cfg.Secrets {
		if subtle.ConstantTimeCompare([]byte(sec.Value), []byte(secret)) == 1 {
			if sec.Expired {
				return errExpiredSecret(s.cfg.ClientID)
			}
			return nil
		}
	}
	return errInvalidSecret(s.cfg.ClientID)
}

// resolveScope accepts exactly one "{resource}/.default" scope for a Graph
// resource of the cloud the login host belongs to (the loopback host serves
// Config.GraphScope), plus the OIDC scopes MSAL adds. It returns the token
// audience and issuer.
func (s *Server) resolveScope(loginHost, scope string) (aud, issuer string, aerr *aadError) {
	var resources []string
	for _, f := range strings.Fields(scope) {
		if ignoredScopes[strings.ToLower(f)] {
			continue
		}
		dup := false
		for _, r := range resources {
			dup = dup || strings.EqualFold(r, f)
		}
		if !dup {
			resources = append(resources, f)
		}
	}
	switch {
	case len(resources) == 0:
		return "", "", errInvalidScope(scope)
	case len(resources) > 1:
		return "", "", errMultipleResources(scope)
	}
	resource, ok := strings.CutSuffix(resources[0], "/.default")
	if !ok {
		return "", "", errInvalidScope(resources[0])
	}
	var allowed []string
	loginIssuer := s.issuerForResource(s.cfg.graphResource())
	if c := cloudForLoginHost(loginHost); c != nil {
		for g := range c.graphHosts {
			allowed = append(allowed, "https://"+g)
		}
		loginIssuer = fmt.Sprintf(c.issuer, s.cfg.TenantID)
	} else {
		allowed = []string{s.cfg.graphResource()}
	}
	if strings.EqualFold(resource, graphAppID) {
		return graphAppID, loginIssuer, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(resource, a) {
			return a, s.issuerForResource(a), nil
		}
	}
	return "", "", errInvalidScope(resources[0])
}
