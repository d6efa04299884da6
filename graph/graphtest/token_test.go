package graphtest

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestOpenIDConfiguration(t *testing.T) {
	s := New(t, Config{})
	resp, err := s.HTTPClient().Get(s.AuthorityURL() + "/" + s.TenantID() + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"issuer":                 s.AuthorityURL() + "/" + s.TenantID() + "/v2.0",
		"token_endpoint":         s.TokenURL(),
		"authorization_endpoint": s.AuthorityURL() + "/" + s.TenantID() + "/oauth2/v2.0/authorize",
		"jwks_uri":               s.AuthorityURL() + "/" + s.TenantID() + "/discovery/v2.0/keys",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}

	bad, err := s.HTTPClient().Get(s.AuthorityURL() + "/aaaaaaaa-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Body.Close()
	var errBody map[string]any
	_ = json.NewDecoder(bad.Body).Decode(&errBody)
	if bad.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errBody["error_description"].(string), "AADSTS90002: ") {
		t.Errorf("unknown tenant: %d %v", bad.StatusCode, errBody)
	}
}

func TestAssertionSuccess(t *testing.T) {
	s := New(t, certConfig(t))
	cases := []struct {
		name string
		alg  string
		mode thumbMode
	}{
		{"PS256 x5t#S256 std padded", "PS256", s256StdPadded},
		{"PS256 x5t#S256 url unpadded", "PS256", s256URLRaw},
		{"RS256 x5t sha1", "RS256", sha1StdPadded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			a := goodAssertion(t, s, s.TokenURL())
			a.alg, a.mode = tc.alg, tc.mode
			rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, a.sign(t), DefaultGraphScope))
			if rep.status != http.StatusOK {
				t.Fatalf("status %d: %v", rep.status, rep.body)
			}
			if rep.body["token_type"] != "Bearer" || rep.body["expires_in"] != float64(3599) || rep.body["ext_expires_in"] != float64(3599) {
				t.Errorf("body = %v", rep.body)
			}
			claims := jwtClaims(t, rep.body["access_token"].(string))
			wantClaims := map[string]any{
				"aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/" + s.TenantID() + "/",
				"appid": s.ClientID(), "appidacr": "2", "idtyp": "app", "tid": s.TenantID(), "ver": "1.0",
			}
			for k, v := range wantClaims {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if roles, _ := claims["roles"].([]any); len(roles) != 1 || roles[0] != "Mail.Send" {
				t.Errorf("roles = %v", claims["roles"])
			}
			for _, k := range []string{"oid", "sub", "nbf", "exp", "iat"} {
				if claims[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
			trs := s.TokenRequests()
			if len(trs) != 1 {
				t.Fatalf("%d token requests recorded", len(trs))
			}
			tr := trs[0]
			if tr.AuthKind != "assertion" || tr.AssertionAlg != tc.alg || tr.AssertionKid == "" || tr.Status != 200 || tr.Error != "" ||
				tr.GrantType != "client_credentials" || tr.ClientID != s.ClientID() || !strings.HasPrefix(tr.Scope, DefaultGraphScope) {
				t.Errorf("recorded %+v", tr)
			}
		})
	}
}

