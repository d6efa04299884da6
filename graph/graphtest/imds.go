package graphtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const imdsTokenPath = "/metadata/identity/oauth2/token"

// imdsError is the IMDS error body, which is smaller than Entra's.
func imdsError(status int, code, desc string) apiResponse {
	return jsonResponse(status, map[string]string{"error": code, "error_description": desc})
}

// serveIMDS handles the plain-HTTP managed identity listener. Each Azure
// host's endpoint lives under its own path here, where the real hosts use
// their own ports: the VM's IMDS (graph-api.md §4.6) at
// /metadata/identity/oauth2/token, App Service at /msi/token, Azure Arc at
// /arc/metadata/identity/oauth2/token and Cloud Shell at /oauth2/token.
func (s *Server) serveIMDS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := TokenRequest{
		Host:     r.Host,
		Path:     r.URL.Path,
		ClientID: q.Get("client_id"),
		Scope:    q.Get("resource"),
		AuthKind: "imds",
		At:       s.now(),
	}
	var resp apiResponse
	switch r.URL.Path {
	case appServiceTokenPath:
		rec.AuthKind = "appservice"
		resp = s.appServiceToken(r, &rec)
	case arcTokenPath:
		rec.AuthKind = "arc"
		resp = s.arcToken(r, &rec)
	case cloudShellTokenPath:
		rec.AuthKind = "cloudshell"
		resp = s.cloudShellToken(r, &rec)
	default:
		resp = s.imdsToken(r, &rec)
	}
	rec.Status = resp.status
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	h.Set("Server", "IMDS/150.870.65.1325")
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	s.recordToken(rec)
}

func (s *Server) imdsToken(r *http.Request, rec *TokenRequest) apiResponse {
	if r.URL.Path != imdsTokenPath {
		return miFail(rec, imdsError(http.StatusNotFound, "not_found", "The requested resource was not found."), "not_found")
	}
	if resp, failed := s.miFault(rec); failed {
		return resp
	}
	if r.Method != http.MethodGet {
		return miFail(rec, imdsError(http.StatusMethodNotAllowed, "invalid_request", "The HTTP method '"+r.Method+"' is not supported."), "invalid_request")
	}
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Required metadata header not specified"), "invalid_request")
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing"), "invalid_request")
	}
	return s.imdsStyleToken(rec, q.Get("resource"), q.Get("client_id"), q.Get("object_id"))
}

// imdsStyleToken issues the token the VM, Arc and Cloud Shell endpoints
// share: numbers as strings, expires_in and expires_on both present.
func (s *Server) imdsStyleToken(rec *TokenRequest, resource, clientID, objectID string) apiResponse {
	if resource == "" {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Required query variable 'resource' is missing"), "invalid_request")
	}
	if !s.knownIdentity(clientID, objectID) {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Identity not found"), "invalid_request")
	}
	aud, ok := s.imdsAudience(resource)
	if !ok {
		e := errResourceNotFound(resource, s.cfg.TenantID)
		return miFail(rec, imdsError(http.StatusBadRequest, e.oauth, fmt.Sprintf("AADSTS%d: %s", e.code, e.desc)), fmt.Sprintf("AADSTS%d", e.code))
	}
	tok, exp := s.issueAccessToken(aud, s.issuerForResource(strings.TrimSuffix(aud, "/")), s.currentRoles(), acrCertificate, s.cfg.TokenLifetime)
	lifetime := strconv.Itoa(int(s.cfg.TokenLifetime.Seconds()))
	return jsonResponse(http.StatusOK, map[string]string{
		"access_token":   tok,
		"client_id":      s.cfg.ClientID,
		"expires_in":     lifetime,
		"expires_on":     strconv.FormatInt(exp.Unix(), 10),
		"ext_expires_in": lifetime,
		"not_before":     strconv.FormatInt(exp.Unix()-int64(s.cfg.TokenLifetime.Seconds()), 10),
		"resource":       resource,
		"token_type":     "Bearer",
	})
}

// miFail records code as the request's error and returns resp.
func miFail(rec *TokenRequest, resp apiResponse, code string) apiResponse {
	rec.Error = code
	return resp
}

// miFault applies a queued token fault or outage to a managed identity
// request, as the hosts pass Entra's failures through.
func (s *Server) miFault(rec *TokenRequest) (apiResponse, bool) {
	outage, f, ok := s.takeTokenFault()
	if outage == 0 && !ok {
		return apiResponse{}, false
	}
	e := errTransient(outage)
	if ok {
		e = s.faultError(f)
	}
	return miFail(rec, e.render(s.now(), "login.microsoftonline.com", newGUID(), newGUID()), fmt.Sprintf("AADSTS%d", e.code)), true
}

// knownIdentity reports whether a user-assigned identity selector, if any,
// names the fake's one identity.
func (s *Server) knownIdentity(clientID, objectID string) bool {
	if clientID != "" && !strings.EqualFold(clientID, s.cfg.ClientID) {
		return false
	}
	return objectID == "" || strings.EqualFold(objectID, s.principalID())
}

// imdsAudience accepts a Graph resource of any cloud, or the loopback
// resource, without "/.default" (MSAL strips it). A trailing slash is kept
// in the audience, as Entra does.
func (s *Server) imdsAudience(resource string) (string, bool) {
	base := strings.TrimSuffix(resource, "/")
	if strings.EqualFold(base, s.cfg.graphResource()) || cloudForResource(base) != nil {
		return resource, true
	}
	return "", false
}

// unixString is how the hosts other than IMDS write expires_on.
func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
