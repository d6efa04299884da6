package graphtest

import (
	"net/http"
	"net/url"
	"strings"
)

// serveLogin routes requests to the login host: OIDC discovery, the signing
// keys, MSAL's instance discovery and the token endpoint.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	if cloudForLoginHost(host) == nil && !isLoopbackHost(host) {
		s.writeLogin(w, r, jsonResponse(http.StatusBadRequest, map[string]string{
			"error": oauthInvalidRequest, "error_description": "The host name '" + host + "' is not a login endpoint.",
		}))
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token":
		s.serveToken(w, r, segs[0])
	case len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration":
		s.writeLogin(w, r, s.openIDConfiguration(r, segs[0]))
	case len(segs) == 4 && segs[1] == "discovery" && segs[2] == "v2.0" && segs[3] == "keys":
		s.writeLogin(w, r, jsonResponse(http.StatusOK, map[string]any{
			"keys": []any{jwkFor(s.tokenKid, &s.keys.token.PublicKey)},
		}))
	case len(segs) == 3 && segs[0] == "common" && segs[1] == "discovery" && segs[2] == "instance":
		s.writeLogin(w, r, s.instanceDiscovery(r))
	default:
		s.writeLogin(w, r, jsonResponse(http.StatusNotFound, map[string]string{
			"error": "not_found", "error_description": "The login endpoint '" + r.URL.Path + "' does not exist.",
		}))
	}
}

// writeLogin writes a login-host response with the headers Entra sends.
func (s *Server) writeLogin(w http.ResponseWriter, r *http.Request, resp apiResponse) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "no-store, no-cache")
	if id := r.Header.Get("client-request-id"); id != "" {
		h.Set("client-request-id", id)
	}
	if resp.contentType != "" {
		h.Set("Content-Type", resp.contentType)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// genericTenants are the multi-tenant aliases Entra serves discovery for
// but not client-credentials tokens.
var genericTenants = map[string]bool{"common": true, "organizations": true, "consumers": true}

// tenantError checks a tenant path segment: a GUID must be the fake's
// tenant, anything else must at least look like a domain name.
func (s *Server) tenantError(tenant string) *aadError {
	switch {
	case strings.EqualFold(tenant, s.cfg.TenantID):
		return nil
	case isGUID(tenant):
		return errTenantNotFound(tenant)
	case !looksLikeDomain(tenant):
		return errTenantInvalid(tenant)
	}
	return errTenantNotFound(tenant)
}

func looksLikeDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// openIDConfiguration serves the v2.0 discovery document, built from the
// Host the client used so that MSAL's issuer/authority host check passes
// for both loopback and cloud host names (graph-api.md §4.7).
func (s *Server) openIDConfiguration(r *http.Request, tenant string) apiResponse {
	base := "https://" + r.Host
	issuerTenant := s.cfg.TenantID
	if genericTenants[strings.ToLower(tenant)] {
		issuerTenant = "{tenantid}"
	} else if e := s.tenantError(tenant); e != nil {
		e.oauth = "invalid_tenant"
		return e.render(s.now(), r.Host, newGUID(), newGUID())
	} else {
		tenant = s.cfg.TenantID
	}
	instance := "microsoftonline.com"
	msgraphHost := strings.TrimPrefix(s.cfg.graphResource(), "https://")
	if c := cloudForLoginHost(hostOnly(r.Host)); c != nil {
		instance = strings.TrimPrefix(c.loginHosts[0], "login.")
		msgraphHost = c.msgraphHost
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/" + tenant + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/" + tenant + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/" + issuerTenant + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/" + tenant + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + tenant + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/" + tenant + "/oauth2/v2.0/logout",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   instance,
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          msgraphHost,
	})
}

// instanceDiscovery answers MSAL's
// GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...
// for clients that keep instance discovery on and are routed to the fake by
// CloudHTTPClient. It vouches only for the host that was asked about.
func (s *Server) instanceDiscovery(r *http.Request) apiResponse {
	ep := r.URL.Query().Get("authorization_endpoint")
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return jsonResponse(http.StatusBadRequest, map[string]any{
			"error": "invalid_instance", "error_description": "AADSTS50049: Unknown or invalid instance.",
		})
	}
	tenant := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")[0]
	return jsonResponse(http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + u.Host + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []any{map[string]any{
			"preferred_network": u.Host,
			"preferred_cache":   u.Host,
			"aliases":           []string{u.Host},
		}},
	})
}