func TestAssertionFailures(t *testing.T) {
	s := New(t, certConfig(t))
	c := certs(t)
	now := time.Now()
	cases := []struct {
		name   string
		mutate func(a *assertionSpec)
		status int
		oauth  string
		code   int
		prefix string
	}{
		{"unregistered certificate", func(a *assertionSpec) { a.cert, a.key = c[1].cert, c[1].key },
			401, "invalid_client", 700027, "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."},
		{"bad signature", func(a *assertionSpec) { a.key = c[1].key },
			401, "invalid_client", 700027, "AADSTS700027: Client assertion failed signature validation."},
		{"wrong audience", func(a *assertionSpec) {
			a.aud = "https://login.microsoftonline.com/" + s.TenantID() + "/oauth2/v2.0/token"
		},
			400, "invalid_request", 50027, "AADSTS50027: "},
		{"iss differs from sub", func(a *assertionSpec) { a.iss = "someone-else" },
			401, "invalid_client", 50048, "AADSTS50048: Subject mismatches Issuer claim in the client assertion."},
		{"iss and sub differ from client_id", func(a *assertionSpec) { a.iss, a.sub = "other-app", "other-app" },
			401, "invalid_client", 700021, "AADSTS700021: "},
		{"expired", func(a *assertionSpec) { a.nbf, a.exp = now.Add(-20*time.Minute), now.Add(-10*time.Minute) },
			401, "invalid_client", 700024, "AADSTS700024: Client assertion is not within its valid time range. Current time: "},
		{"not yet valid beyond skew", func(a *assertionSpec) { a.nbf, a.exp = now.Add(10*time.Minute), now.Add(20*time.Minute) },
			401, "invalid_client", 700024, "AADSTS700024: "},
		{"HS256", func(a *assertionSpec) { a.alg = "HS256" },
			400, "invalid_request", 50027, "AADSTS50027: "},
		{"no thumbprint", func(a *assertionSpec) { a.mode = -1 },
			400, "invalid_request", 5002723, "AADSTS5002723: "},
		{"typ not JWT", func(a *assertionSpec) { a.typ = "at+jwt" },
			400, "invalid_request", 5002727, "AADSTS5002727: "},
		{"no jti", func(a *assertionSpec) { a.noJTI = true },
			400, "invalid_request", 50027, "AADSTS50027: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := goodAssertion(t, s, s.TokenURL())
			tc.mutate(&a)
			rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, a.sign(t), DefaultGraphScope))
			wantAADError(t, rep, tc.status, tc.oauth, tc.code, tc.prefix)
		})
	}

	t.Run("unregistered thumbprint is reported in upper-case hex", func(t *testing.T) {
		a := goodAssertion(t, s, s.TokenURL())
		a.cert, a.key, a.mode = c[1].cert, c[1].key, sha1StdPadded
		rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, a.sign(t), DefaultGraphScope))
		if !regexp.MustCompile(`Thumbprint of key used by client: '[0-9A-F]{40}'`).MatchString(rep.body["error_description"].(string)) {
			t.Errorf("description = %q", rep.body["error_description"])
		}
	})

	t.Run("expired message shape", func(t *testing.T) {
		a := goodAssertion(t, s, s.TokenURL())
		a.nbf, a.exp = now.Add(-20*time.Minute), now.Add(-10*time.Minute)
		rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, a.sign(t), DefaultGraphScope))
		re := regexp.MustCompile(`^AADSTS700024: Client assertion is not within its valid time range\. Current time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z, assertion valid from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000Z, expiry time of assertion \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000Z\. Review the documentation at https://docs\.microsoft\.com/azure/active-directory/develop/active-directory-certificate-credentials \.\r\n`)
		if !re.MatchString(rep.body["error_description"].(string)) {
			t.Errorf("description = %q", rep.body["error_description"])
		}
	})

	t.Run("jti replay", func(t *testing.T) {
		a := goodAssertion(t, s, s.TokenURL())
		a.jti = "fixed-" + newGUID()
		signed := a.sign(t)
		if rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, signed, DefaultGraphScope)); rep.status != 200 {
			t.Fatalf("first use: %d %v", rep.status, rep.body)
		}
		rep := postToken(t, s.HTTPClient(), s.TokenURL(), msalForm(s, signed, DefaultGraphScope))
		wantAADError(t, rep, 401, "invalid_client", 50013, "AADSTS50013: ")
	})

	t.Run("assertion without type", func(t *testing.T) {
		form := msalForm(s, goodAssertion(t, s, s.TokenURL()).sign(t), DefaultGraphScope)
		form.Del("client_assertion_type")
		wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form), 400, "invalid_request", 900144,
			"AADSTS900144: The request body must contain the following parameter: 'client_assertion_type'.")
	})

	t.Run("failures are recorded", func(t *testing.T) {
		var found bool
		for _, tr := range s.TokenRequests() {
			found = found || (tr.Error == "AADSTS700027" && tr.Status == 401 && tr.AuthKind == "assertion")
		}
		if !found {
			t.Error("no recorded AADSTS700027 request")
		}
	})
}

