package graphtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const imdsTokenPath = "/metadata/identity/oauth2/token"

// imdsError is the IMDS error body, which is smaller than Entra's.
func imdsError(status int, code, desc string) apiResponse {
	return jsonResponse(status, map[string]string{"error": code, "error_description": desc})
}

// serveIMDS handles the Azure VM managed-identity endpoint (graph-api.md
// §4.6): GET with "Metadata: true", a resource without "/.default", and a
// response whose numbers are strings.
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
	resp := s.imdsToken(r, &rec)
	rec.Status = resp.status
	h := w.Header()
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	h.Set("Server", "IMDS/150.870.65.1325")
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	s.recordToken(rec)
}

func (s *Server) imdsToken(r *http.Request, rec *TokenRequest) apiResponse {
	fail := func(resp apiResponse, code string) apiResponse {
		rec.Error = code
		return resp
	}
	if r.URL.Path != imdsTokenPath {
		return fail(imdsError(http.StatusNotFound, "not_found", "The requested resource was not found."), "not_found")
	}
	if outage, f, ok := s.takeTokenFault(); outage != 0 || ok {
		e := errTransient(outage)
		if ok {
			e = s.faultError(f)
		}
		return fail(e.render(s.now(), "login.microsoftonline.com", newGUID(), newGUID()), fmt.Sprintf("AADSTS%d", e.code))
	}
	if r.Method != http.MethodGet {
		return fail(imdsError(http.StatusMethodNotAllowed, "invalid_request", "The HTTP method '"+r.Method+"' is not supported."), "invalid_request")
	}
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		return fail(imdsError(http.StatusBadRequest, "invalid_request", "Required metadata header not specified"), "invalid_request")
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		return fail(imdsError(http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing"), "invalid_request")
	}
	resource := q.Get("resource")
	if resource == "" {
		return fail(imdsError(http.StatusBadRequest, "invalid_request", "Required query variable 'resource' is missing"), "invalid_request")
	}
	if id := q.Get("client_id"); id != "" && !strings.EqualFold(id, s.cfg.ClientID) {
		return fail(imdsError(http.StatusBadRequest, "invalid_request", "Identity not found"), "invalid_request")
	}
	if id := q.Get("object_id"); id != "" && !strings.EqualFold(id, s.principalID()) {
		return fail(imdsError(http.StatusBadRequest, "invalid_request", "Identity not found"), "invalid_request")
	}
	aud, ok := s.imdsAudience(resource)
	if !ok {
		e := errResourceNotFound(resource, s.cfg.TenantID)
		return fail(imdsError(http.StatusBadRequest, e.oauth, fmt.Sprintf("AADSTS%d: %s", e.code, e.desc)), fmt.Sprintf("AADSTS%d", e.code))
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
