package graphtest

import (
	"crypto/sha1" //nolint:gosec // Service Fabric names its certificate by SHA-1 thumbprint.
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Paths of the managed identity hosts on the plain-HTTP listener, shaped
// like the real ones' IDENTITY_ENDPOINT or MSI_ENDPOINT.
const (
	appServiceTokenPath    = "/msi/token"
	arcTokenPath           = "/arc" + imdsTokenPath
	cloudShellTokenPath    = "/oauth2/token"
	serviceFabricTokenPath = imdsTokenPath
)

// DefaultArcTokenDir is where the Azure Arc agent (himds) writes the key
// files its challenge names on Linux. Azure's SDKs read a key only from
// there, so the fake writes there too unless Config.ArcTokenDir says
// otherwise.
const DefaultArcTokenDir = "/var/opt/azcmagent/tokens"

// AppServiceEnv returns the variables App Service, Functions and Container
// Apps set for a managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER.
func (s *Server) AppServiceEnv() map[string]string {
	return map[string]string{
		"IDENTITY_ENDPOINT": s.IMDSURL() + appServiceTokenPath,
		"IDENTITY_HEADER":   s.miSecret,
	}
}

// ArcEnv returns the variables the Azure Arc agent sets: IDENTITY_ENDPOINT
// and IMDS_ENDPOINT (whose presence, without IDENTITY_HEADER, marks Arc).
func (s *Server) ArcEnv() map[string]string {
	return map[string]string{
		"IDENTITY_ENDPOINT": s.IMDSURL() + arcTokenPath,
		"IMDS_ENDPOINT":     s.IMDSURL(),
	}
}

// CloudShellEnv returns MSI_ENDPOINT as Cloud Shell sets it.
func (s *Server) CloudShellEnv() map[string]string {
	return map[string]string{"MSI_ENDPOINT": s.IMDSURL() + cloudShellTokenPath}
}

// ServiceFabricEnv returns the variables Service Fabric sets: an https
// IDENTITY_ENDPOINT whose self-signed certificate the client pins by the
// SHA-1 IDENTITY_SERVER_THUMBPRINT, and IDENTITY_HEADER, the secret.
func (s *Server) ServiceFabricEnv() map[string]string {
	sum := sha1.Sum(s.pki.leaf.Certificate[0]) //nolint:gosec // see import
	return map[string]string{
		"IDENTITY_ENDPOINT":          "https://" + s.fabricAddr + serviceFabricTokenPath,
		"IDENTITY_HEADER":            s.miSecret,
		"IDENTITY_SERVER_THUMBPRINT": strings.ToUpper(hex.EncodeToString(sum[:])),
	}
}

// appServiceToken is the App Service identity endpoint, API 2019-08-01:
// the secret in X-IDENTITY-HEADER, expires_on as a string, and errors in
// its own {statusCode, message} shape.
func (s *Server) appServiceToken(r *http.Request, rec *TokenRequest) apiResponse {
	fail := func(status int, msg string) apiResponse {
		return miFail(rec, jsonResponse(status, map[string]any{"statusCode": status, "message": msg, "correlationId": newGUID()}), fmt.Sprintf("HTTP %d", status))
	}
	if r.Header.Get("X-IDENTITY-HEADER") != s.miSecret {
		return fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or invalid.")
	}
	if resp, failed := s.miFault(rec); failed {
		return resp
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2019-08-01" {
		return fail(http.StatusBadRequest, "The api-version query parameter is missing or unsupported.")
	}
	if !s.knownIdentity(q.Get("client_id"), q.Get("object_id")) {
		return fail(http.StatusBadRequest, "No managed identity found for specified ClientId/ResourceId/PrincipalId.")
	}
	aud, ok := s.imdsAudience(q.Get("resource"))
	if !ok {
		return fail(http.StatusBadRequest, "AADSTS500011: The resource principal named "+q.Get("resource")+" was not found in the tenant.")
	}
	tok, exp := s.issueAccessToken(aud, s.issuerForResource(strings.TrimSuffix(aud, "/")), s.currentRoles(), acrCertificate, s.cfg.TokenLifetime)
	return jsonResponse(http.StatusOK, map[string]string{
		"access_token": tok,
		"expires_on":   unixString(exp),
		"resource":     q.Get("resource"),
		"token_type":   "Bearer",
		"client_id":    s.cfg.ClientID,
	})
}

// arcToken is the Azure Arc agent's endpoint: a request without a key gets
// 401 naming a fresh key file that only a privileged local user can read;
// the retry sends its content as "Basic <key>".
func (s *Server) arcToken(r *http.Request, rec *TokenRequest) apiResponse {
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Required metadata header not specified"), "invalid_request")
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2020-06-01" {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "Unsupported api-version"), "invalid_request")
	}
	key, hasKey := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
	if !hasKey {
		path, err := s.newArcKey()
		if err != nil {
			return miFail(rec, imdsError(http.StatusInternalServerError, "server_error", err.Error()), "server_error")
		}
		resp := imdsError(http.StatusUnauthorized, "unauthorized", "Unauthorized")
		resp.header = http.Header{"Www-Authenticate": {"Basic realm=" + path}}
		return miFail(rec, resp, "challenge")
	}
	if !s.takeArcKey(key) {
		return miFail(rec, imdsError(http.StatusUnauthorized, "unauthorized", "Invalid key"), "unauthorized")
	}
	if resp, failed := s.miFault(rec); failed {
		return resp
	}
	return s.imdsStyleToken(rec, q.Get("resource"), q.Get("client_id"), q.Get("object_id"))
}