func TestClientSecret(t *testing.T) {
	s := New(t, Config{Secrets: []Secret{{Value: "s3cret~value"}, {Value: "old-secret", Expired: true}}})
	form := func(secret string) url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {s.ClientID()},
			"client_secret": {secret}, "scope": {DefaultGraphScope},
		}
	}
	rep := postToken(t, s.HTTPClient(), s.TokenURL(), form("s3cret~value"))
	if rep.status != 200 {
		t.Fatalf("secret: %d %v", rep.status, rep.body)
	}
	if c := jwtClaims(t, rep.body["access_token"].(string)); c["appidacr"] != "1" {
		t.Errorf("appidacr = %v, want 1", c["appidacr"])
	}

	basic := url.Values{"grant_type": {"client_credentials"}, "scope": {DefaultGraphScope}}
	if rep := postToken(t, s.HTTPClient(), s.TokenURL(), basic, s.ClientID(), "s3cret~value"); rep.status != 200 {
		t.Fatalf("basic: %d %v", rep.status, rep.body)
	}

	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form("wrong")), 401, "invalid_client", 7000215,
		"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+s.ClientID()+"'.")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form("old-secret")), 401, "invalid_client", 7000222,
		"AADSTS7000222: The provided client secret keys for app '"+s.ClientID()+"' are expired.")

	none := form("")
	none.Del("client_secret")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), none), 401, "invalid_client", 7000218,
		"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")

	both := form("s3cret~value")
	both.Set("client_assertion_type", jwtBearerAssertionType)
	both.Set("client_assertion", "x.y.z")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), both), 401, "invalid_client", 7000218, "AADSTS7000218: ")

	unknownApp := form("s3cret~value")
	unknownApp.Set("client_id", "99999999-2222-4333-8444-555555555555")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), unknownApp), 400, "unauthorized_client", 700016,
		"AADSTS700016: Application with identifier '99999999-2222-4333-8444-555555555555' was not found in the directory")

	wantAADError(t, postToken(t, s.HTTPClient(), s.AuthorityURL()+"/aaaaaaaa-0000-4000-8000-000000000000/oauth2/v2.0/token", form("s3cret~value")),
		400, "invalid_request", 90002, "AADSTS90002: Tenant 'aaaaaaaa-0000-4000-8000-000000000000' not found.")

	pw := form("s3cret~value")
	pw.Set("grant_type", "password")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), pw), 400, "unsupported_grant_type", 70003, "AADSTS70003: ")

	noGrant := form("s3cret~value")
	noGrant.Del("grant_type")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), noGrant), 400, "invalid_request", 900144,
		"AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
}

