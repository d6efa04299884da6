package graphtest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is an app certificate with its key, created by the tests
// themselves so the fake is checked independently of any client library.
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

var (
	testCertsOnce sync.Once
	testCerts     [2]testCert
)

// certs returns two distinct certificates: [0] is registered in the
// configurations the tests use, [1] is not.
func certs(t *testing.T) [2]testCert {
	t.Helper()
	testCertsOnce.Do(func() {
		for i := range testCerts {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(i + 1)),
				Subject:      pkix.Name{CommonName: "graphrelay test app"},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(24 * time.Hour),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				panic(err)
			}
			testCerts[i] = testCert{cert: cert, key: key}
		}
	})
	return testCerts
}

// thumbprint encodings a client may use in the assertion header.
type thumbMode int

const (
	s256StdPadded thumbMode = iota
	s256URLRaw
	sha1StdPadded
)

// assertionSpec describes a client assertion to sign by hand.
type assertionSpec struct {
	alg     string // "PS256" or "RS256" (or anything, to test rejection)
	mode    thumbMode
	cert    *x509.Certificate // whose thumbprint goes in the header
	key     *rsa.PrivateKey   // signing key
	aud     string
	iss     string
	sub     string
	nbf     time.Time
	exp     time.Time
	jti     string
	noJTI   bool
	typ     string
	headers map[string]any
}

func signJWTForTest(t *testing.T, alg string, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "PS256":
		// golang-jwt, which MSAL Go uses, signs PSS with salt = hash length.
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (a assertionSpec) sign(t *testing.T) string {
	t.Helper()
	header := map[string]any{"alg": a.alg, "typ": "JWT"}
	if a.typ != "" {
		header["typ"] = a.typ
	}
	switch a.mode {
	case s256StdPadded:
		sum := sha256.Sum256(a.cert.Raw)
		header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	case s256URLRaw:
		sum := sha256.Sum256(a.cert.Raw)
		header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum[:])
	case sha1StdPadded:
		sum := sha1.Sum(a.cert.Raw)
		header["x5t"] = base64.StdEncoding.EncodeToString(sum[:])
	}
	for k, v := range a.headers {
		header[k] = v
	}
	claims := map[string]any{
		"aud": a.aud, "iss": a.iss, "sub": a.sub,
		"nbf": a.nbf.Unix(), "exp": a.exp.Unix(),
	}
	if !a.noJTI {
		jti := a.jti
		if jti == "" {
			jti = newGUID()
		}
		claims["jti"] = jti
	}
	return signJWTForTest(t, a.alg, a.key, header, claims)
}

// goodAssertion is what MSAL Go sends for the registered certificate.
func goodAssertion(t *testing.T, s *Server, tokenURL string) assertionSpec {
	c := certs(t)[0]
	now := time.Now()
	return assertionSpec{
		alg: "PS256", mode: s256StdPadded, cert: c.cert, key: c.key,
		aud: tokenURL, iss: s.ClientID(), sub: s.ClientID(),
		nbf: now, exp: now.Add(10 * time.Minute),
	}
}

// certConfig registers certificate [0].
func certConfig(t *testing.T) Config {
	return Config{Certificates: []*x509.Certificate{certs(t)[0].cert}}
}

// msalForm is the form MSAL Go posts for a certificate assertion.
func msalForm(s *Server, assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {s.ClientID()},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"client_info":           {"1"},
		"scope":                 {scope + " openid offline_access profile"},
	}
}

type tokenReply struct {
	status int
	header http.Header
	body   map[string]any
}

func postToken(t *testing.T, client *http.Client, tokenURL string, form url.Values, basic ...string) tokenReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return tokenReply{status: resp.StatusCode, header: resp.Header, body: body}
}

// accessToken obtains a token from the loopback endpoint with the
// registered certificate.
func accessToken(t *testing.T, s *Server) string {
	t.Helper()
	rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, goodAssertion(t, s, s.TokenURL()).sign(t), DefaultGraphScope))
	if rep.status != http.StatusOK {
		t.Fatalf("token request: %d %v", rep.status, rep.body)
	}
	return rep.body["access_token"].(string)
}

// jwtClaims decodes a JWT's claims without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantAADError asserts the documented Entra error shape and code.
func wantAADError(t *testing.T, rep tokenReply, status int, oauth string, code int, descPrefix string) {
	t.Helper()
	if rep.status != status {
		t.Fatalf("status = %d, want %d; body %v", rep.status, status, rep.body)
	}
	if rep.body["error"] != oauth {
		t.Errorf("error = %v, want %s", rep.body["error"], oauth)
	}
	desc, _ := rep.body["error_description"].(string)
	if !strings.HasPrefix(desc, descPrefix) {
		t.Errorf("error_description = %q, want prefix %q", desc, descPrefix)
	}
	for _, part := range []string{"\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "} {
		if !strings.Contains(desc, part) {
			t.Errorf("error_description lacks %q: %q", part, desc)
		}
	}
	codes, _ := rep.body["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != float64(code) {
		t.Errorf("error_codes = %v, want [%d]", rep.body["error_codes"], code)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
		if s, _ := rep.body[k].(string); s == "" {
			t.Errorf("missing %s in %v", k, rep.body)
		}
	}
}

type graphReply struct {
	status int
	header http.Header
	body   []byte
}

func (g graphReply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(g.body, &m); err != nil {
		t.Fatalf("body is not JSON (%d): %q", g.status, g.body)
	}
	return m
}

// errorCode returns error.code and error.message of a Graph error body and
// checks the innerError that every Graph error carries.
func (g graphReply) errorCode(t *testing.T) (code, message string) {
	t.Helper()
	m := g.json(t)
	e, _ := m["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", g.body)
	}
	inner, _ := e["innerError"].(map[string]any)
	if inner == nil || inner["date"] == "" || inner["request-id"] != g.header.Get("request-id") || inner["client-request-id"] == "" {
		t.Errorf("innerError = %v (request-id header %q)", inner, g.header.Get("request-id"))
	}
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	return code, message
}

func graphDo(t *testing.T, client *http.Client, method, url, token, contentType string, body []byte, headers ...string) graphReply {
	t.Helper()
	g, err := graphDoErr(client, method, url, token, contentType, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// graphDoErr is graphDo for goroutines, which must not call t.Fatal.
func graphDoErr(client *http.Client, method, url, token, contentType string, body []byte, headers ...string) (graphReply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return graphReply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return graphReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return graphReply{}, err
	}
	return graphReply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// sendJSON posts a sendMail JSON body for mailbox on the loopback Graph.
func sendJSON(t *testing.T, s *Server, token, mailbox, body string, headers ...string) graphReply {
	t.Helper()
	return graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/"+url.PathEscape(mailbox)+"/sendMail",
		token, "application/json", []byte(body), headers...)
}

// sendJSONAsync is sendJSON for goroutines; a transport error becomes a
// reply with status 0.
func sendJSONAsync(s *Server, token, mailbox, body string) graphReply {
	g, _ := graphDoErr(s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/"+url.PathEscape(mailbox)+"/sendMail",
		token, "application/json", []byte(body))
	return g
}

const simpleMessage = `{"message":{"subject":"hi","body":{"contentType":"Text","content":"x"},
"toRecipients":[{"emailAddress":{"address":"alice@contoso.com"}}]}}`