// newArcKey writes a new key file and returns its path.
func (s *Server) newArcKey() (string, error) {
	dir := s.cfg.ArcTokenDir
	if dir == "" {
		dir = DefaultArcTokenDir
	}
	key := strings.ReplaceAll(newGUID(), "-", "")
	path := filepath.Join(dir, newGUID()+".key")
	if s.cfg.ArcKeyUnreadable {
		// Named but never written: the client's read fails as a
		// permission error would.
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.arcKeys[key] = path
	s.mu.Unlock()
	return path, nil
}

// takeArcKey reports whether key was issued, and removes its file: a key
// answers one request.
func (s *Server) takeArcKey(key string) bool {
	s.mu.Lock()
	path, ok := s.arcKeys[key]
	delete(s.arcKeys, key)
	s.mu.Unlock()
	if ok {
		_ = os.Remove(path)
	}
	return ok
}

// removeArcKeys deletes the key files no request used.
func (s *Server) removeArcKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, path := range s.arcKeys {
		_ = os.Remove(path)
		delete(s.arcKeys, k)
	}
}

// cloudShellToken is Cloud Shell's endpoint: a form POST with the
// resource and "Metadata: true".
func (s *Server) cloudShellToken(r *http.Request, rec *TokenRequest) apiResponse {
	if r.Method != http.MethodPost || !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", "POST with Metadata: true required"), "invalid_request")
	}
	if err := r.ParseForm(); err != nil {
		return miFail(rec, imdsError(http.StatusBadRequest, "invalid_request", err.Error()), "invalid_request")
	}
	rec.Scope = r.PostForm.Get("resource")
	if resp, failed := s.miFault(rec); failed {
		return resp
	}
	return s.imdsStyleToken(rec, r.PostForm.Get("resource"), "", "")
}

// serveServiceFabric is the Service Fabric identity endpoint on its own TLS
// listener, API 2019-07-01-preview: the secret in the Secret header,
// expires_on as a number, and errors as {error: {code, message}}.
func (s *Server) serveServiceFabric(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := TokenRequest{Host: r.Host, Path: r.URL.Path, ClientID: q.Get("client_id"), Scope: q.Get("resource"), AuthKind: "servicefabric", At: s.now()}
	resp := s.serviceFabricToken(r, q, &rec)
	rec.Status = resp.status
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	s.recordToken(rec)
}

func (s *Server) serviceFabricToken(r *http.Request, q url.Values, rec *TokenRequest) apiResponse {
	fail := func(status int, code, msg string) apiResponse {
		return miFail(rec, jsonResponse(status, map[string]any{"error": map[string]string{"correlationId": newGUID(), "code": code, "message": msg}}), code)
	}
	if r.URL.Path != serviceFabricTokenPath {
		return fail(http.StatusNotFound, "NotFound", "The requested resource was not found.")
	}
	if r.Header.Get("Secret") != s.miSecret {
		return fail(http.StatusUnauthorized, "SecretHeaderNotFound", "Secret is not found in the request headers.")
	}
	if resp, failed := s.miFault(rec); failed {
		return resp
	}
	if q.Get("api-version") != "2019-07-01-preview" {
		return fail(http.StatusBadRequest, "InvalidApiVersion", "The api-version is missing or not supported.")
	}
	aud, ok := s.imdsAudience(q.Get("resource"))
	if !ok {
		return fail(http.StatusBadRequest, "InvalidResource", "The resource "+q.Get("resource")+" was not found.")
	}
	tok, exp := s.issueAccessToken(aud, s.issuerForResource(strings.TrimSuffix(aud, "/")), s.currentRoles(), acrCertificate, s.cfg.TokenLifetime)
	return jsonResponse(http.StatusOK, map[string]any{
		"token_type":   "Bearer",
		"access_token": tok,
		"expires_on":   exp.Unix(),
		"resource":     q.Get("resource"),
	})
}

// ManagedIdentityHosts are the hosts SetHostEnv knows, each named as
// TokenRequest.AuthKind records it.
var ManagedIdentityHosts = []string{"imds", "appservice", "arc", "servicefabric", "cloudshell"}

// managedIdentityEnvVars are every variable an Azure host sets to announce
// its managed identity endpoint.
var managedIdentityEnvVars = []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"}

// SetHostEnv puts the test process in one Azure host's environment (see
// ManagedIdentityHosts), clearing every other host's variables until the
// test ends. "imds" sets none: a VM's endpoint is fixed, so the client must
// be pointed at IMDSURL. For "arc" it skips the test where
// DefaultArcTokenDir cannot be written, unless GRAPHRELAY_REQUIRE_CLIENTS
// is set (as in CI), where it fails instead.
func (s *Server) SetHostEnv(t *testing.T, host string) {
	t.Helper()
	for _, k := range managedIdentityEnvVars {
		t.Setenv(k, "")
	}
	var env map[string]string
	switch host {
	case "imds":
	case "appservice":
		env = s.AppServiceEnv()
	case "arc":
		if s.cfg.ArcTokenDir == "" && !s.cfg.ArcKeyUnreadable {
			requireArcTokenDir(t)
		}
		env = s.ArcEnv()
	case "servicefabric":
		env = s.ServiceFabricEnv()
	case "cloudshell":
		env = s.CloudShellEnv()
	default:
		t.Fatalf("graphtest: unknown managed identity host %q", host)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func requireArcTokenDir(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(DefaultArcTokenDir, 0o700); err == nil {
		if probe, err := os.CreateTemp(DefaultArcTokenDir, "probe"); err == nil {
			probe.Close()
			os.Remove(probe.Name())
			return
		}
	}
	if os.Getenv("GRAPHRELAY_REQUIRE_CLIENTS") != "" {
		t.Fatalf("the Azure Arc emulation needs a writable %s (run as root)", DefaultArcTokenDir)
	}
	t.Skipf("the Azure Arc emulation needs a writable %s (run as root)", DefaultArcTokenDir)
}