func TestScopes(t *testing.T) {
	s := New(t, Config{Secrets: []Secret{{Value: "pw"}}})
	try := func(scope string) tokenReply {
		return postToken(t, s.HTTPClient(), s.TokenURL(), url.Values{
			"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {"pw"}, "scope": {scope},
		})
	}
	for _, bad := range []string{
		"https://graph.microsoft.us/.default", // another cloud's Graph
		"https://graph.microsoft.com/Mail.Send",
		"openid profile",
	} {
		wantAADError(t, try(bad), 400, "invalid_scope", 70011, "AADSTS70011: The provided value for the input parameter 'scope' isn't valid.")
	}
	wantAADError(t, try("https://graph.microsoft.com/.default https://management.azure.com/.default"), 400, "invalid_scope", 700022, "AADSTS700022: ")
	wantAADError(t, try(""), 400, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'scope'.")

	// The Graph app id is an alias that yields an aud of the GUID, which
	// Graph accepts on its own cloud.
	rep := try(graphAppID + "/.default")
	if rep.status != 200 {
		t.Fatalf("GUID scope: %d %v", rep.status, rep.body)
	}
	tok := rep.body["access_token"].(string)
	if aud := jwtClaims(t, tok)["aud"]; aud != graphAppID {
		t.Errorf("aud = %v", aud)
	}
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != http.StatusAccepted {
		t.Errorf("GUID-audience token on Graph: %d %s", g.status, g.body)
	}
}

func TestFederatedCredential(t *testing.T) {
	const issuer, subject = "https://oidc.cluster.test/abc", "system:serviceaccount:mail:graphrelay"
	s := New(t, Config{Federated: []FederatedCredential{{Issuer: issuer, Subject: subject}}})
	form := func(assertion string) url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {s.ClientID()},
			"client_assertion_type": {jwtBearerAssertionType}, "client_assertion": {assertion},
			"scope": {DefaultGraphScope},
		}
	}
	tok := s.MintFederatedToken(issuer, subject, time.Hour)
	// azidentity re-reads the same projected token for every request, so it
	// must be accepted more than once.
	for i := range 2 {
		rep := postToken(t, s.HTTPClient(), s.TokenURL(), form(tok))
		if rep.status != 200 {
			t.Fatalf("use %d: %d %v", i, rep.status, rep.body)
		}
		if acr := jwtClaims(t, rep.body["access_token"].(string))["appidacr"]; acr != "2" {
			t.Errorf("appidacr = %v", acr)
		}
	}
	if tr := s.TokenRequests()[0]; tr.AuthKind != "federated" || tr.AssertionAlg != "RS256" || tr.AssertionKid == "" {
		t.Errorf("recorded %+v", tr)
	}
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form(s.MintFederatedToken(issuer, "system:serviceaccount:other:x", time.Hour))),
		401, "invalid_client", 700213, "AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:other:x'.")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form(s.MintFederatedToken("https://other.issuer", subject, time.Hour))),
		401, "invalid_client", 700211, "AADSTS700211: ")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form(s.MintFederatedToken(issuer, subject, -time.Minute))),
		401, "invalid_client", 700024, "AADSTS700024: ")

	// A token signed by another key with the right claims is refused.
	other := New(t, Config{})
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form(other.MintFederatedToken(issuer, subject, time.Hour))),
		401, "invalid_client", 700027, "AADSTS700027: ")
}

func TestTokenFaultsAndClock(t *testing.T) {
	s := New(t, Config{Secrets: []Secret{{Value: "pw"}}, ClockSkew: 2 * time.Hour})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {"pw"}, "scope": {DefaultGraphScope}}

	s.FailToken(TokenFault{AADSTS: 700027})
	s.FailToken(TokenFault{AADSTS: 7000215, Status: 400})
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form), 401, "invalid_client", 700027, "AADSTS700027: Client assertion failed signature validation.")
	wantAADError(t, postToken(t, s.HTTPClient(), s.TokenURL(), form), 400, "invalid_client", 7000215, "AADSTS7000215: ")

	s.SetTokenOutage(503)
	rep := postToken(t, s.HTTPClient(), s.TokenURL(), form)
	if rep.status != 503 || rep.body["error"] != "temporarily_unavailable" {
		t.Errorf("outage: %d %v", rep.status, rep.body)
	}
	s.SetTokenOutage(0)
	rep = postToken(t, s.HTTPClient(), s.TokenURL(), form)
	if rep.status != 200 {
		t.Fatalf("after outage: %d %v", rep.status, rep.body)
	}

	// The fake's clock runs two hours ahead: Date and exp follow it.
	date, err := http.ParseTime(rep.header.Get("Date"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(date); d < 110*time.Minute || d > 130*time.Minute {
		t.Errorf("Date is %v ahead, want about 2h", d)
	}
	exp := jwtClaims(t, rep.body["access_token"].(string))["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d < 2*time.Hour+55*time.Minute {
		t.Errorf("exp is %v ahead, want about 3h", d)
	}
}

func TestRolesInTokens(t *testing.T) {
	s := New(t, Config{Secrets: []Secret{{Value: "pw"}}, Roles: []string{}})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {"pw"}, "scope": {DefaultGraphScope}}
	rep := postToken(t, s.HTTPClient(), s.TokenURL(), form)
	if _, has := jwtClaims(t, rep.body["access_token"].(string))["roles"]; has {
		t.Error("token without consent has a roles claim")
	}
	g := sendJSON(t, s, rep.body["access_token"].(string), "relay@contoso.com", simpleMessage)
	if code, msg := g.errorCode(t); g.status != 403 || code != "ErrorAccessDenied" || msg != "Access is denied. Check credentials and try again." {
		t.Errorf("no role: %d %s %s", g.status, code, msg)
	}
	s.SetRoles([]string{"Mail.Send", "Mail.ReadWrite"})
	rep = postToken(t, s.HTTPClient(), s.TokenURL(), form)
	if roles := jwtClaims(t, rep.body["access_token"].(string))["roles"].([]any); len(roles) != 2 {
		t.Errorf("roles = %v", roles)
	}
}

func TestIMDS(t *testing.T) {
	s := New(t, Config{})
	get := func(query string, metadata bool) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, s.IMDSURL()+"/metadata/identity/oauth2/token?"+query, nil)
		if metadata {
			req.Header.Set("Metadata", "true")
		}
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	ok := "api-version=2018-02-01&resource=" + url.QueryEscape("https://graph.microsoft.com")
	if st, m := get(ok, false); st != 400 || m["error_description"] != "Required metadata header not specified" {
		t.Errorf("no Metadata header: %d %v", st, m)
	}
	st, m := get(ok, true)
	if st != 200 {
		t.Fatalf("imds: %d %v", st, m)
	}
	for _, k := range []string{"expires_in", "expires_on", "not_before"} {
		if _, isString := m[k].(string); !isString {
			t.Errorf("%s = %#v, want a string", k, m[k])
		}
	}
	if m["expires_in"] != "3599" || m["resource"] != "https://graph.microsoft.com" || m["token_type"] != "Bearer" {
		t.Errorf("body = %v", m)
	}
	tok := m["access_token"].(string)
	if c := jwtClaims(t, tok); c["appidacr"] != "2" || c["aud"] != "https://graph.microsoft.com" {
		t.Errorf("claims = %v", c)
	}
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 {
		t.Errorf("IMDS token on Graph: %d %s", g.status, g.body)
	}
	if st, m := get("api-version=2018-02-01&resource="+url.QueryEscape("https://graph.microsoft.com/.default"), true); st != 400 || m["error"] != "invalid_resource" {
		t.Errorf("/.default resource: %d %v", st, m)
	}
	if st, _ := get(ok+"&client_id=00000000-1111-4222-8333-444444444444", true); st != 400 {
		t.Errorf("unknown user-assigned identity: %d", st)
	}
	if st, _ := get(ok+"&client_id="+s.ClientID(), true); st != 200 {
		t.Errorf("user-assigned identity: %d", st)
	}
	trs := s.TokenRequests()
	if len(trs) != 5 || trs[1].AuthKind != "imds" || trs[1].Status != 200 || trs[1].Scope != "https://graph.microsoft.com" {
		t.Errorf("recorded %+v", trs)
	}
}

func TestCloudRouting(t *testing.T) {
	s := New(t, certConfig(t))
	client := s.CloudHTTPClient()
	cases := []struct {
		login, graph, issuer string
	}{
		{"login.microsoftonline.com", "graph.microsoft.com", "https://sts.windows.net/%s/"},
		{"login.microsoftonline.us", "graph.microsoft.us", "https://login.microsoftonline.us/%s/"},
		{"login.microsoftonline.us", "dod-graph.microsoft.us", "https://login.microsoftonline.us/%s/"},
		{"login.partner.microsoftonline.cn", "microsoftgraph.chinacloudapi.cn", "https://sts.chinacloudapi.cn/%s/"},
		{"login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn", "https://sts.chinacloudapi.cn/%s/"},
	}
	for _, tc := range cases {
		t.Run(tc.login+"->"+tc.graph, func(t *testing.T) {
			tokenURL := "https://" + tc.login + "/" + s.TenantID() + "/oauth2/v2.0/token"
			rep := postToken(t, client, tokenURL, msalForm(s, goodAssertion(t, s, tokenURL).sign(t), "https://"+tc.graph+"/.default"))
			if rep.status != 200 {
				t.Fatalf("token: %d %v", rep.status, rep.body)
			}
			tok := rep.body["access_token"].(string)
			c := jwtClaims(t, tok)
			if c["aud"] != "https://"+tc.graph || c["iss"] != strings.Replace(tc.issuer, "%s", s.TenantID(), 1) {
				t.Errorf("aud %v iss %v", c["aud"], c["iss"])
			}
			g := graphDo(t, client, http.MethodPost, "https://"+tc.graph+"/v1.0/users/relay@contoso.com/sendMail", tok, "application/json", []byte(simpleMessage))
			if g.status != 202 {
				t.Errorf("sendMail on %s: %d %s", tc.graph, g.status, g.body)
			}
			// Tokens are not interchangeable between clouds.
			other := "graph.microsoft.com"
			if tc.graph == other {
				other = "graph.microsoft.us"
			}
			g = graphDo(t, client, http.MethodPost, "https://"+other+"/v1.0/users/relay@contoso.com/sendMail", tok, "application/json", []byte(simpleMessage))
			if code, _ := g.errorCode(t); g.status != 401 || code != "InvalidAuthenticationToken" {
				t.Errorf("token used on %s: %d %s", other, g.status, g.body)
			}
		})
	}

	t.Run("scope of another cloud", func(t *testing.T) {
		tokenURL := "https://login.microsoftonline.com/" + s.TenantID() + "/oauth2/v2.0/token"
		rep := postToken(t, client, tokenURL, msalForm(s, goodAssertion(t, s, tokenURL).sign(t), "https://graph.microsoft.us/.default"))
		wantAADError(t, rep, 400, "invalid_scope", 70011, "AADSTS70011: ")
	})

	t.Run("assertion audience names the cloud login host", func(t *testing.T) {
		tokenURL := "https://login.microsoftonline.us/" + s.TenantID() + "/oauth2/v2.0/token"
		rep := postToken(t, client, tokenURL, msalForm(s, goodAssertion(t, s, s.TokenURL()).sign(t), "https://graph.microsoft.us/.default"))
		wantAADError(t, rep, 400, "invalid_request", 50027, "AADSTS50027: ")
	})

	t.Run("discovery on a cloud host", func(t *testing.T) {
		resp, err := client.Get("https://login.microsoftonline.us/" + s.TenantID() + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		if doc["token_endpoint"] != "https://login.microsoftonline.us/"+s.TenantID()+"/oauth2/v2.0/token" || doc["msgraph_host"] != "graph.microsoft.us" {
			t.Errorf("doc = %v", doc)
		}
	})

	t.Run("IMDS address", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com", nil)
		req.Header.Set("Metadata", "true")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})

	t.Run("other hosts are refused", func(t *testing.T) {
		for _, u := range []string{"https://example.com/", "https://login.microsoftonline.com:8443/", "http://graph.microsoft.com/", "https://127.0.0.2/"} {
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s was dialled", u)
			} else if !strings.Contains(err.Error(), "refusing to dial") {
				t.Errorf("%s: %v", u, err)
			}
		}
	})
}

func TestCAPEM(t *testing.T) {
	s := New(t, Config{})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM is not a PEM certificate")
	}
}
